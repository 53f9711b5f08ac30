/**
 * Rate limits over real HTTP to apps built by buildApp (one process, counters in memory): per
 * client address, per caller, per role, global and per route, with a burst; 429 with Retry-After
 * and the RateLimit headers; a refused request never asks for a resource. A stand-in hook for
 * authentication (an app-level onRequest hook registered after the app's, as authentication is)
 * sets request.wt.caller from test headers.
 */
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { buildSettings, setConfig } from '../../src/config/index.js';
import type { Settings } from '../../src/config/schema.js';
import { createRateLimitStore } from '../../src/limits/rate-limit-store.js';
import { registerRateLimits } from '../../src/limits/rate-limits.js';
import { setLogDestination } from '../../src/log/index.js';
import type { RequestResources } from '../../src/resources/request-resources.js';
import { call, detailOf, type Answer, type RequestOptions } from './client.js';

const settingsWith = (rateLimit: unknown[] = []): Settings => buildSettings({ resource_ids: [], rate_limit: rateLimit }, {}, { env: {} });
let current = settingsWith();
const seen = { acquire: 0, handler: 0 };
let app: FastifyInstance;
let base: string;

setLogDestination(new Writable({ write: (_c, _e, cb) => cb() }));

beforeEach(async () => {
  current = settingsWith();
  setConfig(current);
  Object.assign(seen, { acquire: 0, handler: 0 });
  app = await buildApp({
    settings: () => current,
    acquirer: {
      has: () => true,
      acquireNow: (_ids, into: RequestResources) => {
        seen.acquire++;
        return into;
      },
      acquire: () => Promise.reject(new Error('not reached')),
    },
    readiness: () => ({ ready: true, unavailable: [] }),
    observer: { requestDone: () => undefined },
    onQuery: () => undefined,
    metricsPlugin: () => undefined,
    isShuttingDown: () => false,
    docs: false,
    version: 'test',
  });
  // Stand-in for authentication: X-Test-Caller: id, X-Test-Roles: a,b.
  app.addHook('onRequest', (req, _reply, done) => {
    const id = req.headers['x-test-caller'];
    const roles = req.headers['x-test-roles'];
    if (typeof id === 'string') req.wt.caller = { id, via: 'api-key', roles: typeof roles === 'string' ? roles.split(',') : [], claims: {} };
    done();
  });
  const handler = async () => {
    seen.handler++;
    return { ok: true };
  };
  app.get('/a', handler);
  app.get('/b', handler);
  app.get('/own', { config: { rate_limit: { requests: 2, interval: 60 } } }, handler);
  app.get('/slot', { config: { resources: ['r1'], rate_limit: [{ requests: 1, interval: 60 }] } }, handler);
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterEach(async () => {
  await app?.close();
  current = settingsWith();
  setConfig(current);
});

const get = (path: string, opts: RequestOptions = {}): Promise<Answer> => call(`${base}${path}`, opts);
const as = (id: string, roles = '', from = '127.0.0.2'): RequestOptions => ({ from, headers: { 'x-test-caller': id, ...(roles ? { 'x-test-roles': roles } : {}) } });
const statuses = async (n: number, path: string, opts: RequestOptions = {}): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(path, opts)).status);
  return out;
};

describe('rate limits', () => {
  it('per client address, over every route but the quiet ones: 429 with Retry-After and the RateLimit headers', async () => {
    current = settingsWith([{ by: 'address', requests: 3, interval: 60 }]);
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) answers.push(await get(i === 1 ? '/b' : '/a', { from: '127.0.0.2' }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => a.headers['ratelimit-remaining'])).toEqual(['2', '1', '0']);
    for (const a of answers) {
      expect(a.headers['ratelimit-limit']).toBe('3');
      expect(a.headers['ratelimit-policy']).toBe('3;w=60');
      expect(Number(a.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(59);
      expect(Number(a.headers['ratelimit-reset'])).toBeLessThanOrEqual(60);
    }
    const refused = await get('/b', { from: '127.0.0.2' });
    expect(refused.status).toBe(429);
    expect(detailOf(refused)).toMatch(/^rate limit reached: 3 request\(s\) per 60 s per client address; retry in (59|60) s$/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(refused.headers['retry-after']).toBe(refused.headers['ratelimit-reset']);
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(refused.headers['x-correlation-id']).toBeDefined();
    // Another address has its own budget; probes are not counted.
    expect(await statuses(3, '/a', { from: '127.0.0.3' })).toEqual([200, 200, 200]);
    expect((await get('/health/live', { from: '127.0.0.2' })).status).toBe(200);
    expect((await get('/health/live', { from: '127.0.0.2' })).headers['ratelimit-limit']).toBeUndefined();
    expect(seen.handler).toBe(6);
  });

  it('per caller: each API key / subject its own budget, requests without a caller by address', async () => {
    current = settingsWith([{ by: 'caller', requests: 2, interval: 60 }]);
    expect(await statuses(3, '/a', as('alice'))).toEqual([200, 200, 429]);
    // Same address, another caller: its own budget.
    expect(await statuses(2, '/a', as('bob'))).toEqual([200, 200]);
    // alice from another address is still alice.
    expect((await get('/a', as('alice', '', '127.0.0.3'))).status).toBe(429);
    // Anonymous clients are not one shared budget.
    expect(await statuses(3, '/a', { from: '127.0.0.4' })).toEqual([200, 200, 429]);
    expect(await statuses(1, '/a', { from: '127.0.0.5' })).toEqual([200]);
  });

  it('per role: a budget shared by the callers holding the role; roles narrow which callers a rule counts', async () => {
    current = settingsWith([
      { by: 'role', roles: ['free'], requests: 3, interval: 60 },
      { by: 'caller', roles: ['trial'], requests: 1, interval: 60 },
    ]);
    expect((await get('/a', as('alice', 'free'))).status).toBe(200);
    expect((await get('/a', as('bob', 'free,reader'))).status).toBe(200);
    expect((await get('/a', as('carol', 'free'))).status).toBe(200);
    const fourth = await get('/a', as('dave', 'free'));
    expect(fourth.status).toBe(429);
    expect(detailOf(fourth)).toContain('3 request(s) per 60 s per role');
    // Not counted by either rule.
    expect(await statuses(5, '/a', as('erin', 'paid'))).toEqual([200, 200, 200, 200, 200]);
    expect(await statuses(5, '/a', { from: '127.0.0.2' })).toEqual([200, 200, 200, 200, 200]);
    // A trial caller is limited on its own.
    expect(await statuses(2, '/a', as('frank', 'trial'))).toEqual([200, 429]);
    expect((await get('/a', as('grace', 'trial'))).status).toBe(200);
  });

  it('a route\'s own limit counts that route only (HEAD and GET together) and adds to the global rules', async () => {
    current = settingsWith([{ requests: 4, interval: 60 }]);
    const first = await get('/own', { from: '127.0.0.2' });
    expect(first.headers['ratelimit-policy']).toBe('4;w=60, 2;w=60');
    // The route's rule is the one closest to its limit.
    expect([first.headers['ratelimit-limit'], first.headers['ratelimit-remaining']]).toEqual(['2', '1']);
    expect((await get('/own', { from: '127.0.0.2', method: 'HEAD' })).status).toBe(200);
    const third = await get('/own', { from: '127.0.0.2' });
    expect(third.status).toBe(429);
    expect(detailOf(third)).toContain('2 request(s) per 60 s');
    // Other routes: the global rule only, which has counted the three requests above.
    const other = await get('/a', { from: '127.0.0.2' });
    expect([other.status, other.headers['ratelimit-limit'], other.headers['ratelimit-remaining']]).toEqual([200, '4', '0']);
    expect((await get('/a', { from: '127.0.0.2' })).status).toBe(429);
    expect((await get('/own', { from: '127.0.0.3' })).status).toBe(200);
  });

  it('a burst lets a client past the rate a few times, at most `burst` per burst_interval', async () => {
    current = settingsWith([{ requests: 2, interval: 60, burst: 2, burst_interval: 600 }]);
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await get('/a', { from: '127.0.0.2' }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 429]);
    expect(answers.map((a) => a.headers['ratelimit-remaining'])).toEqual(['1', '0', '0', '0', '0']);
    expect(answers[0].headers['ratelimit-policy']).toBe('2;w=60, 2;w=600;comment="burst"');
    // The main window resets first: that is when the client may come back.
    expect(Number(answers[4].headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  it('a limited request never asks for a resource slot, nor runs its handler', async () => {
    expect((await get('/slot', { from: '127.0.0.2' })).status).toBe(200);
    expect(seen).toEqual({ acquire: 1, handler: 1 });
    const refused = await get('/slot', { from: '127.0.0.2' });
    expect(refused.status).toBe(429);
    expect(seen).toEqual({ acquire: 1, handler: 1 });
  });

  it('lets the client in again once Retry-After has passed', async () => {
    current = settingsWith([{ requests: 1, interval: 1 }]);
    expect((await get('/a', { from: '127.0.0.2' })).status).toBe(200);
    const refused = await get('/a', { from: '127.0.0.2' });
    expect([refused.status, refused.headers['retry-after']]).toEqual([429, '1']);
    await expect.poll(async () => (await get('/a', { from: '127.0.0.2' })).status, { timeout: 3000, interval: 250 }).toBe(200);
  });

  it('the global rules are read at each request; an unchanged rule keeps its counts over a reload', async () => {
    expect(await statuses(3, '/a', { from: '127.0.0.2' })).toEqual([200, 200, 200]);
    current = settingsWith([{ requests: 2, interval: 60 }]);
    expect(await statuses(2, '/a', { from: '127.0.0.2' })).toEqual([200, 200]);
    current = settingsWith([{ requests: 2, interval: 60 }]);
    expect((await get('/a', { from: '127.0.0.2' })).status).toBe(429);
    // A changed rule is a new rule.
    current = settingsWith([{ requests: 3, interval: 60 }]);
    expect((await get('/a', { from: '127.0.0.2' })).status).toBe(200);
    current = settingsWith();
    expect(await statuses(3, '/a', { from: '127.0.0.2' })).toEqual([200, 200, 200]);
  });

  it('refuses rules it cannot apply, naming key and problem: in the config, and on a route when it is added', async () => {
    const cases: [unknown, string][] = [
      [{ requests: 5, interval: 60 }, 'must be a value or a list, not a mapping: rate_limit'],
      [[{ requests: 0, interval: 60 }], 'rate_limit[0].requests must be a whole number >= 1'],
      [[{ requests: 5, interval: 60 }, { requests: 5, interval: 0.5 }], 'rate_limit[1].interval must be a whole number of seconds'],
      [[{ by: 'tenant', requests: 5, interval: 60 }], 'rate_limit[0].by must be one of address, caller, role'],
      [[{ requests: 5, interval: 60, burst_interval: 30 }], 'rate_limit[0].burst_interval must not be shorter than its interval'],
      [[{ requests: 5, interval: 60, roles: [] }], 'rate_limit[0].roles must be a list of role names'],
      [[{ requests: 5, interval: 60, per: 'x' }], 'rate_limit[0] has an unknown key'],
    ];
    for (const [value, message] of cases) {
      expect(() => buildSettings({ resource_ids: [], rate_limit: value }, {}, { env: {} }), message).toThrow(message);
    }
    const bad = Fastify();
    registerRateLimits(bad, () => current, createRateLimitStore(() => current));
    expect(() => bad.get('/x', { config: { rate_limit: { requests: 1, interval: -1 } } }, async () => 'x')).toThrow(
      'route GET /x: config.rate_limit.interval must be a whole number of seconds',
    );
    await bad.close();
  });
});

/**
 * Rate limits in running gateways (dist/main.js): a single process with a global rule and a
 * declared endpoint's own; a cluster of 2 workers, where the limit holds for the whole process
 * group (counted in the primary), not per worker; two gateways sharing counters through Redis; and
 * a Redis that is killed or stopped, which neither hangs requests nor lifts the limit (each process
 * counts in its own memory until Redis answers again).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { createKey } from '../../src/auth/api-keys.js';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { ownRedis, TEST_REDIS_URL as REDIS_URL, type OwnRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait.js';
import { parseExposition, sumOf } from '../metrics/exposition.js';
import { call, detailOf, type Answer } from './client.js';

const running: GatewayProcess[] = [];
/** The tests that stop Redis start their own redis-server (test/helpers/redis-server.ts). */
const servers: OwnRedis[] = [];
afterEach(async () => {
  for (const gw of running.splice(0)) expect(await gw.stop()).toBe(0);
  for (const s of servers.splice(0)) await s.stop();
});

async function gateway(extra: Record<string, unknown>, endpoints: Record<string, unknown>[] = []): Promise<GatewayProcess> {
  const gw = await startGateway({
    configPatch: (doc, dir) => {
      Object.assign(doc, sqliteConfig(dir), { endpoints: [join(dir, 'limits.yaml')], shutdown_timeout: 5 }, extra);
      const open = { method: 'GET', path: '/open', resources: ['sqlite_traffic'], statements: [{ sql: 'SELECT 1 AS one' }] };
      writeFileSync(join(dir, 'limits.yaml'), stringify({ endpoints: [open, ...endpoints] }));
    },
  });
  running.push(gw);
  return gw;
}

const get = (gw: GatewayProcess, path = '/open', from = '127.0.0.2'): Promise<Answer> => call(`${gw.url}${path}`, { from });

async function statuses(n: number, next: (i: number) => Promise<Answer>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await next(i)).status);
  return out;
}

const count = (list: number[], status: number) => list.filter((s) => s === status).length;

describe('rate limits in a single gateway process', () => {
  it('a global rule and a declared endpoint\'s own: 429 with Retry-After and RateLimit headers, counted per caller in /metrics', async () => {
    const limited = { method: 'GET', path: '/limited', resources: ['sqlite_traffic'], statements: [{ sql: 'SELECT 2 AS two' }], rate_limit: { requests: 2, interval: 60 } };
    const gw = await gateway({ rate_limit: [{ by: 'address', requests: 5, interval: 60 }] }, [limited]);
    expect(await statuses(2, () => get(gw, '/limited'))).toEqual([200, 200]);
    const refused = await get(gw, '/limited');
    expect(refused.status).toBe(429);
    expect(detailOf(refused)).toMatch(/^rate limit reached: 2 request\(s\) per 60 s per client address; retry in \d+ s$/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(50);
    expect(refused.headers['ratelimit-policy']).toBe('5;w=60, 2;w=60');
    // The global rule has counted those three: two more, then 429 everywhere.
    expect(await statuses(3, () => get(gw))).toEqual([200, 200, 429]);
    expect((await get(gw, '/open', '127.0.0.3')).status).toBe(200);
    await waitFor('two 429 request-stats records', () => gw.parsed().filter((l) => l.fields.tag === 'request-stats' && l.fields.status_code === '429').length === 2);
    const metrics = parseExposition((await get(gw, '/metrics')).body);
    expect(sumOf(metrics, 'wt_rate_limited_total', { client_id: 'anonymous' })).toBe(2);
  }, 30_000);
});

describe('rate limits per API key and role, with real keys', () => {
  it('each key its own budget whatever its address, a role\'s budget shared by its keys; a refused credential is not counted', async () => {
    const keys = { alice: createKey(), bob: createKey(), carol: createKey() };
    const entry = (id: keyof typeof keys, roles: string[]) => ({ id, sha256: keys[id].sha256, roles });
    const gw = await gateway({
      auth: { api_keys: [entry('alice', ['free']), entry('bob', ['free']), entry('carol', ['paid'])] },
      rate_limit: [
        { by: 'caller', requests: 2, interval: 60 },
        { by: 'role', roles: ['free'], requests: 3, interval: 60 },
      ],
    });
    const as = (id: keyof typeof keys, from = '127.0.0.2') => call(`${gw.url}/open`, { from, headers: { 'X-API-Key': keys[id].key } });
    expect((await as('alice')).status).toBe(200);
    expect((await as('alice', '127.0.0.3')).status).toBe(200);
    const third = await as('alice', '127.0.0.4');
    expect(third.status).toBe(429);
    expect(detailOf(third)).toContain('per caller');
    // bob has his own 2, but the free role's 3 are shared: alice's refused third counted too.
    expect((await as('bob')).status).toBe(429);
    expect(detailOf(await as('bob'))).toContain('per role');
    expect((await statuses(2, () => as('carol'))).every((s) => s === 200)).toBe(true);
    // Refused by authentication first: never counted, never 429.
    for (let i = 0; i < 5; i++) expect((await call(`${gw.url}/open`, { from: '127.0.0.2', headers: { 'X-API-Key': 'not-a-key' } })).status).toBe(401);
    await waitFor('the 429s in the records with the caller', () =>
      gw.parsed().filter((l) => l.fields.tag === 'request-stats' && l.fields.status_code === '429').map((l) => l.fields.client_id).sort().join(',') === 'alice,bob,bob',
    );
  }, 30_000);
});

describe('rate limits in a cluster', () => {
  it('with 2 workers the limit holds for the whole process group, not per worker', async () => {
    const gw = await gateway({ workers: 2, rate_limit: [{ requests: 10, interval: 60 }] });
    await waitFor('two listening workers', () => new Set(gw.parsed().filter((l) => l.fields.tag === 'listening').map((l) => l.pid)).size >= 2, { timeout: 20_000 });
    // Each request on its own connection: the primary hands them to both workers in turn.
    const results = await statuses(30, () => get(gw));
    expect(count(results, 200)).toBe(10);
    expect(count(results, 429)).toBe(20);
    await waitFor('30 request-stats records', () => gw.parsed().filter((l) => l.fields.tag === 'request-stats').length >= 30);
    const served = gw.parsed().filter((l) => l.fields.tag === 'request-stats' && l.fields.status_code === '200');
    expect(new Set(served.map((l) => l.pid)).size, 'both workers served').toBe(2);
    // Another client still has its whole budget.
    expect(count(await statuses(10, () => get(gw, '/open', '127.0.0.3')), 200)).toBe(10);
    expect(gw.parsed().some((l) => l.fields.tag === 'rate-limit-store-err')).toBe(false);
  }, 60_000);
});

/** Waits until `gw` counts in `redis`: a request from `from` leaves its key there (until then it counts in memory). */
async function untilCountingIn(redis: Redis, gw: GatewayProcess, from: string): Promise<void> {
  await waitFor(`${gw.url} counting in Redis`, async () => {
    await get(gw, '/open', from);
    return (await redis.keys(`wt-rl:*:a:${from}`)).length > 0;
  });
}

describe('rate limits through Redis', () => {
  it('two gateways sharing a Redis share the limit; the counters are in Redis', async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const clear = async () => {
        const keys = await redis.keys('wt-rl:*');
        if (keys.length > 0) await redis.del(...keys);
      };
      await clear();
      const rule = { rate_limit_redis: REDIS_URL, rate_limit: [{ requests: 6, interval: 60 }] };
      const a = await gateway(rule);
      const b = await gateway(rule);
      await untilCountingIn(redis, a, '127.0.0.8');
      await untilCountingIn(redis, b, '127.0.0.9');
      const results = await statuses(12, (i) => get(i % 2 === 0 ? a : b));
      expect(results).toEqual([200, 200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
      const keys = await redis.keys('wt-rl:*');
      expect(keys.some((k) => k.endsWith(':a:127.0.0.2'))).toBe(true);
      expect(Number(await redis.get(keys.find((k) => k.endsWith(':a:127.0.0.2'))!))).toBe(12);
      await clear();
    } finally {
      redis.disconnect();
    }
  }, 60_000);

  it('a Redis that stops answering, then is gone, neither hangs requests nor lifts the limit', async () => {
    const server = await ownRedis();
    servers.push(server);
    const url = server.url;
    const gw = await gateway({ rate_limit_redis: url, rate_limit_timeout: 0.2, rate_limit: [{ requests: 3, interval: 60 }] });
    const probe = new Redis(url, { maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      await untilCountingIn(probe, gw, '127.0.0.9');
    } finally {
      probe.disconnect();
    }
    expect(await statuses(3, () => get(gw))).toEqual([200, 200, 200]);

    // Stopped (SIGSTOP): connected, but no answer. Each request waits rate_limit_timeout at most,
    // then is counted in the gateway's memory: 3 more, then 429.
    server.pause();
    const stopped: Answer[] = [];
    for (let i = 0; i < 4; i++) stopped.push(await get(gw, '/open', '127.0.0.4'));
    expect(stopped.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    for (const a of stopped) expect(a.ms).toBeLessThan(1500);
    const warning = await gw.waitForLine((l) => l.fields.tag === 'rate-limit-store-err', 5000);
    expect(warning.level).toBe('WARNING');
    expect(warning.fields.store).toBe('redis');

    // Gone: refused at once, counted locally the same way.
    await server.stop();
    const gone: Answer[] = [];
    for (let i = 0; i < 4; i++) gone.push(await get(gw, '/open', '127.0.0.5'));
    expect(gone.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    for (const a of gone) expect(a.ms).toBeLessThan(1500);
  }, 60_000);
});

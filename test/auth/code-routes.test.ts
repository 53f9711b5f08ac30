/**
 * Routes written in code declare who may call them in their config, as declared endpoints do:
 * `config: { auth: { roles } }`, `config: { public: true }`, or nothing (any caller once a
 * credential source is configured). An app built by buildApp, over real HTTP; its settings change
 * between tests as a reload would change them.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { buildApp } from '../../src/app.js';
import { buildSettings } from '../../src/config/index.js';
import type { Settings } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics/catalogue.js';
import { requestObserver } from '../../src/metrics/bind.js';
import { metricsPlugin } from '../../src/metrics/plugin.js';

const ops = createKey();
const reader = createKey();
const withKeys = buildSettings(
  { resource_ids: [], auth: { metrics_roles: ['ops'], api_keys: [{ id: 'ops', sha256: ops.sha256, roles: ['ops'] }, { id: 'reader', sha256: reader.sha256, roles: ['reader'] }] } },
  {},
  { env: {} },
);
const noAuth = buildSettings({ resource_ids: [] }, {}, { env: {} });
let current: Settings = withKeys;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  const metrics = createMetrics();
  app = await buildApp({
    settings: () => current,
    acquirer: { has: () => true, acquireNow: () => undefined, acquire: () => Promise.reject(new Error('no resources here')) },
    readiness: () => ({ ready: true, unavailable: [] }),
    observer: requestObserver(metrics, () => []),
    onQuery: () => undefined,
    metricsPlugin: async (a) => {
      await a.register(metricsPlugin, { metrics, settings: () => current });
    },
    isShuttingDown: () => false,
    docs: false,
    version: 'test',
  });
  const who = (req: { wt: { caller?: { id: string } } }) => ({ caller: req.wt.caller?.id ?? null });
  app.get('/plain', async (req) => who(req));
  app.get('/ops-only', { config: { auth: { roles: ['ops'] } } }, async (req) => who(req));
  app.get('/open', { config: { public: true } }, async (req) => who(req));
  app.post('/write', async (req) => who(req));
  await app.ready();
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
});

async function call(path: string, key?: string, method = 'GET'): Promise<{ status: number; body: unknown }> {
  const res = await fetch(base + path, { method, headers: key ? { 'x-api-key': key } : {}, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json() };
}

describe('code routes', () => {
  it('follow their config: nothing = any caller, auth.roles = those roles, public = anyone', async () => {
    current = withKeys;
    expect(await call('/plain')).toMatchObject({ status: 401 });
    expect(await call('/plain', reader.key)).toEqual({ status: 200, body: { caller: 'reader' } });
    expect(await call('/ops-only', reader.key)).toMatchObject({ status: 403 });
    expect(await call('/ops-only', ops.key)).toEqual({ status: 200, body: { caller: 'ops' } });
    expect(await call('/open')).toEqual({ status: 200, body: { caller: null } });
    expect(await call('/write', undefined, 'POST')).toMatchObject({ status: 401 });
  });

  it('without a credential source everything is open as before, except a route naming roles', async () => {
    current = noAuth;
    try {
      expect(await call('/plain')).toEqual({ status: 200, body: { caller: null } });
      expect(await call('/write', undefined, 'POST')).toEqual({ status: 200, body: { caller: null } });
      expect(await call('/ops-only')).toMatchObject({ status: 401 });
      expect(await call('/ops-only', ops.key)).toMatchObject({ status: 401 });
    } finally {
      current = withKeys;
    }
  });

  it('/metrics asks auth.metrics_roles and its basic auth still applies: the key then goes in X-API-Key', async () => {
    const scrape = async (headers: Record<string, string>) => (await fetch(`${base}/metrics`, { headers, signal: AbortSignal.timeout(5000) })).status;
    const basic = { authorization: `Basic ${Buffer.from('prom:secret').toString('base64')}` };
    process.env.WT_METRICS_USER = 'prom';
    process.env.WT_METRICS_PASSWORD = 'secret';
    try {
      expect(await scrape(basic)).toBe(401); // no key: the roles are not met
      expect(await scrape({ 'x-api-key': ops.key })).toBe(401); // no basic credentials
      expect(await scrape({ ...basic, 'x-api-key': reader.key })).toBe(403);
      expect(await scrape({ ...basic, 'x-api-key': ops.key })).toBe(200);
    } finally {
      delete process.env.WT_METRICS_USER;
      delete process.env.WT_METRICS_PASSWORD;
    }
    expect(await scrape({ authorization: `Bearer ${ops.key}` })).toBe(200);
  });

  it('a route with a bad auth config is refused when it is added', async () => {
    const fresh = await buildApp({
      settings: () => current,
      acquirer: { has: () => true, acquireNow: () => undefined, acquire: () => Promise.reject(new Error('none')) },
      readiness: () => ({ ready: true, unavailable: [] }),
      observer: { requestDone: () => undefined },
      onQuery: () => undefined,
      metricsPlugin: () => undefined,
      isShuttingDown: () => false,
      docs: false,
      version: 'test',
    });
    try {
      expect(() => fresh.get('/bad', { config: { public: true, auth: { roles: ['ops'] } } }, async () => ({}))).toThrow(
        'route GET /bad: config.public: true and auth.roles contradict each other',
      );
    } finally {
      await fresh.close();
    }
  });
});

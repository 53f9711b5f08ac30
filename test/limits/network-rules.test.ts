/**
 * Network rules on code routes (`config.allow` / `config.deny`), over real HTTP to an app built by
 * buildApp: a refused client is answered before authentication (a stand-in hook registered after
 * the app's, as authentication is), before its body is read and before a resource is asked for.
 */
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { buildSettings, setConfig } from '../../src/config/index.js';
import type { Settings } from '../../src/config/schema.js';
import { registerNetworkRules } from '../../src/limits/network-rules.js';
import { setLogDestination } from '../../src/log/index.js';
import type { RequestResources } from '../../src/resources/request-resources.js';
import { parseLogLine } from '../helpers/logfmt-parse.js';
import { call, detailOf } from './client.js';

const settingsWith = (extra: Record<string, unknown> = {}): Settings => buildSettings({ resource_ids: [], ...extra }, {}, { env: {} });
let current = settingsWith();
const lines: string[] = [];
const seen = { auth: 0, body: 0, acquire: 0, handler: 0 };
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  setConfig(current);
  setLogDestination(new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean)), cb()) }));
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
  // Stand-in for authentication: an app-level onRequest hook registered after the app's own.
  app.addHook('onRequest', (_req, _reply, done) => {
    seen.auth++;
    done();
  });
  app.addHook('preParsing', (_req, _reply, payload, done) => {
    seen.body++;
    done(null, payload);
  });
  app.get('/only-two', { config: { allow: ['127.0.0.2'] } }, async () => {
    seen.handler++;
    return { ok: true };
  });
  app.post('/not-three', { config: { deny: ['127.0.0.3/32'], resources: ['r1'] } }, async () => {
    seen.handler++;
    return { ok: true };
  });
  app.get('/open', async () => ({ ok: true }));
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
  current = settingsWith();
  setConfig(current);
});
beforeEach(() => {
  lines.length = 0;
  Object.assign(seen, { auth: 0, body: 0, acquire: 0, handler: 0 });
});

const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rows: [1, 2, 3] }) };

describe('network rules on code routes', () => {
  it('a route\'s allow and deny lists refuse other clients before authentication, the body, a resource or the handler', async () => {
    const refused = await call(`${base}/only-two`, { from: '127.0.0.3' });
    expect(refused.status).toBe(403);
    expect(detailOf(refused)).toBe('client 127.0.0.3 may not call this endpoint');
    const denied = await call(`${base}/not-three`, { from: '127.0.0.3', ...post });
    expect(denied.status).toBe(403);
    expect(seen).toEqual({ auth: 0, body: 0, acquire: 0, handler: 0 });
    const records = lines.map(parseLogLine).filter((l) => l.fields.tag === 'access-denied');
    expect(records.map((r) => [r.fields.rule, r.fields.scope, r.fields.client])).toEqual([
      ['allow', 'endpoint', '127.0.0.3'],
      ['deny', 'endpoint', '127.0.0.3'],
    ]);

    expect((await call(`${base}/only-two`, { from: '127.0.0.2' })).status).toBe(200);
    expect((await call(`${base}/not-three`, { from: '127.0.0.2', ...post })).status).toBe(200);
    expect(seen).toEqual({ auth: 2, body: 2, acquire: 1, handler: 2 });
    expect((await call(`${base}/open`, { from: '127.0.0.3' })).status).toBe(200);
  });

  it('the global lists are read at each request: a new settings object applies to the next one', async () => {
    try {
      current = settingsWith({ deny: ['127.0.0.0/30'] });
      expect((await call(`${base}/open`, { from: '127.0.0.2' })).status).toBe(403);
      expect((await call(`${base}/open`, { from: '127.0.0.5' })).status).toBe(200);
      current = settingsWith({ allow: ['127.0.0.5'] });
      expect((await call(`${base}/open`, { from: '127.0.0.2' })).status).toBe(403);
      // Both lists: the global one lets 127.0.0.2 in no more, whatever the route allows.
      expect((await call(`${base}/only-two`, { from: '127.0.0.2' })).status).toBe(403);
      expect(seen.auth).toBe(1);
    } finally {
      current = settingsWith();
    }
    expect((await call(`${base}/open`, { from: '127.0.0.2' })).status).toBe(200);
  });

  it('a route whose lists cannot be read is refused when it is added, naming route, key and entry', async () => {
    const bad = Fastify();
    registerNetworkRules(bad, () => current);
    expect(() => bad.get('/x', { config: { deny: ['10.0.0.0/8', 'localhost'] } }, async () => 'x')).toThrow(
      'route GET /x: config.deny[1] is not an IP address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1/128); host names are not resolved',
    );
    expect(() => bad.get('/y', { config: { allow: '10.0.0.1' as unknown as string[] } }, async () => 'y')).toThrow('config.allow must be a list');
    await bad.close();
  });

  it('config keys allow, deny and trust_proxy refuse what is not an address or CIDR block', () => {
    for (const key of ['allow', 'deny', 'trust_proxy']) {
      expect(() => settingsWith({ [key]: ['::1', '10.0.0.0/33'] }), key).toThrow(`${key}[1] is not an IP address or CIDR block`);
    }
    expect(settingsWith({ allow: ['10.0.0.0/8', '2001:db8::/32'], trust_proxy: ['127.0.0.1'] }).allow).toEqual(['10.0.0.0/8', '2001:db8::/32']);
  });
});

import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildSettings, config, setConfig } from '../../src/config/index.js';
import { registerErrorReplies } from '../../src/http/error-reply.js';
import { registerLifecycle } from '../../src/http/lifecycle.js';
import { createMetrics } from '../../src/metrics/catalogue.js';
import { initChildren } from '../../src/metrics/bind.js';
import { metricsPlugin } from '../../src/metrics/plugin.js';

let app: FastifyInstance;

function useConfig(metricsAllow: string[]): void {
  setConfig(buildSettings({ resource_ids: [], metrics_allow: metricsAllow }, {}, { env: {} }));
}

async function build(opts: { getText?: () => Promise<string> } = {}): Promise<FastifyInstance> {
  const metrics = createMetrics();
  initChildren(metrics, ['/x'], ['r1']);
  const a = Fastify();
  // As in the app: refusals are answered by its error replies, with the request's correlation id.
  registerLifecycle(a, { requestDone: () => undefined }, () => false, config);
  registerErrorReplies(a, config);
  await a.register(metricsPlugin, { metrics, ...opts });
  await a.ready();
  return a;
}

beforeEach(() => {
  useConfig([]);
  delete process.env.WT_METRICS_USER;
  delete process.env.WT_METRICS_PASSWORD;
});
afterEach(async () => {
  await app?.close();
  delete process.env.WT_METRICS_USER;
  delete process.env.WT_METRICS_PASSWORD;
});

describe('GET /metrics', () => {
  it('serves the Prometheus text format at exactly /metrics, without redirects', async () => {
    app = await build();
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.body).toContain('# TYPE wt_requests_total counter');
    const slash = await app.inject({ method: 'GET', url: '/metrics/' });
    expect(slash.statusCode).not.toBe(307);
    expect(slash.statusCode).not.toBe(308);
    expect(slash.headers.location).toBeUndefined();
  });

  it('serves what getText returns (cluster aggregate), 503 when it fails', async () => {
    let fail = false;
    app = await build({ getText: async () => (fail ? Promise.reject(new Error('primary busy')) : '# aggregate\n') });
    expect((await app.inject({ url: '/metrics' })).body).toBe('# aggregate\n');
    fail = true;
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ detail: 'metrics unavailable: primary busy', cid: res.headers['x-correlation-id'] });
  });

  it('refuses clients outside metrics_allow with 403 naming the client, read at request time', async () => {
    app = await build();
    useConfig(['10.1.2.3']);
    const refused = await app.inject({ url: '/metrics', remoteAddress: '127.0.0.1' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ detail: 'client 127.0.0.1 is not allowed to read /metrics', cid: refused.headers['x-correlation-id'] });
    expect((await app.inject({ url: '/metrics', remoteAddress: '10.1.2.3' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics', remoteAddress: '::ffff:10.1.2.3' })).statusCode).toBe(200);
    useConfig([]);
    expect((await app.inject({ url: '/metrics', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
  });

  it('asks for basic auth when a user and password are configured', async () => {
    process.env.WT_METRICS_USER = 'prom';
    process.env.WT_METRICS_PASSWORD = 's3cret';
    app = await build();
    const none = await app.inject({ url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="metrics"/);
    expect(none.json()).toEqual({ detail: 'authentication required for /metrics', cid: none.headers['x-correlation-id'] });
    const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(s).toString('base64')}` });
    expect((await app.inject({ url: '/metrics', headers: basic('prom:wrong') })).statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics', headers: basic('prom:s3cret') })).statusCode).toBe(200);
  });
});

/**
 * Who is calling, in the records and the metrics, over real HTTP to an app built by buildApp. A
 * test-only onRequest hook stands in for authentication and rate limits: registered after the
 * app's own hooks, as those will be, it sets `request.wt.caller` from a test header and refuses a
 * request with the errors they answer with (UnauthorizedError, ForbiddenError, RateLimitedError).
 */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { buildSettings, setConfig } from '../../src/config/index.js';
import type { Settings } from '../../src/config/schema.js';
import { DatabaseError, ForbiddenError, RateLimitedError, TooManyPendingError, UnauthorizedError } from '../../src/errors.js';
import { setLogDestination } from '../../src/log/index.js';
import { initChildren, requestObserver } from '../../src/metrics/bind.js';
import { createMetrics } from '../../src/metrics/catalogue.js';
import { metricsPlugin } from '../../src/metrics/plugin.js';
import { parseLogLine, type ParsedLine } from '../helpers/logfmt-parse.js';
import { waitFor } from '../helpers/wait.js';
import { parseExposition } from '../metrics/exposition.js';

const settingsWith = (clientMetrics: string[]): Settings => buildSettings({ resource_ids: [], client_metrics: clientMetrics }, {}, { env: {} });

let current = settingsWith(['reporting']);
const lines: string[] = [];
let app: FastifyInstance;
let base: string;

const REFUSALS: Record<string, () => Error> = {
  unauthenticated: () => new UnauthorizedError('credentials missing or invalid'),
  forbidden: () => new ForbiddenError('the caller\'s roles do not allow this endpoint'),
  'rate-limited': () => new RateLimitedError('rate limit reached'),
};

beforeAll(async () => {
  setConfig(current);
  setLogDestination(new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean)), cb()) }));
  const metrics = createMetrics();
  const settings = () => current;
  const routeUrls: string[] = [];
  app = await buildApp({
    settings,
    acquirer: { has: () => true, acquireNow: () => undefined, acquire: () => Promise.reject(new Error('no resources here')) },
    readiness: () => ({ ready: true, unavailable: [] }),
    observer: requestObserver(metrics, () => current.client_metrics),
    onQuery: () => undefined,
    metricsPlugin: async (a) => {
      await a.register(metricsPlugin, { metrics, settings });
    },
    isShuttingDown: () => false,
    docs: false,
    version: 'test',
    routeUrls,
  });
  // Stand-in for authentication and rate limits (src/auth/, not part of this test).
  app.addHook('onRequest', (req, _reply, done) => {
    // Percent-encoded, so a subject with quotes or a newline can be sent.
    const id = req.headers['x-test-caller'];
    if (typeof id === 'string') req.wt.caller = { id: decodeURIComponent(id), via: 'jwt', roles: [], claims: {} };
    const refuse = req.headers['x-test-refuse'];
    done(typeof refuse === 'string' ? REFUSALS[refuse]!() : undefined);
  });
  app.get('/ok', async () => ({ ok: true }));
  app.get('/fail', async () => {
    throw new DatabaseError('query failed', { resourceId: 'r1' });
  });
  app.get('/queue-full', async () => {
    throw new TooManyPendingError('too many requests waiting for r1', { resourceId: 'r1' });
  });
  app.get('/queried', async (req) => {
    // What the query layer leaves for the query-stats record (src/query/query.ts).
    req.wt.queries.push({ resourceId: 'r1', connId: 1, sql: 'SELECT 1', params: [], seconds: 0.001, startedAt: 0, rowCount: 1 });
    return { ok: true };
  });
  await app.ready();
  initChildren(metrics, [...new Set(routeUrls)], [], current.client_metrics);
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
  current = settingsWith([]);
  setConfig(current);
});
beforeEach(() => {
  lines.length = 0;
});

async function call(path: string, headers: Record<string, string> = {}): Promise<{ status: number; cid: string }> {
  const r = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(5000) });
  await r.arrayBuffer();
  return { status: r.status, cid: r.headers.get('x-correlation-id') ?? '' };
}

/** The records of one request, once its request-stats record (its last) was written. */
async function recordsOf(cid: string): Promise<ParsedLine[]> {
  return waitFor(`the records of ${cid}`, async () => {
    const mine = lines.map(parseLogLine).filter((l) => l.fields.cid === cid);
    return mine.some((l) => l.fields.tag === 'request-stats') ? mine : undefined;
  }, { timeout: 5000 });
}

/** Basic-auth credentials of the scrapes, once a test sets WT_METRICS_USER and WT_METRICS_PASSWORD. */
let scrapeHeaders: Record<string, string> = {};

/** One sample's value from GET /metrics (0 when the series does not exist). */
async function sample(name: string, labels: Record<string, string>): Promise<number> {
  const r = await fetch(`${base}/metrics`, { headers: scrapeHeaders, signal: AbortSignal.timeout(5000) });
  const exp = parseExposition(await r.text());
  const found = exp.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

/**
 * Expects the change of a set of samples across `action` to become `expected`: a request is counted
 * when its response closes, a moment after the client has it (quiet paths write no record to wait for).
 */
async function expectDeltas(names: [string, Record<string, string>][], action: () => Promise<string[]>, expected: number[]): Promise<void> {
  const before = await Promise.all(names.map(([n, l]) => sample(n, l)));
  for (const cid of await action()) await recordsOf(cid);
  const deltas = async () => (await Promise.all(names.map(([n, l]) => sample(n, l)))).map((v, i) => v - before[i]!);
  await expect.poll(deltas, { timeout: 5000, interval: 50 }).toEqual(expected);
}

describe('client_id in the request records', () => {
  it('names the caller beside the address in the request, query-stats and request-stats records', async () => {
    const { status, cid } = await call('/queried', { 'x-test-caller': 'reporting' });
    expect(status).toBe(200);
    const records = await recordsOf(cid);
    expect(records.map((l) => l.fields.tag)).toEqual(['request', 'query-stats', 'request-stats']);
    for (const r of records) expect(r.fields, r.fields.tag).toMatchObject({ client: '127.0.0.1', client_id: 'reporting' });
  });

  it('says anonymous without a caller, and a caller not listed in client_metrics by its own id', async () => {
    const anonymous = await call('/ok');
    for (const r of await recordsOf(anonymous.cid)) expect(r.fields.client_id, r.fields.tag).toBe('anonymous');
    // Records name every caller; only the metrics fold unlisted ones into "other".
    const unlisted = await call('/ok', { 'x-test-caller': encodeURIComponent('batch "nightly"\njob') });
    const records = await recordsOf(unlisted.cid);
    expect(records).toHaveLength(2);
    for (const r of records) expect(r.fields.client_id, r.fields.tag).toBe('batch "nightly"\njob');
  });

  it('writes the request record once, after authentication: also for a request refused before any handler', async () => {
    const refused = await call('/ok', { 'x-test-caller': 'reporting', 'x-test-refuse': 'forbidden' });
    expect(refused.status).toBe(403);
    const records = await recordsOf(refused.cid);
    expect(records.map((l) => l.fields.tag)).toEqual(['request', 'request-stats']);
    expect(records.map((l) => l.fields.client_id)).toEqual(['reporting', 'reporting']);
    expect(records[1]!.fields.status_code).toBe('403');

    const unauthenticated = await call('/ok', { 'x-test-refuse': 'unauthenticated' });
    expect(unauthenticated.status).toBe(401);
    expect((await recordsOf(unauthenticated.cid)).map((l) => `${l.fields.tag} ${l.fields.client_id}`)).toEqual(['request anonymous', 'request-stats anonymous']);
  });
});

describe('metrics per caller', () => {
  const requests = (client_id: string, status_code: string): [string, Record<string, string>] => ['wt_client_requests_total', { client_id, status_code }];
  const durations = (client_id: string): [string, Record<string, string>] => ['wt_client_request_duration_seconds_count', { client_id }];

  it('counts requests and durations under a listed caller, other or anonymous, by status class', async () => {
    const names = [requests('reporting', '2xx'), requests('reporting', '5xx'), requests('other', '2xx'), requests('anonymous', '2xx'), requests('anonymous', '4xx'),
      durations('reporting'), durations('other'), durations('anonymous')];
    await expectDeltas(names, async () => [
      (await call('/ok', { 'x-test-caller': 'reporting' })).cid,
      (await call('/ok', { 'x-test-caller': 'reporting' })).cid,
      (await call('/fail', { 'x-test-caller': 'reporting' })).cid,
      (await call('/ok', { 'x-test-caller': 'someone-else' })).cid,
      (await call('/ok', { 'x-test-caller': 'a-third-one' })).cid,
      (await call('/ok')).cid,
      (await call('/no-such-route')).cid,
    ], [2, 1, 2, 1, 1, 3, 2, 2]);
    // Unlisted callers never get a series of their own.
    expect(await sample('wt_client_requests_total', { client_id: 'someone-else' })).toBe(0);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).not.toContain('someone-else');
  });

  it('counts 401 and 403 as auth failures and a rate limit as such, not a full resource queue, quiet paths included', async () => {
    const names: [string, Record<string, string>][] = [
      ['wt_auth_failures_total', { client_id: 'anonymous', reason: 'unauthenticated' }],
      ['wt_auth_failures_total', { client_id: 'reporting', reason: 'forbidden' }],
      ['wt_rate_limited_total', { client_id: 'reporting' }],
      ['wt_rate_limited_total', { client_id: 'other' }],
      ['wt_rate_limited_total', {}],
      ['wt_client_requests_total', { client_id: 'reporting', status_code: '4xx' }],
    ];
    await expectDeltas(names, async () => {
      const cids = [
        (await call('/ok', { 'x-test-refuse': 'unauthenticated' })).cid,
        (await call('/ok', { 'x-test-caller': 'reporting', 'x-test-refuse': 'forbidden' })).cid,
        (await call('/ok', { 'x-test-caller': 'reporting', 'x-test-refuse': 'rate-limited' })).cid,
        (await call('/ok', { 'x-test-caller': 'someone-else', 'x-test-refuse': 'rate-limited' })).cid,
      ];
      const full = await call('/queue-full', { 'x-test-caller': 'reporting' });
      expect(full.status).toBe(429);
      cids.push(full.cid);
      // A refused scrape writes no records and is no request in the per-caller counters, but is a refusal.
      expect((await call('/metrics', { 'x-test-refuse': 'unauthenticated' })).status).toBe(401);
      return cids;
      // unauthenticated: the /ok and the /metrics one; the queue's 429 is no rate limit.
    }, [2, 1, 1, 1, 2, 3]);
  });

  it('counts a scrape refused for want of the /metrics basic-auth credentials as unauthenticated', async () => {
    process.env.WT_METRICS_USER = 'scraper';
    process.env.WT_METRICS_PASSWORD = 'right';
    scrapeHeaders = { authorization: `Basic ${Buffer.from('scraper:right').toString('base64')}` };
    try {
      const names: [string, Record<string, string>][] = [['wt_auth_failures_total', { client_id: 'anonymous', reason: 'unauthenticated' }]];
      await expectDeltas(names, async () => {
        expect((await call('/metrics')).status).toBe(401);
        expect((await call('/metrics', { authorization: `Basic ${Buffer.from('scraper:wrong').toString('base64')}` })).status).toBe(401);
        return [];
      }, [2]);
    } finally {
      delete process.env.WT_METRICS_USER;
      delete process.env.WT_METRICS_PASSWORD;
      scrapeHeaders = {};
    }
  });

  it('follows a reload of client_metrics: a newly listed caller gets its own series, one no longer listed counts as other', async () => {
    try {
      current = settingsWith(['billing']);
      const names = [requests('billing', '2xx'), requests('reporting', '2xx'), requests('other', '2xx')];
      await expectDeltas(names, async () => [(await call('/ok', { 'x-test-caller': 'billing' })).cid, (await call('/ok', { 'x-test-caller': 'reporting' })).cid], [1, 0, 1]);
      // Created at zero with the new list, before the first refusal of that caller.
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toContain('wt_rate_limited_total{client_id="billing"} 0');
    } finally {
      current = settingsWith(['reporting']);
    }
  });
});

describe('config client_metrics', () => {
  it('refuses an entry that is empty, reserved or repeated, naming it by index', () => {
    for (const [list, message] of [
      [['a', ''], /client_metrics\[1\] must be a non-empty string/],
      [['a', 'other'], /client_metrics\[1\] is reserved/],
      [['anonymous'], /client_metrics\[0\] is reserved/],
      [['a', 'b', 'a'], /client_metrics\[2\] is listed twice/],
    ] as const) {
      expect(() => settingsWith([...list]), JSON.stringify(list)).toThrow(message);
    }
    expect(settingsWith(['a', 'b']).client_metrics).toEqual(['a', 'b']);
  });
});

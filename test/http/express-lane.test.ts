/**
 * The express lane (src/http/express-lane.ts) in a whole gateway (createGateway: the shared server,
 * the app, the records and metrics), over real HTTP on a real SQLite file.
 *
 * - Its answer is the one the whole path gives: compared with the same hit answered through
 *   Fastify (a request with a trace context, which the lane leaves to Fastify), and with the miss
 *   that stored the entry: status, headers, bytes, records and metrics. The same for HEAD and for
 *   304.
 * - It answers nothing a request hook would have answered otherwise: a URL it learnt is refused
 *   once the live settings add authentication, a deny rule or a rate limit, a caller with a
 *   credential goes through Fastify, a trusted proxy's client is recorded and checked as Fastify
 *   reads it, and a gateway whose cache is kept in Redis has no lane.
 * - Under load with clients that leave mid-body and right after sending, and one that stops
 *   reading a 16 MB answer: nothing is held, every answer has both records (the one that stopped
 *   reading marked aborted), and the next run is answered without a 5xx.
 *
 * Which requests the lane answered is counted by wrapping expressLane (vi.mock).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { createKey } from '../../src/auth/api-keys.js';
import { buildSettings, setConfig, type Settings } from '../../src/config/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { flushLogs, setLogDestination } from '../../src/log/index.js';
import type { ExpressLaneDeps } from '../../src/http/express-lane.js';
import { parseExposition } from '../metrics/exposition.js';
import { TEST_REDIS_URL } from '../helpers/redis-server.js';
import { openRaw } from '../helpers/raw-http.js';
import { fiveXx, runLoad } from '../helpers/load-client.js';
import { connect } from 'node:net';

/** URLs the lane answered, in order. */
const answered = vi.hoisted(() => [] as string[]);

vi.mock('../../src/http/express-lane.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/http/express-lane.js')>();
  return {
    ...real,
    expressLane: (deps: ExpressLaneDeps) => {
      const lane = real.expressLane(deps);
      return (req: Parameters<typeof lane>[0], res: Parameters<typeof lane>[1]) => {
        const took = lane(req, res);
        if (took) answered.push(`${req.method} ${req.url}`);
        return took;
      };
    },
  };
});

const RID = 'lite';
const work = mkdtempSync(join(tmpdir(), 'wt-express-'));
const KEY = createKey();
const lines: string[] = [];

function baseSettings(extra: Record<string, unknown> = {}): Settings {
  return buildSettings(
    {
      log_level: 'INFO',
      resource_ids: [RID],
      port: 0,
      docs_enabled: false,
      // A miss's answer then has exactly the headers of a hit.
      server_timing: false,
      // The 16 MB answer of /wide is kept: more than loopback's socket buffers take in.
      cache_max_entry_bytes: 32 * 1024 * 1024,
      resources: { [RID]: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 } },
      secure: { [RID]: { db_type: 'sqlite', db_path: join(work, 'items.db') } },
      endpoints: [join(work, 'items.yaml')],
      ...extra,
    },
    {},
    { env: {} },
  );
}

/** What the gateway reads at each request: tests swap it as a reload would. */
let current: Settings;
let gw: Gateway;
let base: string;

beforeAll(async () => {
  setLogDestination(
    new Writable({
      write: (chunk: Buffer, _e, cb) => {
        lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
        cb();
      },
    }),
  );
  const db = new Database(join(work, 'items.db'));
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
  for (let i = 1; i <= 5; i++) db.prepare('INSERT INTO items VALUES (?, ?)').run(i, `n${i}`);
  db.exec(`CREATE TABLE wide (id INTEGER PRIMARY KEY, pad TEXT NOT NULL);
    WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 160000) INSERT INTO wide SELECT i, printf('%.80c', 'x') FROM g;`);
  db.close();
  writeFileSync(
    join(work, 'items.yaml'),
    stringify({
      endpoints: [
        {
          method: 'GET', path: '/items', resources: [RID], public: true,
          params: { min_id: { type: 'integer', minimum: 0, maximum: 1000, default: 0 } },
          statements: [{ sql: 'SELECT id, name FROM items WHERE id >= :min_id ORDER BY id' }],
          formats: ['json', 'csv'], cache: { ttl: 60 },
        },
        {
          method: 'GET', path: '/wide', resources: [RID], public: true,
          params: { limit: { type: 'integer', minimum: 1, maximum: 200000, default: 200000 } },
          statements: [{ sql: 'SELECT id, pad FROM wide ORDER BY id LIMIT :limit' }],
          cache: { ttl: 60 },
        },
        {
          method: 'GET', path: '/names', resources: [RID],
          statements: [{ sql: 'SELECT name FROM items ORDER BY id' }],
          cache: { ttl: 60 },
        },
      ],
    }),
  );
  current = baseSettings();
  setConfig(current);
  gw = await createGateway({ settings: () => current });
  base = await gw.listen();
}, 30_000);

afterAll(async () => {
  await gw?.shutdown();
  setLogDestination(process.stdout);
  rmSync(work, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function call(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const res = await fetch(`${base}${path}`, { method, headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) };
}

/** Headers that differ between any two answers (time, connection, the request's own id and duration). */
function comparable(a: Answer, without: string[] = []): Record<string, string> {
  const h = { ...a.headers };
  for (const k of ['date', 'x-correlation-id', 'x-process-time', 'keep-alive', 'connection', ...without]) delete h[k];
  return h;
}

/** The records of the request with correlation id `cid`, without the cid and the duration. */
function recordsOf(cid: string): string[] {
  flushLogs();
  return lines.filter((l) => l.endsWith(` cid=${cid}`)).map((l) => l.replace(/ cid=\S+$/, '').replace(/ duration=\S+/, ''));
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await gw.metrics.registry.metrics();
  return parseExposition(text).samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
}

const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('the express lane', () => {
  it('answers a repeated hit as the whole path does: headers, bytes, records and metrics', async () => {
    const url = '/items?min_id=2';
    const miss = await call(url, { accept: '*/*' });
    expect(miss.status).toBe(200);
    expect(answered).not.toContain(`GET ${url}`);
    const requestsBefore = await metric('wt_requests_total', { endpoint: '/items' });
    const hitsBefore = await metric('wt_cache_hits_total', { endpoint: '/items' });

    const viaLane = await call(url, { accept: '*/*' });
    expect(answered).toContain(`GET ${url}`);
    // The same hit through Fastify: a trace context is left to the lifecycle, which answers it with its own traceparent.
    const count = answered.length;
    const viaFastify = await call(url, { accept: '*/*', traceparent: TRACE });
    expect(answered).toHaveLength(count);
    expect(viaFastify.headers.traceparent).toBeDefined();

    for (const other of [miss, viaFastify]) {
      expect(viaLane.status).toBe(other.status);
      expect(viaLane.body.equals(other.body)).toBe(true);
      expect(comparable(viaLane)).toEqual(comparable(other, ['traceparent']));
    }
    expect(Object.keys(viaLane.headers).sort()).toEqual(Object.keys(viaFastify.headers).filter((k) => k !== 'traceparent').sort());
    expect(viaLane.headers['x-process-time']).toMatch(/^\d+\.\d{3}$/);
    expect(viaLane.headers['x-correlation-id']).toMatch(/^[0-9a-f]+$/);

    // The same records: request on arrival, request-stats at the end (no query: queries=0, as Fastify's hit).
    // request-stats is written when the response closes.
    for (const a of [viaLane, viaFastify]) await expect.poll(() => recordsOf(a.headers['x-correlation-id'])).toHaveLength(2);
    const lane = recordsOf(viaLane.headers['x-correlation-id']);
    expect(lane).toEqual(recordsOf(viaFastify.headers['x-correlation-id']));
    expect(lane[0]).toMatch(/ INFO lifecycle\.ts tag=request msg="GET \/items\?min_id=2" client=127\.0\.0\.1 client_id=anonymous$/);
    expect(lane[1]).toMatch(/tag=request-stats .* queries=0 status_code=200 content_length=\d+$/);
    // Metrics: both hits counted as requests of the endpoint and as cache hits.
    expect(await metric('wt_requests_total', { endpoint: '/items' })).toBe(requestsBefore + 2);
    expect(await metric('wt_cache_hits_total', { endpoint: '/items' })).toBe(hitsBefore + 2);
  });

  it('answers HEAD without a body and a matching If-None-Match with 304, as Fastify does', async () => {
    const url = '/items?min_id=3';
    const first = await call(url);
    const etag = first.headers.etag;
    // HEAD learns apart from GET (a HEAD route of its own would never learn): its first goes through Fastify.
    const before = answered.length;
    expect((await call(url, {}, 'HEAD')).status).toBe(200);
    expect(answered).toHaveLength(before);
    for (const [method, headers] of [
      ['HEAD', {}],
      ['GET', { 'if-none-match': etag }],
      ['GET', { 'if-none-match': `W/${etag}, "other"` }],
    ] as const) {
      const count = answered.length;
      const viaLane = await call(url, headers, method);
      expect(answered).toHaveLength(count + 1);
      const viaFastify = await call(url, { ...headers, traceparent: TRACE }, method);
      expect(answered).toHaveLength(count + 1);
      expect(viaLane.status).toBe(method === 'HEAD' ? 200 : 304);
      expect(viaLane.status).toBe(viaFastify.status);
      expect(viaLane.body).toHaveLength(0);
      expect(viaFastify.body).toHaveLength(0);
      expect(comparable(viaLane)).toEqual(comparable(viaFastify, ['traceparent']));
    }
  });

  it('keeps a format per Accept', async () => {
    const url = '/items?min_id=4';
    const json = await call(url, { accept: 'application/json' });
    const csv = await call(url, { accept: 'text/csv' });
    const count = answered.length;
    const csvAgain = await call(url, { accept: 'text/csv' });
    const jsonAgain = await call(url, { accept: 'application/json' });
    expect(answered).toHaveLength(count + 2);
    expect(csvAgain.body.equals(csv.body)).toBe(true);
    expect(csvAgain.headers['content-type']).toBe(csv.headers['content-type']);
    expect(jsonAgain.body.equals(json.body)).toBe(true);
    expect(csv.headers['content-type']).not.toBe(json.headers['content-type']);
  });

  it('leaves to the hooks what they would answer once the live settings change', async () => {
    const url = '/names';
    expect((await call(url)).status).toBe(200);
    const count = answered.length;
    expect((await call(url)).status).toBe(200);
    expect(answered).toHaveLength(count + 1);
    try {
      // Authentication configured: the endpoint (not public) now needs a credential.
      current = baseSettings({ auth: { api_keys: [{ id: 'ann', sha256: KEY.sha256, roles: ['a'] }] } });
      const refused = await call(url);
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBeDefined();
      expect((await call(url, { 'x-api-key': KEY.key })).status).toBe(200);
      // A deny rule for this client.
      current = baseSettings({ deny: ['127.0.0.1'] });
      expect((await call(url)).status).toBe(403);
      // A rate limit: counted and announced on every answer.
      current = baseSettings({ rate_limit: [{ requests: 1000, interval: 60 }] });
      const limited = await call(url);
      expect(limited.status).toBe(200);
      expect(limited.headers['ratelimit-limit']).toBe('1000');
      expect(answered).toHaveLength(count + 1);
    } finally {
      current = baseSettings();
    }
    expect((await call(url)).status).toBe(200);
    expect(answered).toHaveLength(count + 2);
  });

  it('leaves a caller with a credential to Fastify on a public endpoint', async () => {
    current = baseSettings({ auth: { api_keys: [{ id: 'ann', sha256: KEY.sha256, roles: ['a'] }] } });
    try {
      const url = '/items?min_id=1';
      await call(url);
      await call(url);
      const count = answered.length;
      expect(answered).toContain(`GET ${url}`);
      const known = await call(url, { 'x-api-key': KEY.key });
      expect(known.status).toBe(200);
      // Fastify's answer for a known caller: private.
      expect(known.headers['cache-control']).toMatch(/^private, max-age=\d+$/);
      expect(answered).toHaveLength(count);
    } finally {
      current = baseSettings();
    }
  });

  it('reads and checks the client a trusted proxy names, as Fastify does', async () => {
    const url = '/items?min_id=5';
    current = baseSettings({ trust_proxy: ['127.0.0.1'] });
    try {
      await call(url, { 'x-forwarded-for': '10.1.2.3' });
      const count = answered.length;
      const hit = await call(url, { 'x-forwarded-for': '10.1.2.3' });
      expect(answered).toHaveLength(count + 1);
      await expect.poll(() => recordsOf(hit.headers['x-correlation-id'])[0]).toContain(' client=10.1.2.3 client_id=anonymous');
      current = baseSettings({ trust_proxy: ['127.0.0.1'], deny: ['10.1.2.0/24'] });
      expect((await call(url, { 'x-forwarded-for': '10.1.2.3' })).status).toBe(403);
      expect((await call(url, { 'x-forwarded-for': '10.9.9.9' })).status).toBe(200);
      expect(answered).toHaveLength(count + 2);
    } finally {
      current = baseSettings();
    }
  });

  it('leaves a Host-less HTTP/1.1 request and one with a body to Fastify', async () => {
    const url = '/items?min_id=0';
    await call(url);
    await call(url);
    const count = answered.length;
    const port = new URL(base).port;
    const raw = await openRaw(Number(port));
    try {
      // The Accept fetch sends (the URL was learnt with it).
      raw.send(`GET ${url} HTTP/1.1\r\nAccept: */*\r\n\r\n`);
      expect((await raw.response()).status).toBe(400);
    } finally {
      raw.close();
    }
    const withBody = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}${url}`, { method: 'GET', headers: { accept: '*/*', 'content-type': 'text/plain', 'content-length': '3' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('abc');
    });
    expect(withBody).toBeGreaterThanOrEqual(200);
    expect(answered).toHaveLength(count);
  });
});

describe('the express lane under load, with clients that leave and clients that stop reading', () => {
  /** Requests in progress or waiting, and connections lent out, of the resource. */
  const held = async () => [
    await metric('wt_in_progress_requests', { resource_id: RID }),
    await metric('wt_pending_requests', { resource_id: RID }),
    (await metric('wt_open_connections', { resource_id: RID })) - (await metric('wt_pooled_connections', { resource_id: RID })),
  ];

  it('leaves nothing held, records every answer, and the next run has no 5xx', async () => {
    // About 2 MB, 30 bytes and 20 bytes.
    const paths = ['/wide?limit=20000', '/items?min_id=1', '/items?min_id=2'];
    const loopback = `http://127.0.0.1:${new URL(base).port}`;
    const before = answered.length;
    for (let run = 0; run < 3; run++) {
      const r = await runLoad({ url: loopback, paths, clients: 16, durationMs: 1000, kinds: ['reader', 'leave-mid-body', 'leave-early'], maxRequests: 5000 });
      expect(r.errors, `run ${run}`).toEqual([]);
      expect(fiveXx(r), `run ${run}: ${JSON.stringify(r.statuses)}`).toBe(0);
      expect(r.dropped, `run ${run} dropped nothing: the test would prove nothing`).toBeGreaterThan(0);
    }
    expect(answered.length - before).toBeGreaterThan(100);
    await expect.poll(held, { timeout: 10_000 }).toEqual([0, 0, 0]);
    const after = await runLoad({ url: loopback, paths, clients: 8, durationMs: 15_000, maxRequests: 80 });
    expect(after.errors).toEqual([]);
    expect(after.statuses).toEqual({ 200: 80 });
    expect(after.completed).toBe(80);
    // runLoad sends no Accept: its first request of each URL taught the memo that one.
    // Every request the lane answered wrote both records: one request-stats per request record.
    const wide = (tag: string) => {
      flushLogs();
      return lines.filter((l) => l.includes(` tag=${tag} msg="GET /wide?limit=20000`)).length;
    };
    expect(wide('request')).toBeGreaterThan(0);
    // The last responses' request-stats follow when they close.
    await expect.poll(() => wide('request-stats') - wide('request')).toBe(0);
  }, 60_000);

  it('records a client that stops reading a 16 MB hit as aborted once it goes, and holds nothing meanwhile', async () => {
    await fetch(`${base}/wide`).then((r) => r.arrayBuffer());
    const count = answered.length;
    const socket = connect(Number(new URL(base).port), '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    // Reads nothing: the answer fills the socket buffers and stays unfinished.
    socket.pause();
    socket.write('GET /wide HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-Correlation-ID: stops-reading\r\n\r\n');
    await expect.poll(() => answered.length).toBe(count + 1);
    expect(await held()).toEqual([0, 0, 0]);
    socket.destroy();
    await expect.poll(() => recordsOf('stops-reading').find((l) => l.includes('tag=request-stats')), { timeout: 5000 }).toMatch(/status_code=200 content_length=\d+ aborted=true$/);
  });
});

describe('a gateway whose cache is kept in Redis', () => {
  it('has no express lane', async () => {
    const before = answered.length;
    const settings = baseSettings({ cache_redis: TEST_REDIS_URL, cache_redis_prefix: `wt-express-${process.pid}:` });
    const other = await createGateway({ settings: () => settings });
    const url = await other.listen();
    try {
      for (let i = 0; i < 3; i++) expect((await fetch(`${url}/items?min_id=2`)).status).toBe(200);
      expect(answered).toHaveLength(before);
    } finally {
      await other.shutdown();
    }
  });
});

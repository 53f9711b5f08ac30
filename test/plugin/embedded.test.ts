/**
 * The embeddable plugin in an app of the test's own, against a real PostgreSQL: the host's routes
 * that declare resources get the gateway's limits (429, 504), query-stats records and metrics, a
 * client leaving mid-stream gives everything back exactly once, and the plugin's pools open when
 * the app gets ready and close on app.close(), while requests arriving meanwhile are answered 503.
 */
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSettings, type Settings } from '../../src/config/index.js';
import { createConnector } from '../../src/db/index.js';
import type { Row } from '../../src/db/types.js';
import { fastifyOptions, setLogDestination, watchtower } from '../../src/index.js';
import { pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { parseLogLine, type ParsedLine } from '../helpers/logfmt-parse.js';
import { openRaw } from '../helpers/raw-http.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';
import { waitFor } from '../helpers/wait.js';
import { parseExposition, sumOf } from '../metrics/exposition.js';

const skip = requireOrSkip('PostgreSQL', await pgAvailable());

const db = uniqueName('wt_plugin');
const dir = mkdtempSync(join(tmpdir(), 'wt-plugin-'));
const lines: string[] = [];
const records = (tag: string): ParsedLine[] => lines.map(parseLogLine).filter((l) => l.fields.tag === tag);

/** Sessions of this suite's database; with `like`, only those running it or in its transaction (a cursor between fetches). */
async function sessions(like?: string): Promise<number> {
  const conn = await createConnector('probe', pgTarget({ db_name: 'postgres' })).connect(0, 5);
  try {
    const sql = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()${like ? " AND state <> 'idle' AND query LIKE ?" : ''}`;
    const { rows } = await conn.query(sql, like ? [db, `%${like}%`] : [db], { timeoutSeconds: 5 });
    return rows[0].n as number;
  } finally {
    await conn.close();
  }
}

/** A file of one declared endpoint on pg_main running `sql`. */
function endpointFile(name: string, sql: string): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      'endpoints:',
      '  - method: GET',
      '    path: /declared/hours',
      '    resources: [pg_main]',
      '    params:',
      '      port: { type: integer, minimum: 1, maximum: 65535, required: true }',
      '    statements:',
      `      - sql: ${sql}`,
    ].join('\n'),
  );
  return file;
}

function settings(endpoints = endpointFile('declared.yaml', 'SELECT port, flows FROM tcp_hourly WHERE port = :port ORDER BY date_hour LIMIT 3')): Settings {
  const target = fileTarget(pgTarget({ db_name: db }));
  return buildSettings(
    {
      resource_ids: ['pg_main', 'pg_tight'],
      docs_enabled: false,
      shutdown_timeout: 10,
      endpoints: [endpoints],
      resources: {
        pg_main: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 3 },
        // One request at a time, one more may wait for half a second, statements stop after 1 s.
        pg_tight: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1, max_pending_requests: 1, request_slot_timeout: 0.5, db_default_query_timeout: 1 },
      },
      secure: { pg_main: target, pg_tight: target },
    },
    {},
    { env: {} },
  );
}

/** The host's own routes: nothing WatchTower-specific but `config.resources` and `req.db`. */
function hostRoutes(app: FastifyInstance): void {
  app.get<{ Querystring: { s: number } }>(
    '/tight/sleep',
    { config: { resources: ['pg_tight'] }, schema: { querystring: { type: 'object', properties: { s: { type: 'integer', minimum: 0, maximum: 10 } } } } },
    async (req) => {
      const rows = await req.db.rows('pg_tight', 'SELECT pg_sleep(?) IS NULL AS slept', [req.query.s]);
      return rows[0];
    },
  );
  app.get<{ Querystring: { port: number } }>(
    '/mine/hours',
    { config: { resources: ['pg_main'] }, schema: { querystring: { type: 'object', required: ['port'], properties: { port: { type: 'integer', minimum: 1, maximum: 65535 } } } } },
    async (req) => {
      const db = req.db;
      const rows = await db.rows('pg_main', 'SELECT port, count(*)::int AS hours FROM tcp_hourly WHERE port = ? GROUP BY port', [req.query.port]);
      await db.release();
      return rows;
    },
  );
  app.get('/mine/stream', { config: { resources: ['pg_main'] } }, async (req, reply) => {
    const rows = await req.db.stream('pg_main', 'SELECT generate_series(1, 50000000) AS n', []);
    async function* lines(source: AsyncIterable<Row>) {
      for await (const row of source) yield `${String(row.n)}\n`;
    }
    return reply.type('text/plain').send(Readable.from(lines(rows)));
  });
}

let config: Settings;
let app: FastifyInstance;
let url: string;
let port: number;

beforeAll(async () => {
  if (skip) return;
  setLogDestination({ write: (line) => lines.push(line.trimEnd()) });
  await seedSampleDatabase(pgTarget({ db_name: db }));
  config = settings();
  app = Fastify({ ...fastifyOptions(config) });
  await app.register(watchtower, { config });
  hostRoutes(app);
}, 60_000);

afterAll(async () => {
  await app?.close();
  setLogDestination(process.stdout);
  rmSync(dir, { recursive: true, force: true });
  if (!skip) await dropDatabase(pgTarget({ db_name: db }));
});

describe.skipIf(skip)('WatchTower as a plugin of an app of its own', () => {
  it('opens its pools when the app gets ready, not before', async () => {
    // The registration checked the declared statement on one connection of its own, closed since.
    await waitFor('no session before the app is ready', async () => (await sessions()) === 0);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    url = address;
    port = Number(new URL(address).port);
    // db_min_conn_pool_size 1 for each of the two resources, open before the app listens.
    expect(await sessions()).toBe(2);
  });

  it('answers 429 and 504 on the host’s own route by the resource’s limits', async () => {
    const get = (path: string) => fetch(url + path).then(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { detail: string; cid: string } }));
    const stats = () => app.watchtower.resources.stats('pg_tight');
    const a = get('/tight/sleep?s=5');
    await waitFor('the first request to hold the slot', () => stats().active === 1);
    const b = get('/tight/sleep?s=0');
    await waitFor('the second request to wait', () => stats().pending === 1);
    const c = await get('/tight/sleep?s=0');
    expect(c.status).toBe(429);
    expect(c.retryAfter).toMatch(/^\d+$/);
    const [first, second] = await Promise.all([a, b]);
    expect(second.status).toBe(504);
    expect(second.body.detail).toContain('0.5-sec timeout waiting for a request slot');
    // The statement itself stopped at the resource's query timeout.
    expect(first.status).toBe(504);
    expect(first.body.detail).toBe('1-sec timeout waiting for DB query or fetch from resource pg_tight');
    for (const r of [first, second, c]) expect(r.body.cid).toMatch(/^[A-Za-z0-9]+$/);
  });

  it('writes the query-stats record and counts the metrics of the host’s route, beside a declared endpoint', async () => {
    const res = await fetch(`${url}/mine/hours?port=22`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ port: 22, hours: 1008 }]);
    const cid = res.headers.get('x-correlation-id');
    const declared = await fetch(`${url}/declared/hours?port=443`);
    expect(declared.status).toBe(200);
    expect(((await declared.json()) as Row[]).map((r) => r.port)).toEqual([443, 443, 443]);

    await waitFor('the request-stats record', () => records('request-stats').some((l) => l.fields.cid === cid));
    const stats = records('query-stats').find((l) => l.fields.cid === cid);
    expect(stats?.fields).toMatchObject({ q1_resource_id: 'pg_main', q1_row_count: '1' });
    expect(records('request-stats').find((l) => l.fields.cid === cid)?.fields).toMatchObject({ status_code: '200', queries: '1' });

    const m = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(sumOf(m, 'wt_requests_total', { endpoint: '/mine/hours' })).toBe(1);
    expect(sumOf(m, 'wt_requests_total', { endpoint: '/tight/sleep' })).toBe(3);
    expect(sumOf(m, 'wt_requests_total', { endpoint: '/declared/hours' })).toBe(1);
    expect(sumOf(m, 'wt_queries_total', { resource_id: 'pg_main' })).toBe(2);
    expect(sumOf(m, 'wt_query_errors_total', { resource_id: 'pg_tight', error_type: 'timeout' })).toBe(1);
    expect(sumOf(m, 'wt_request_slot_errors_total', { resource_id: 'pg_tight', error_type: 'overload' })).toBe(1);
    expect(sumOf(m, 'wt_request_slot_errors_total', { resource_id: 'pg_tight', error_type: 'timeout' })).toBe(1);
  });

  it('gives back what a stream held exactly once, and stops its statement, when the client leaves mid-stream', async () => {
    const resources = app.watchtower.resources;
    const released: string[] = [];
    const onSlot = ({ resourceId }: { resourceId: string }) => released.push(`slot ${resourceId}`);
    const onConn = ({ resourceId }: { resourceId: string }) => released.push(`conn ${resourceId}`);
    resources.on('slot-released', onSlot);
    resources.on('conn-released', onConn);
    try {
      const req = httpRequest(`${url}/mine/stream`);
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        req.once('response', resolve).once('error', reject).end();
      });
      expect(res.statusCode).toBe(200);
      // Leaves after the first chunk, with the statement still producing rows.
      await once(res, 'data', { signal: AbortSignal.timeout(5_000) });
      req.destroy();
      await waitFor('the stream to be given back', () => resources.stats('pg_main').inUse === 0 && resources.stats('pg_main').active === 0);
      await waitFor('the statement to be stopped', async () => (await sessions('generate_series(1, 50000000)')) === 0);
      // Nothing more comes later.
      await new Promise((r) => setTimeout(r, 300));
      expect(released.sort()).toEqual(['conn pg_main', 'slot pg_main']);
    } finally {
      resources.off('slot-released', onSlot);
      resources.off('conn-released', onConn);
    }
    const record = await waitFor('the request-stats record', () => records('request-stats').find((l) => l.fields.msg === 'GET /mine/stream results'));
    expect(record.fields).toMatchObject({ status_code: '200', aborted: 'true' });
  });

  it('answers 503 once app.close() has begun, lets the request in flight finish, then closes every pool', async () => {
    // A request in flight, and one whose headers are not complete yet: its connection is not idle,
    // so the server keeps it, and the app sees the request while it closes.
    const inFlight = fetch(`${url}/mine/hours?port=53`).then((r) => r.status);
    const late = await openRaw(port);
    late.send('GET /mine/hours?port=80 HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setTimeout(r, 100)); // for the server to read the unfinished request; nothing to poll for
    const closed = app.close();
    await waitFor('the shutdown record', () => records('shutdown').length > 0);
    late.send('\r\n');
    const refused = await late.response();
    late.close();
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ detail: 'server is shutting down' });
    expect(await inFlight).toBe(200);
    await closed;
    expect(records('shutdown-done')).toHaveLength(1);
    expect(await sessions()).toBe(0);
    expect(app.watchtower.resources.stats('pg_main')).toMatchObject({ open: 0, inUse: 0 });
  });

  it('says so when a route that declares resources was added before the plugin had registered', async () => {
    const early = Fastify({ ...fastifyOptions(config) });
    // Not awaited: the route below is added before the plugin's hooks exist.
    void early.register(watchtower, { config, endpoints: false, metrics: false, health: false });
    early.get('/early', { config: { resources: ['pg_main'] } }, async (req) => req.db.rows('pg_main', 'SELECT 1 AS one', []));
    try {
      const res = await early.inject('/early');
      expect(res.statusCode).toBe(500);
      const cid = String(res.headers['x-correlation-id']);
      const traceback = await waitFor('the traceback record', () => records('traceback').find((l) => l.fields.cid === cid));
      expect(traceback.fields.error).toBe(
        'route /early declares resources pg_main but holds none: it was added before the WatchTower plugin finished registering (await app.register(...) first)',
      );
    } finally {
      await early.close();
    }
  });

  it('refuses to register, as the gateway refuses to start, when a database refuses a declared statement', async () => {
    const other = Fastify();
    const refused = settings(endpointFile('refused.yaml', 'SELECT port FROM no_such_table WHERE port = :port'));
    await expect(other.register(watchtower, { config: refused })).rejects.toThrow(/endpoint statements refused by the database, 1 problem\(s\): .*no_such_table/);
    await other.close();
  });
});

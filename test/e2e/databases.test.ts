/**
 * The resource layer as clients meet it: a real gateway process over real PostgreSQL, MariaDB (native
 * and ODBC) and SQLite. Slow requests are made on demand by locking the table from the test, so
 * limits, timeouts and kills happen exactly when the test wants them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { insertTraffic, type Dialect } from '../../src/routes/traffic-sql.js';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import {
  blackholeServer,
  closedPort,
  mysqlAvailable,
  mysqlTarget,
  odbcAvailable,
  odbcTarget,
  pgAvailable,
  pgTarget,
  requireOrSkip,
  tcpRelay,
  uniqueName,
  type TcpRelay,
} from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { waitFor } from '../helpers/wait.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = requireOrSkip('MariaDB ODBC', await odbcAvailable());

type PropertySchema = { type?: string; anyOf?: { type: string }[] };

/** Whether `v` is of one of the types the OpenAPI document declares for a property. */
function ofDeclaredType(v: unknown, schema: PropertySchema): boolean {
  const types = schema.anyOf ? schema.anyOf.map((s) => s.type) : [schema.type];
  return types.some((t) => (t === 'integer' ? Number.isInteger(v) : t === 'string' ? typeof v === 'string' : false));
}

/**
 * Holds JSON rows to the response schema the gateway documents at /docs/json for `path`: exactly
 * the declared properties, each of a declared type. (The JSON routes write rows with the native
 * JSON.stringify, so nothing but this test checks their shape against the schema.)
 */
async function expectDocumentedRows(baseUrl: string, path: string, rows: Record<string, unknown>[]): Promise<void> {
  const doc = (await (await fetch(`${baseUrl}/docs/json`)).json()) as {
    paths: Record<string, { get: { responses: { 200: { content: { 'application/json': { schema: { items: { properties: Record<string, PropertySchema> } } } } } } } }>;
  };
  const properties = doc.paths[path].get.responses[200].content['application/json'].schema.items.properties;
  expect(rows.length, path).toBeGreaterThan(0);
  for (const row of rows) {
    expect(Object.keys(row), path).toEqual(Object.keys(properties));
    for (const [key, schema] of Object.entries(properties)) expect(ofDeclaredType(row[key], schema), `${path} ${key}=${String(row[key])}`).toBe(true);
  }
}

function pgClient(db: string): pg.Client {
  const t = pgTarget({ db_name: db });
  return new pg.Client({ host: t.db_host, port: t.db_port, user: t.db_user, database: db });
}

/** Holds an exclusive lock on tcp_hourly so every gateway SELECT on it blocks until release(). */
async function lockPgTable(db: string): Promise<{ client: pg.Client; release: () => Promise<void> }> {
  const client = pgClient(db);
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE tcp_hourly IN ACCESS EXCLUSIVE MODE');
  let released = false;
  return {
    client,
    release: async () => {
      if (released) return;
      released = true;
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}

/** Gateway statements on tcp_hourly still running in `db` (other than the test's own sessions). */
async function runningGatewayQueries(db: string): Promise<{ pid: number; wait: string | null }[]> {
  const client = pgClient(db);
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number; wait: string | null }>(
      `SELECT pid, wait_event_type AS wait FROM pg_stat_activity
       WHERE datname = $1 AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%FROM tcp_hourly%'`,
      [db],
    );
    return rows;
  } finally {
    await client.end();
  }
}

async function metricValue(gw: GatewayProcess, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.split(' ').pop());
  }
  throw new Error(`metric ${name}${JSON.stringify(labels)} not found`);
}

/**
 * Starts `n` concurrent GET /pg-json while the table is locked, waits until `settleFirst` of them
 * have been answered (the ones refused or timed out while the others wait on the lock), then
 * releases the lock and returns every response. Waiting on answers, not on a clock, keeps the
 * test exact on a busy machine.
 */
async function requestsWhileLocked(gw: GatewayProcess, db: string, n: number, settleFirst: number): Promise<Response[]> {
  const lock = await lockPgTable(db);
  try {
    let settled = 0;
    const requests = Array.from({ length: n }, () =>
      fetch(`${gw.url}/pg-json`).finally(() => {
        settled++;
      }),
    );
    await waitFor(`${settleFirst} early answers`, async () => settled >= settleFirst, { timeout: 10_000 });
    await lock.release();
    return await Promise.all(requests);
  } finally {
    await lock.release();
  }
}

/** In-use connections and active/pending requests of a resource, as /metrics shows them. */
async function heldCounts(gw: GatewayProcess, rid: string): Promise<{ active: number; pending: number; inUse: number }> {
  const [active, pending, open, pooled] = await Promise.all([
    metricValue(gw, 'wt_in_progress_requests', { resource_id: rid }),
    metricValue(gw, 'wt_pending_requests', { resource_id: rid }),
    metricValue(gw, 'wt_open_connections', { resource_id: rid }),
    metricValue(gw, 'wt_pooled_connections', { resource_id: rid }),
  ]);
  return { active, pending, inUse: open - pooled };
}

async function expectNothingHeld(gw: GatewayProcess, rid: string): Promise<void> {
  await waitFor(`${rid} to hold nothing`, async () => {
    const c = await heldCounts(gw, rid);
    return c.active === 0 && c.pending === 0 && c.inUse === 0;
  }, { timeout: 5000 });
}

function epochOf(v: unknown): number {
  return typeof v === 'number' ? v : Math.floor(Date.parse(`${String(v).replace(' ', 'T')}Z`) / 1000);
}

describe.skipIf(skipPg || skipMysql)('same data from every database', () => {
  const db = uniqueName('wt_e2e');
  let gw: GatewayProcess;

  beforeAll(async () => {
    await Promise.all([seedSampleDatabase(pgTarget({ db_name: db })), seedSampleDatabase(mysqlTarget({ db_name: db }))]);
    const ids = ['sqlite_traffic', 'pg_traffic', 'mysql_traffic', ...(skipOdbc ? [] : ['mysql_odbc_traffic'])];
    gw = await startGateway({
      config: {
        resource_ids: ids,
        resources: Object.fromEntries(ids.map((id) => [id, { db_min_conn_pool_size: 1, db_max_conn_pool_size: 3 }])),
        secure: {
          sqlite_traffic: { db_type: 'sqlite', db_sample: true, db_path: 'PLACEHOLDER' },
          pg_traffic: fileTarget(pgTarget({ db_name: db })),
          mysql_traffic: fileTarget(mysqlTarget({ db_name: db })),
          mysql_odbc_traffic: fileTarget(odbcTarget({ db_name: db })),
        },
        log_request_slot_durations: true,
        log_db_conn_durations: true,
      },
      configPatch: (cfg, dir) => {
        (cfg.secure as Record<string, Record<string, unknown>>).sqlite_traffic.db_path = join(dir, 'traffic.db');
      },
    });
  }, 120_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    await Promise.all([dropDatabase(pgTarget({ db_name: db })), dropDatabase(mysqlTarget({ db_name: db }))]);
  });

  it('returns the same rows as JSON from SQLite, PostgreSQL, MariaDB and MariaDB over ODBC', async () => {
    const q = 'limit=50&port=443&from=2025-01-08T00:00:00Z';
    const prefixes = ['sqlite', 'pg', 'mysql', ...(skipOdbc ? [] : ['mysql-odbc'])];
    const results = await Promise.all(prefixes.map(async (p) => {
      const res = await fetch(`${gw.url}/${p}-json?${q}`);
      expect(res.status, p).toBe(200);
      return (await res.json()) as Record<string, unknown>[];
    }));
    for (const [i, rows] of results.entries()) await expectDocumentedRows(gw.url, `/${prefixes[i]}-json`, rows);
    const sqlite = results[0];
    expect(sqlite).toHaveLength(50);
    expect(sqlite[0].date_hour).toBe(Date.UTC(2025, 0, 8) / 1000);
    for (const [i, rows] of results.entries()) {
      expect(rows.map((r) => ({ ...r, date_hour: epochOf(r.date_hour) })), prefixes[i]).toEqual(sqlite);
    }
    // MySQL and PostgreSQL render date_hour like the original: 'YYYY-MM-DD HH:MM:SS'.
    expect(results[1][0].date_hour).toBe('2025-01-08 00:00:00');
    expect(results[2][0].date_hour).toBe('2025-01-08 00:00:00');
  });

  it('returns the same rows as streamed PSV from every database', async () => {
    const prefixes = ['sqlite', 'pg', 'mysql', ...(skipOdbc ? [] : ['mysql-odbc'])];
    const texts = await Promise.all(prefixes.map(async (p) => (await fetch(`${gw.url}/${p}-psv?limit=300&port=22`)).text()));
    const normalize = (t: string) =>
      t.trimEnd().split('\n').map((line) => {
        const [dh, ...rest] = line.split('|');
        return [epochOf(/^\d+$/.test(dh) ? Number(dh) : dh), ...rest].join('|');
      });
    const base = normalize(texts[0]);
    expect(base).toHaveLength(300);
    for (const [i, t] of texts.entries()) expect(normalize(t), prefixes[i]).toEqual(base);
  });

  it('keeps counters beyond 2^53 exact in JSON and PSV from every database', async () => {
    const big = '9007199254740993'; // 2^53 + 1: as a JSON number it would read 9007199254740992
    const hour = Date.UTC(2031, 0, 1) / 1000;
    const port = 9999;
    const targets: [Dialect, SecureResourceSettings][] = [
      ['sqlite', { db_type: 'sqlite', db_path: join(gw.dir, 'traffic.db') } as SecureResourceSettings],
      ['postgres', pgTarget({ db_name: db })],
      ['mysql', mysqlTarget({ db_name: db })],
    ];
    for (const [dialect, target] of targets) {
      const conn = await createConnector('big', target).connect(0, 10);
      try {
        const { sql, params } = insertTraffic(dialect, { date_hour: hour, port, flows: 1, pkts: 2, bytes: 0 });
        params[4] = BigInt(big);
        await conn.query(sql, params, { timeoutSeconds: 10 });
      } finally {
        await conn.close();
      }
    }
    const q = `port=${port}&from=${hour}`;
    for (const p of ['sqlite', 'pg', 'mysql', ...(skipOdbc ? [] : ['mysql-odbc'])]) {
      const json = await (await fetch(`${gw.url}/${p}-json?${q}`)).text();
      expect(json, p).toContain(`"bytes":"${big}"`);
      expect(JSON.parse(json), p).toMatchObject([{ port, flows: 1, pkts: 2, bytes: big }]);
      await expectDocumentedRows(gw.url, `/${p}-json`, JSON.parse(json) as Record<string, unknown>[]);
      const psv = await (await fetch(`${gw.url}/${p}-psv?${q}`)).text();
      expect(psv.trimEnd().split('|').slice(1), p).toEqual([String(port), '1', '2', big]);
    }
    const compare = (await (await fetch(`${gw.url}/traffic/compare?${q}`)).json()) as { match: boolean; sqlite: { bytes: unknown } }[];
    expect(compare).toMatchObject([{ match: true, sqlite: { bytes: big }, pg: { bytes: big } }]);
  });

  it('compares SQLite and PostgreSQL per hour on the two-resource route', async () => {
    const res = await fetch(`${gw.url}/traffic/compare?limit=20&port=80`);
    expect(res.status).toBe(200);
    const rows = (await res.json()) as { match: boolean; sqlite: unknown; pg: unknown }[];
    expect(rows).toHaveLength(20);
    expect(rows.every((r) => r.match && r.sqlite && r.pg)).toBe(true);
    const cid = res.headers.get('x-correlation-id');
    const acq = await gw.waitForLine((l) => l.fields.tag === 'acquisition-stats' && l.fields.cid === cid);
    expect(Object.keys(acq.fields).filter((k) => k.endsWith('_duration')).sort()).toEqual([
      'pg_traffic_db_connection_duration',
      'pg_traffic_request_slot_duration',
      'sqlite_traffic_db_connection_duration',
      'sqlite_traffic_request_slot_duration',
    ]);
  });

  for (const prefix of ['pg', 'mysql']) {
    it(`inserts a batch into ${prefix} all or nothing`, async () => {
      const base = Date.UTC(2030, 0, 1) / 1000 + (prefix === 'pg' ? 0 : 86400 * 30);
      const row = (h: number, port = 8080) => ({ date_hour: base + h * 3600, port, flows: h, pkts: 10 * h, bytes: 100 * h });
      const post = (rows: unknown[]) =>
        fetch(`${gw.url}/${prefix}/traffic`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rows }) });
      const count = async () =>
        ((await (await fetch(`${gw.url}/${prefix}-json?port=8080&from=${base}&limit=1000`)).json()) as unknown[]).length;

      const ok = await post([row(0), row(1), row(2)]);
      expect(ok.status).toBe(201);
      expect(await ok.json()).toEqual({ inserted: 3 });
      expect(await count()).toBe(3);

      const bad = await post([row(3), row(4), { ...row(5), port: 'eighty' }]);
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { detail: string }).detail).toMatch(/body\/rows\/2\/port/);

      // Row 1 of this batch duplicates an existing row: nothing of the batch may be written.
      const dup = await post([row(10), row(1), row(11)]);
      expect(dup.status).toBe(409);
      expect(((await dup.json()) as { detail: string }).detail).toMatch(/duplicate/);
      expect(await count()).toBe(3);
    });
  }

  for (const prefix of ['pg', 'mysql']) {
    it(`takes counters beyond 2^53 into ${prefix} as decimal text, and refuses them as rounded JSON numbers`, async () => {
      const hour = Date.UTC(2032, 0, 1) / 1000 + (prefix === 'pg' ? 0 : 3600);
      const post = (body: string) => fetch(`${gw.url}/${prefix}/traffic`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      // Written by hand: JSON.stringify cannot produce a number that JSON.parse would round.
      const rounded = await post(`{"rows":[{"date_hour":${hour},"port":7777,"flows":1,"pkts":2,"bytes":9007199254740993}]}`);
      expect(rounded.status).toBe(400);
      expect(((await rounded.json()) as { detail: string }).detail).toMatch(/body\/rows\/0\/bytes must be <= 9007199254740991/);
      const notDigits = await post(JSON.stringify({ rows: [{ date_hour: hour, port: 7777, flows: 1, pkts: '2x', bytes: 3 }] }));
      expect(notDigits.status).toBe(400);
      expect(((await notDigits.json()) as { detail: string }).detail).toMatch(/body\/rows\/0\/pkts must match pattern/);

      const ok = await post(JSON.stringify({ rows: [{ date_hour: hour, port: 7777, flows: 1, pkts: '2', bytes: '9007199254740993' }] }));
      expect(ok.status).toBe(201);
      const rows = (await (await fetch(`${gw.url}/${prefix}-json?port=7777&from=${hour}&to=${hour}`)).json()) as unknown[];
      expect(rows).toMatchObject([{ port: 7777, flows: 1, pkts: 2, bytes: '9007199254740993' }]);
    });
  }

  it('logs query text and results without breaking JSON routes', async () => {
    expect((await gw.reload({ queries_log_type: 'all', query_results_log_max_len: 80 })).fields.tag).toBe('config-reload');
    const res = await fetch(`${gw.url}/pg-json?limit=2&port=53`);
    expect(res.status).toBe(200);
    const cid = res.headers.get('x-correlation-id');
    const stats = await gw.waitForLine((l) => l.fields.tag === 'query-stats' && l.fields.cid === cid);
    // The declared statement as the driver gets it: every param bound, null for those not given.
    expect(stats.fields.q1_query).toMatch(/SELECT .* FROM tcp_hourly WHERE \(\?::integer IS NULL OR port = \?\)/);
    expect(stats.fields.q1_params).toBe('[53,53,null,null,null,null,2]');
    expect(stats.fields.q1_results.length).toBeLessThanOrEqual(83);
    expect(stats.fields.q1_results).toMatch(/^\[\{"date_hour":"2025-01-06 00:00:00","port":53/);
    gw.writeOverride({});
  });
});

describe.skipIf(skipPg)('limits, timeouts and faults on PostgreSQL', () => {
  const db = uniqueName('wt_e2e_faults');
  const rid = 'pg_traffic';
  let gw: GatewayProcess;
  const limits = {
    db_min_conn_pool_size: 1,
    db_max_conn_pool_size: 2,
    max_active_requests: 1,
    max_pending_requests: 2,
    request_slot_timeout: 0.5,
    db_conn_pool_acquire_timeout: 1,
    db_default_query_timeout: 1,
    db_conn_retry_wait_period: 0.2,
  };

  beforeAll(async () => {
    // One million rows for the streaming tests (sample rows plus generated hours on port 9).
    await seedSampleDatabase(pgTarget({ db_name: db }), [
      `INSERT INTO tcp_hourly (date_hour, port, flows, pkts, bytes)
       SELECT to_timestamp(1800000000::bigint + g::bigint * 3600) AT TIME ZONE 'UTC', 9, g % 1000, g % 10000, g FROM generate_series(1, ${1_000_000 - 5040}) AS g`,
    ]);
    gw = await startGateway({
      config: {
        resource_ids: [rid],
        resources: { [rid]: limits },
        secure: { [rid]: fileTarget(pgTarget({ db_name: db })) },
        pool_check_interval: 0.5,
      },
    });
  }, 180_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    await dropDatabase(pgTarget({ db_name: db }));
  });

  it('refuses exactly the requests beyond active + pending with 429 and Retry-After', async () => {
    // 1 active + 2 pending wait on the lock; the other 5 are refused at once.
    const responses = await requestsWhileLocked(gw, db, 8, 5);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    const refused = responses.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ detail: 'too many pending requests for resource pg_traffic' });
    await expectNothingHeld(gw, rid);
  });

  it('answers 504 to requests that wait longer than request_slot_timeout for a slot', async () => {
    // The 2 pending ones time out after 0.5 s; the active one finishes once the lock goes (before its 1 s query timeout).
    const responses = await requestsWhileLocked(gw, db, 3, 2);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 504, 504]);
    const timedOut = responses.find((r) => r.status === 504)!;
    expect(((await timedOut.json()) as { detail: string }).detail).toBe('0.5-sec timeout waiting for a request slot for resource pg_traffic');
    await expectNothingHeld(gw, rid);
  });

  it('stops a query on the server when it runs past db_default_query_timeout (504)', async () => {
    const timeouts = () => metricValue(gw, 'wt_query_errors_total', { resource_id: rid, error_type: 'timeout' });
    const timeoutsBefore = await timeouts();
    const lock = await lockPgTable(db);
    try {
      const started = Date.now();
      const res = await fetch(`${gw.url}/pg-json`);
      expect(res.status).toBe(504);
      expect(((await res.json()) as { detail: string }).detail).toBe('1-sec timeout waiting for DB query or fetch from resource pg_traffic');
      expect(Date.now() - started).toBeLessThan(4000);
      // Still locked, yet nothing of ours runs on the server: the statement was cancelled.
      await waitFor('the cancelled statement to leave pg_stat_activity', async () => (await runningGatewayQueries(db)).length === 0, { timeout: 2000 });
    } finally {
      await lock.release();
    }
    expect((await fetch(`${gw.url}/pg-json`)).status).toBe(200);
    expect(await timeouts()).toBe(timeoutsBefore + 1);
    await expectNothingHeld(gw, rid);
  });

  it('survives its connection being killed mid-query, and the pool replaces it', async () => {
    const closedBefore = await metricValue(gw, 'wt_closed_connections_total', { resource_id: rid });
    const lock = await lockPgTable(db);
    try {
      const pending = fetch(`${gw.url}/pg-json`);
      await waitFor('the gateway query to block on the lock', async () => (await runningGatewayQueries(db)).length === 1, { timeout: 3000 });
      const [victim] = await runningGatewayQueries(db);
      await lock.client.query('SELECT pg_terminate_backend($1)', [victim.pid]);
      const res = await pending;
      // A read that lost its connection runs once more on a fresh one (src/query/query.ts): here it
      // blocks on the same lock until its 1 s timeout (504), unless no time was left to try (500, 503).
      expect([500, 503, 504]).toContain(res.status);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/pg_traffic/);
    } finally {
      await lock.release();
    }
    expect((await fetch(`${gw.url}/pg-json`)).status).toBe(200);
    expect(await metricValue(gw, 'wt_closed_connections_total', { resource_id: rid })).toBeGreaterThan(closedBefore);
    await expectNothingHeld(gw, rid);
  });

  it('stops the statement and frees everything when the client aborts mid-stream', async () => {
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/pg-psv?limit=1000000`, { signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    ac.abort();
    await reader.cancel().catch(() => undefined);
    await expectNothingHeld(gw, rid);
    await waitFor('the streamed statement to stop', async () => (await runningGatewayQueries(db)).length === 0, { timeout: 3000 });
    expect((await fetch(`${gw.url}/pg-json`)).status).toBe(200);
  });

  it('streams one million rows with flat memory', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.child.pid}/status`, 'utf8'))![1]) * 1024;
    const before = rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
    try {
      const res = await fetch(`${gw.url}/pg-psv?limit=1000000`);
      expect(res.status).toBe(200);
      const decoder = new TextDecoder();
      let lines = 0;
      let bytes = 0;
      for await (const chunk of res.body!) {
        bytes += chunk.byteLength;
        const text = decoder.decode(chunk, { stream: true });
        for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lines++;
      }
      expect(lines).toBe(1_000_000);
      expect(bytes).toBeGreaterThan(25_000_000);
    } finally {
      clearInterval(sampler);
    }
    // Holding the rows would take hundreds of MB; a streamed response holds one batch at a time.
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  }, 120_000);

  it('applies limits changed by SIGUSR1 on the next request', async () => {
    const statuses = async (n: number, refused: number) => (await requestsWhileLocked(gw, db, n, refused)).map((r) => r.status).sort();
    expect((await gw.reload({ resources: { [rid]: { max_pending_requests: 0 } } })).fields.tag).toBe('config-reload');
    expect(await statuses(3, 2)).toEqual([200, 429, 429]);
    expect((await gw.reload({ resources: { [rid]: { max_active_requests: 2, max_pending_requests: 0 } } })).fields.tag).toBe('config-reload');
    expect(await statuses(3, 1)).toEqual([200, 200, 429]);
    expect((await gw.reload({})).fields.tag).toBe('config-reload');
    await expectNothingHeld(gw, rid);
  });
});

describe.skipIf(skipPg || skipMysql)('databases that are down or hang', () => {
  let gw: GatewayProcess;
  let proxyPort: number;
  let proxy: TcpRelay | undefined;
  let hang: { port: number; close: () => Promise<void> };
  const db = uniqueName('wt_e2e_down');

  beforeAll(async () => {
    await seedSampleDatabase(pgTarget({ db_name: db }));
    proxyPort = await closedPort();
    hang = await blackholeServer();
    gw = await startGateway({
      config: {
        resource_ids: ['pg_traffic', 'mysql_traffic'],
        resources: {
          pg_traffic: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2, db_conn_retry_wait_period: 0.3, db_conn_timeout: 1, db_conn_pool_acquire_timeout: 2 },
          mysql_traffic: { db_min_conn_pool_size: 0, db_max_conn_pool_size: 2, db_conn_timeout: 5, db_conn_pool_acquire_timeout: 0.5 },
        },
        secure: {
          pg_traffic: fileTarget(pgTarget({ db_name: db, db_port: proxyPort })),
          mysql_traffic: fileTarget(mysqlTarget({ db_name: 'test', db_port: hang.port })),
        },
        pool_check_interval: 0.3,
      },
    });
  }, 60_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    await proxy?.close();
    await hang.close();
    await dropDatabase(pgTarget({ db_name: db }));
  });

  it('answers 503 while PostgreSQL is down at start-up, then 200 once it is back, without a restart', async () => {
    const down = await fetch(`${gw.url}/pg-json`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ detail: 'could not open a DB connection to resource pg_traffic' });
    const notReady = await fetch(`${gw.url}/health/ready`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { unavailable: string[] }).unavailable).toContain('pg_traffic');

    // "The database comes back": a TCP relay to the real server appears on the configured port.
    const target = pgTarget();
    proxy = await tcpRelay(target.db_host, target.db_port, proxyPort);
    await waitFor('pg_traffic to recover', async () => (await fetch(`${gw.url}/pg-json?limit=1`)).status === 200, { timeout: 10_000 });
    await waitFor('readiness to recover', async () => (await fetch(`${gw.url}/health/ready`)).status === 200, { timeout: 5000 });
  });

  it('answers 504 when a connection cannot be had within db_conn_pool_acquire_timeout', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.url}/mysql-json`);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ detail: '0.5-sec timeout waiting for a pooled connection for mysql_traffic' });
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

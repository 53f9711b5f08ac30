/**
 * The response cache of declared endpoints (src/cache/) through running gateways, over real HTTP,
 * on real SQLite and PostgreSQL (and Redis for the shared store). Queries are counted by the
 * gateway's own wt_queries_total and, on PostgreSQL, by a volatile SQL function that inserts a row
 * into a log table each time the statement really runs.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createKey } from '../../src/auth/api-keys.js';
import { ensureDatabase } from '../../src/db/sample-data.js';
import { pgAvailable, pgTarget, requireOrSkip, TEST_PG_URL, uniqueName } from '../helpers/databases.js';
import { freePort, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { TEST_REDIS_URL } from '../helpers/redis-server.js';
import { parseExposition } from '../metrics/exposition.js';
import { fileTarget } from '../helpers/test-data.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const dbName = uniqueName('wt_cache');
const pgUrl = (() => {
  const u = new URL(TEST_PG_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

const key = (id: string) => ({ id, ...createKey() });
const KEYS = { ann: key('ann'), bob: key('bob'), cid: key('cid') };
const ROLES = { ann: ['a'], bob: ['b'], cid: ['b'] };

const PAD = 'x'.repeat(600);

/** Endpoints over the SQLite table items (id, name) and the PostgreSQL probe function. */
function endpoints(itemsSql = 'SELECT id, name FROM items WHERE id >= :min_id ORDER BY id'): unknown[] {
  const pub = { public: true };
  return [
    {
      method: 'GET', path: '/lite/items', resources: ['lite'], ...pub,
      params: { min_id: { type: 'integer', minimum: 0, maximum: 1000, default: 0 } },
      statements: [{ sql: itemsSql }],
      formats: ['json', 'csv'], cache: { ttl: 60 },
    },
    {
      method: 'POST', path: '/lite/items', resources: ['lite'], ...pub,
      params: { id: { in: 'body', type: 'integer', minimum: 1, maximum: 1000, required: true }, name: { in: 'body', type: 'string', required: true } },
      statements: [{ sql: 'INSERT INTO items (id, name) VALUES (:id, :name)' }],
      result: 'exec', invalidates: ['/lite/items'],
    },
    {
      method: 'GET', path: '/lite/count', resources: ['lite'], auth: { roles: ['a', 'b'] },
      statements: [{ sql: 'SELECT count(*) AS n FROM items' }], result: 'one', cache: { ttl: 60 },
    },
    {
      method: 'GET', path: '/lite/me', resources: ['lite'], auth: { roles: ['a', 'b'] },
      statements: [{ sql: 'SELECT :_caller AS who' }], result: 'one', cache: { ttl: 60 },
    },
    {
      method: 'GET', path: '/lite/short', resources: ['lite'], ...pub,
      statements: [{ sql: 'SELECT count(*) AS n FROM items' }], result: 'one', cache: { ttl: 2 },
    },
    {
      method: 'GET', path: '/lite/stream', resources: ['lite'], ...pub,
      params: { limit: { type: 'integer', minimum: 1, maximum: 100000, default: 5 } },
      statements: [{ sql: 'WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :limit) SELECT i, i * 7 AS seven FROM g' }],
      result: 'stream', formats: ['csv'], cache: { ttl: 60 },
    },
    {
      method: 'GET', path: '/lite/big', resources: ['lite'], ...pub,
      params: { k: { type: 'integer', minimum: 0, maximum: 1000, required: true } },
      statements: [{ sql: `SELECT :k AS k, '${PAD}' AS pad` }], result: 'one', cache: { ttl: 60 },
    },
    {
      method: 'GET', path: '/pg/probe', resources: ['pgc'], ...pub,
      params: { k: { type: 'integer', minimum: 0, maximum: 1000000000, required: true } },
      // Runs for half a second, so every concurrent request arrives while it runs.
      statements: [{ sql: 'SELECT wt_cache_probe(:k) AS k FROM pg_sleep(0.5)' }], result: 'one', cache: { ttl: 60 },
    },
    {
      method: 'GET', path: '/pg/fail', resources: ['pgc'], ...pub,
      params: { k: { type: 'integer', minimum: 0, maximum: 1000, required: true } },
      // Fails after half a second (a constant error would fail at planning, before later requests arrive).
      statements: [{ sql: 'SELECT wt_cache_fail(:k) AS x' }], result: 'one', cache: { ttl: 60 },
    },
    {
      method: 'POST', path: '/pg/touch', resources: ['pgc'], ...pub,
      statements: [{ sql: 'UPDATE cache_log SET k = k WHERE false' }], result: 'exec', invalidates: ['/pg/probe'],
    },
  ];
}

function config(dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const file = join(dir, 'cache-endpoints.yaml');
  writeFileSync(file, stringify({ endpoints: endpoints() }));
  return {
    log_level: 'INFO',
    resource_ids: ['lite', 'pgc'],
    resources: { lite: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 4 }, pgc: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 4 } },
    secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'items.db') }, pgc: fileTarget(pgTarget({ db_name: dbName })) },
    endpoints: [file],
    auth: { api_keys: Object.values(KEYS).map((k) => ({ id: k.id, sha256: k.sha256, roles: ROLES[k.id as keyof typeof ROLES] })) },
    cache_max_bytes: 16384,
    cache_max_entry_bytes: 4096,
    ...extra,
  };
}

async function metric(gw: GatewayProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const s = parseExposition(text).samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

const queries = (gw: GatewayProcess, rid: string) => metric(gw, 'wt_queries_total', { resource_id: rid });

const get = (gw: GatewayProcess, path: string, headers: Record<string, string> = {}) => fetch(`${gw.url}${path}`, { headers, signal: AbortSignal.timeout(20_000) });

let pool: pg.Pool;
/** Times the probe really ran for `k`. */
async function probes(k: number): Promise<number> {
  const r = await pool.query('SELECT count(*)::int AS n FROM cache_log WHERE k = $1', [k]);
  return r.rows[0].n as number;
}

let gw: GatewayProcess;

beforeAll(async () => {
  if (skipPg) return;
  await ensureDatabase(pgTarget({ db_name: dbName }));
  pool = new pg.Pool({ connectionString: pgUrl, max: 2 });
  await pool.query('CREATE TABLE cache_log (k integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  await pool.query(`CREATE FUNCTION wt_cache_probe(k integer) RETURNS integer VOLATILE LANGUAGE sql AS $$ INSERT INTO cache_log (k) VALUES (k); SELECT k $$`);
  await pool.query(`CREATE FUNCTION wt_cache_fail(k integer) RETURNS integer VOLATILE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'probe % failed', k; END $$`);
  gw = await startGateway({
    configPatch: (doc, dir) => {
      const db = new Database(join(dir, 'items.db'));
      db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
      for (let i = 1; i <= 5; i++) db.prepare('INSERT INTO items VALUES (?, ?)').run(i, `n${i}`);
      db.close();
      Object.assign(doc, config(dir));
    },
    config: {},
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await pool?.end();
  if (!skipPg) {
    const admin = new pg.Client({ connectionString: TEST_PG_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}, 60_000);

describe.skipIf(skipPg)('response cache through a running gateway', () => {
  it('serves the same params from the cache and runs the query again for other params', async () => {
    const before = await queries(gw, 'lite');
    const first = await get(gw, '/lite/items?min_id=2');
    const body = await first.text();
    expect(first.status).toBe(200);
    expect(JSON.parse(body).map((r: { id: number }) => r.id)).toEqual([2, 3, 4, 5]);
    expect(await queries(gw, 'lite')).toBe(before + 1);
    const again = await get(gw, '/lite/items?min_id=2');
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(await queries(gw, 'lite')).toBe(before + 1);
    // Other params, and another format of the same params: each its own entry.
    expect(JSON.parse(await (await get(gw, '/lite/items?min_id=4')).text())).toHaveLength(2);
    expect(await queries(gw, 'lite')).toBe(before + 2);
    const csv = await get(gw, '/lite/items?min_id=2', { accept: 'text/csv' });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await csv.text()).toBe('id,name\r\n2,n2\r\n3,n3\r\n4,n4\r\n5,n5\r\n');
    expect(await queries(gw, 'lite')).toBe(before + 3);
    // The default is a param like the others: absent and given as 0 are one entry.
    await get(gw, '/lite/items');
    await get(gw, '/lite/items?min_id=0');
    expect(await queries(gw, 'lite')).toBe(before + 4);
    expect(await metric(gw, 'wt_cache_hits_total', { endpoint: '/lite/items' })).toBeGreaterThanOrEqual(2);
  });

  it('keeps callers of different roles apart, and callers of the same roles together unless the SQL binds the caller', async () => {
    const as = (k: keyof typeof KEYS) => ({ 'x-api-key': KEYS[k].key });
    const before = await queries(gw, 'lite');
    const ann = await get(gw, '/lite/count', as('ann'));
    expect(ann.status).toBe(200);
    expect(ann.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
    expect((await get(gw, '/lite/count', as('bob'))).status).toBe(200);
    // ann (role a) and bob (role b): an entry each.
    expect(await queries(gw, 'lite')).toBe(before + 2);
    // cid holds bob's roles: bob's entry.
    expect((await get(gw, '/lite/count', as('cid'))).status).toBe(200);
    expect(await queries(gw, 'lite')).toBe(before + 2);
    // Without a credential: refused before the cache is asked.
    expect((await get(gw, '/lite/count')).status).toBe(401);

    // :_caller in the SQL: bob and cid (same roles) each get their own answer.
    expect(await (await get(gw, '/lite/me', as('bob'))).json()).toEqual({ who: 'bob' });
    expect(await (await get(gw, '/lite/me', as('cid'))).json()).toEqual({ who: 'cid' });
    expect(await (await get(gw, '/lite/me', as('bob'))).json()).toEqual({ who: 'bob' });
    expect(await queries(gw, 'lite')).toBe(before + 4);
  });

  it('runs the query again once the ttl is over, with max-age counting down', async () => {
    const before = await queries(gw, 'lite');
    const first = await get(gw, '/lite/short');
    expect(first.headers.get('cache-control')).toBe('max-age=2');
    await get(gw, '/lite/short');
    expect(await queries(gw, 'lite')).toBe(before + 1);
    await new Promise((r) => setTimeout(r, 2300));
    const later = await get(gw, '/lite/short');
    expect(later.status).toBe(200);
    expect(await queries(gw, 'lite')).toBe(before + 2);
  });

  it('runs one query for 100 concurrent misses of one key, and gives all of them its answer', async () => {
    const k = 4242;
    const hitsBefore = await metric(gw, 'wt_cache_hits_total', { endpoint: '/pg/probe' });
    const missesBefore = await metric(gw, 'wt_cache_misses_total', { endpoint: '/pg/probe' });
    const answers = await Promise.all(Array.from({ length: 100 }, () => get(gw, `/pg/probe?k=${k}`).then(async (r) => ({ status: r.status, body: await r.text(), etag: r.headers.get('etag') }))));
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(200));
    expect(new Set(answers.map((a) => a.body))).toEqual(new Set([`{"k":${k}}`]));
    expect(new Set(answers.map((a) => a.etag)).size).toBe(1);
    expect(await probes(k)).toBe(1);
    expect(await metric(gw, 'wt_cache_misses_total', { endpoint: '/pg/probe' })).toBe(missesBefore + 1);
    expect(await metric(gw, 'wt_cache_hits_total', { endpoint: '/pg/probe' })).toBe(hitsBefore + 99);
  });

  it('lets the waiters of a leader whose client left run the query themselves', async () => {
    const k = 5151;
    const missesBefore = await metric(gw, 'wt_cache_misses_total', { endpoint: '/pg/probe' });
    const abort = new AbortController();
    const leader = fetch(`${gw.url}/pg/probe?k=${k}`, { signal: abort.signal }).then(
      () => 'answered',
      () => 'aborted',
    );
    await new Promise((r) => setTimeout(r, 100));
    const waiters = Promise.all(Array.from({ length: 5 }, () => get(gw, `/pg/probe?k=${k}`).then(async (r) => `${r.status} ${await r.text()}`)));
    await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    expect(await leader).toBe('aborted');
    expect(await waiters).toEqual(Array(5).fill(`200 {"k":${k}}`));
    // The leader's statement was stopped (cancel on disconnect) and one waiter ran it again for the others.
    expect(await metric(gw, 'wt_cache_misses_total', { endpoint: '/pg/probe' })).toBe(missesBefore + 2);
    expect(await probes(k)).toBeGreaterThanOrEqual(1);
  });

  it('gives every waiter the error of a failed query, and keeps nothing of it', async () => {
    const errorsBefore = await metric(gw, 'wt_query_errors_total', { resource_id: 'pgc', error_type: 'other' });
    const round = () => Promise.all(Array.from({ length: 10 }, () => get(gw, '/pg/fail?k=3').then(async (r) => ({ status: r.status, body: (await r.json()) as { detail: string } }))));
    const first = await round();
    expect(first.map((a) => a.status)).toEqual(Array(10).fill(500));
    for (const a of first) expect(a.body.detail).toBe(first[0].body.detail);
    expect(await metric(gw, 'wt_query_errors_total', { resource_id: 'pgc', error_type: 'other' })).toBe(errorsBefore + 1);
    const second = await round();
    expect(second.map((a) => a.status)).toEqual(Array(10).fill(500));
    expect(await metric(gw, 'wt_query_errors_total', { resource_id: 'pgc', error_type: 'other' })).toBe(errorsBefore + 2);
  });

  it('answers ETag and Cache-Control, and 304 to If-None-Match naming the ETag', async () => {
    const first = await get(gw, '/lite/items?min_id=3');
    const body = await first.text();
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    expect(first.headers.get('cache-control')).toMatch(/^max-age=(59|60)$/);
    expect(first.headers.get('vary')).toBe('Accept');
    const before = await queries(gw, 'lite');
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const r = await get(gw, '/lite/items?min_id=3', { 'if-none-match': inm });
      expect(r.status, inm).toBe(304);
      expect(await r.text()).toBe('');
      expect(r.headers.get('etag')).toBe(etag);
      expect(r.headers.get('cache-control')).toMatch(/^max-age=\d+$/);
    }
    const stale = await get(gw, '/lite/items?min_id=3', { 'if-none-match': '"something-else"' });
    expect(stale.status).toBe(200);
    expect(await stale.text()).toBe(body);
    expect(stale.headers.get('etag')).toBe(etag);
    // Another body, another ETag.
    expect((await get(gw, '/lite/items?min_id=1')).headers.get('etag')).not.toBe(etag);
    expect(await queries(gw, 'lite')).toBe(before + 1);
    // The OpenAPI document lists the 304 of cached endpoints only.
    const doc = (await (await get(gw, '/docs/json')).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths['/lite/items'].get.responses)).toContain('304');
    expect(Object.keys(doc.paths['/lite/items'].post.responses)).not.toContain('304');
  });

  it('clears the entries of the endpoints a successful write invalidates', async () => {
    const ids = async () => ((await (await get(gw, '/lite/items?min_id=5')).json()) as { id: number }[]).map((r) => r.id);
    expect(await ids()).toEqual([5]);
    const post = await fetch(`${gw.url}/lite/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 6, name: 'n6' }) });
    expect(post.status).toBe(200);
    expect(await ids()).toEqual([5, 6]);
    // A write that fails (duplicate key) clears nothing.
    const before = await queries(gw, 'lite');
    const dup = await fetch(`${gw.url}/lite/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 6, name: 'again' }) });
    expect(dup.status).toBe(409);
    expect(await ids()).toEqual([5, 6]);
    expect(await queries(gw, 'lite')).toBe(before + 1);
  });

  it('keeps a stream that ends within cache_max_entry_bytes, and passes a larger one through', async () => {
    const before = await queries(gw, 'lite');
    const small = await (await get(gw, '/lite/stream?limit=3')).text();
    expect(small).toBe('i,seven\r\n1,7\r\n2,14\r\n3,21\r\n');
    const hit = await get(gw, '/lite/stream?limit=3');
    expect(await hit.text()).toBe(small);
    expect(hit.headers.get('etag')).toMatch(/^"/);
    expect(await queries(gw, 'lite')).toBe(before + 1);
    // Past 100 rows SQLite's worker thread encodes the batches and hands over their bytes: kept alike.
    const mid = await (await get(gw, '/lite/stream?limit=150')).text();
    expect(mid.split('\r\n')).toHaveLength(152);
    expect(await (await get(gw, '/lite/stream?limit=150')).text()).toBe(mid);
    expect(await queries(gw, 'lite')).toBe(before + 2);
    // About 6 KB, above the 4 KB bound: sent whole, every time from the database.
    for (let i = 0; i < 2; i++) expect((await (await get(gw, '/lite/stream?limit=600')).text()).split('\r\n')).toHaveLength(602);
    expect(await queries(gw, 'lite')).toBe(before + 4);
  });

  it('stays within cache_max_bytes, pushing out the least recently used entries', async () => {
    const evictedBefore = await metric(gw, 'wt_cache_evictions_total', { endpoint: '/lite/big' });
    for (let k = 0; k < 40; k++) expect((await get(gw, `/lite/big?k=${k}`)).status).toBe(200);
    const evicted = (await metric(gw, 'wt_cache_evictions_total', { endpoint: '/lite/big' })) - evictedBefore;
    expect(evicted).toBeGreaterThanOrEqual(20);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const total = parseExposition(text).samples.filter((s) => s.name === 'wt_cache_bytes').reduce((a, s) => a + s.value, 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(16384);
    // The first ones went; the last one is still there.
    const before = await queries(gw, 'lite');
    await get(gw, '/lite/big?k=39');
    expect(await queries(gw, 'lite')).toBe(before);
    await get(gw, '/lite/big?k=0');
    expect(await queries(gw, 'lite')).toBe(before + 1);
  });

  it('is emptied by a reload with cache_clear_on_reload, and kept by one without', async () => {
    await get(gw, '/lite/items?min_id=1');
    const before = await queries(gw, 'lite');
    await get(gw, '/lite/items?min_id=1');
    expect(await queries(gw, 'lite')).toBe(before);
    const from = gw.lines.length;
    expect((await gw.reload({ cache_clear_on_reload: true })).fields.tag).toBe('config-reload');
    await gw.waitForLine((l) => l.fields.tag === 'cache-clear', 5000, from);
    await get(gw, '/lite/items?min_id=1');
    expect(await queries(gw, 'lite')).toBe(before + 1);
    expect((await gw.reload({})).fields.tag).toBe('config-reload');
    await get(gw, '/lite/items?min_id=1');
    expect(await queries(gw, 'lite')).toBe(before + 1);
  });

  it('never serves an answer of an endpoint\'s old declaration after an endpoint switch', async () => {
    type Row = { id: number; v?: string };
    const old = (await (await get(gw, '/lite/items?min_id=5')).json()) as Row[];
    expect(old.length).toBeGreaterThan(0);
    expect(old.every((r) => r.v === undefined)).toBe(true);
    const file = join(gw.dir, 'cache-endpoints.yaml');
    writeFileSync(file, stringify({ endpoints: endpoints("SELECT id, name, 'v2' AS v FROM items WHERE id >= :min_id ORDER BY id") }));
    const from = gw.lines.length;
    gw.signal('SIGHUP');
    await gw.waitForLine((l) => l.fields.tag === 'endpoints-switch' && String(l.fields.msg).startsWith('serving'), 20_000, from);
    const now = (await (await get(gw, '/lite/items?min_id=5')).json()) as Row[];
    expect(now.map((r) => r.id)).toEqual(old.map((r) => r.id));
    expect(now.every((r) => r.v === 'v2')).toBe(true);
  });
});

describe.skipIf(skipPg)('response cache shared through Redis by two gateways', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;
  const prefix = `wt-cache-test-${randomBytes(6).toString('hex')}:`;

  beforeAll(async () => {
    const start = () =>
      startGateway({
        config: {},
        configPatch: (doc, dir) => {
          Object.assign(doc, config(dir, { cache_redis: TEST_REDIS_URL, cache_redis_prefix: prefix }));
          const db = new Database(join(dir, 'items.db'));
          db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
          db.close();
        },
      });
    [a, b] = await Promise.all([start(), start()]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  }, 60_000);

  it('serves on one gateway what the other stored, and an invalidation on one clears it for both', async () => {
    const k = 777_001;
    const fromA = await get(a, `/pg/probe?k=${k}`);
    expect(fromA.status).toBe(200);
    const body = await fromA.text();
    expect(await probes(k)).toBe(1);
    const fromB = await get(b, `/pg/probe?k=${k}`);
    expect(await fromB.text()).toBe(body);
    expect(fromB.headers.get('etag')).toBe(fromA.headers.get('etag'));
    expect(await probes(k)).toBe(1);
    expect(await metric(b, 'wt_cache_hits_total', { endpoint: '/pg/probe' })).toBe(1);
    expect(await metric(b, 'wt_cache_misses_total', { endpoint: '/pg/probe' })).toBe(0);
    expect(await metric(b, 'wt_cache_redis_errors_total')).toBe(0);

    expect((await fetch(`${b.url}/pg/touch`, { method: 'POST' })).status).toBe(200);
    expect(await (await get(a, `/pg/probe?k=${k}`)).text()).toBe(body);
    expect(await probes(k)).toBe(2);
    expect(await (await get(b, `/pg/probe?k=${k}`)).text()).toBe(body);
    expect(await probes(k)).toBe(2);
  });
});

describe.skipIf(skipPg)('response cache with its Redis unreachable', () => {
  let gwDown: GatewayProcess;

  beforeAll(async () => {
    // A port nothing listens on: every command fails at once.
    const url = `redis://127.0.0.1:${await freePort()}`;
    gwDown = await startGateway({
      config: {},
      configPatch: (doc, dir) => {
        Object.assign(doc, config(dir, { cache_redis: url, cache_redis_prefix: `wt-cache-down-${randomBytes(4).toString('hex')}:` }));
        const db = new Database(join(dir, 'items.db'));
        db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
        db.close();
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gwDown?.stop();
  }, 60_000);

  it('answers, and keeps answers in its own memory, saying so in a record and a metric', async () => {
    const k = 888_001;
    const first = await get(gwDown, `/pg/probe?k=${k}`);
    expect(first.status).toBe(200);
    const second = await get(gwDown, `/pg/probe?k=${k}`);
    expect(second.status).toBe(200);
    expect(await second.text()).toBe(await first.text());
    expect(await probes(k)).toBe(1);
    expect(await metric(gwDown, 'wt_cache_redis_errors_total')).toBeGreaterThanOrEqual(2);
    await gwDown.waitForLine((l) => l.fields.tag === 'cache-redis-err', 5000);
  });
});

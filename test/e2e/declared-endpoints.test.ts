/**
 * Declared endpoints (config key `endpoints`, src/endpoints/) served by a real gateway process over
 * real SQLite, PostgreSQL and MariaDB: every result kind and format, validation from the declared
 * params, values that look like SQL arriving as data, 406, 404 for `one`, a transaction that fails
 * half-way leaving nothing, and a gateway that refuses to start with a bad endpoint file.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase, seedSampleData } from '../../src/db/sample-data.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { ROOT, sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { fileTarget } from '../helpers/test-data.js';
import { toFilter, type TrafficQuery } from '../../src/routes/traffic-params.js';
import { selectTraffic, type Dialect } from '../../src/routes/traffic-sql.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = requireOrSkip('MariaDB ODBC', await odbcAvailable());

const dbName = uniqueName('wt_decl');
const work = mkdtempSync(join(tmpdir(), 'wt-decl-'));

/** Row 2 holds every character csv must quote. */
const NAMES = Array.from({ length: 30 }, (_, i) => (i === 0 ? 'plain' : i === 1 ? 'a,"b"\r\nc' : `n${i + 1}`));

async function seedServer(target: SecureResourceSettings): Promise<void> {
  await ensureDatabase(target);
  const conn = await createConnector('seed', target).connect(0, 10);
  try {
    await conn.query('DROP TABLE IF EXISTS items', [], { timeoutSeconds: 30 });
    const text = target.db_type === 'postgres' ? 'TEXT' : 'VARCHAR(200)';
    await conn.query(`CREATE TABLE items (id INTEGER PRIMARY KEY, name ${text} NOT NULL, note ${text})`, [], { timeoutSeconds: 30 });
    for (const [i, name] of NAMES.entries()) await conn.query('INSERT INTO items VALUES (?, ?, ?)', [i + 1, name, i === 1 ? 'x' : null], { timeoutSeconds: 30 });
  } finally {
    await conn.close();
  }
}

async function dropServer(target: SecureResourceSettings): Promise<void> {
  const conn = await createConnector('drop', { ...target, db_name: target.db_type === 'postgres' ? 'postgres' : '' }).connect(0, 10);
  try {
    await conn.query(`DROP DATABASE IF EXISTS ${target.db_name}${target.db_type === 'postgres' ? ' WITH (FORCE)' : ''}`, [], { timeoutSeconds: 30 });
  } finally {
    await conn.close();
  }
}

function seedSqlite(path: string): void {
  const db = new Database(path);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT)');
  const insert = db.prepare('INSERT INTO items VALUES (?, ?, ?)');
  NAMES.forEach((name, i) => insert.run(i + 1, name, i === 1 ? 'x' : null));
  db.close();
}

/** The same endpoints for each database, under /<prefix>. PostgreSQL needs its casts (a variant). */
function endpointsFor(prefix: string, rid: string): unknown[] {
  const sql = (postgres: string, other: string) => ({ postgres, mysql: other, sqlite: other });
  const itemParams = { id: { type: 'integer', minimum: 1, maximum: 1000000 }, name: { type: 'string', maxLength: 100 }, note: { type: 'string' } };
  const insert = { sql: 'INSERT INTO items (id, name, note) VALUES (:id, :name, :note)', each: 'items' };
  const itemsBody = { in: 'body', type: 'array', minItems: 1, maxItems: 100, items: { type: 'object', required: ['id', 'name'], properties: itemParams } };
  return [
    {
      method: 'GET',
      path: `/${prefix}/items`,
      summary: `Items from ${prefix}`,
      tags: ['items'],
      resources: [rid],
      params: {
        min_id: { type: 'integer', minimum: 0, maximum: 1000000, default: 0, description: 'Smallest id' },
        name: { type: 'string', maxLength: 100, description: 'Only items of this name' },
      },
      statements: [
        {
          sql: sql(
            'SELECT id, name, note FROM items WHERE id >= :min_id AND (:name::text IS NULL OR name = :name) ORDER BY id',
            'SELECT id, name, note FROM items WHERE id >= :min_id AND (:name IS NULL OR name = :name) ORDER BY id',
          ),
        },
      ],
      result: 'rows',
      formats: ['json', 'ndjson', 'csv', 'psv'],
      columns: { id: 'integer', name: { type: 'string', description: 'Its name' }, note: ['string', 'null'] },
    },
    {
      method: 'GET',
      path: `/${prefix}/items/:id`,
      resources: [rid],
      params: { id: { in: 'path', type: 'integer', minimum: 1, maximum: 1000000 } },
      statements: [{ sql: 'SELECT id, name, note FROM items WHERE id = :id' }],
      result: 'one',
      formats: ['json', 'csv'],
    },
    {
      method: 'GET',
      path: `/${prefix}/stream`,
      resources: [rid],
      params: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 1000 } },
      statements: [{ sql: 'SELECT id, name, note FROM items ORDER BY id LIMIT :limit' }],
      result: 'stream',
      formats: ['json', 'ndjson', 'csv', 'psv'],
      max_rows: 25,
    },
    { method: 'POST', path: `/${prefix}/items`, resources: [rid], params: { items: itemsBody }, statements: [insert], result: 'transaction', status: 201, count_as: 'inserted' },
    { method: 'POST', path: `/${prefix}/items-422`, resources: [rid], params: { items: itemsBody }, statements: [insert], result: 'transaction', conflict: 422 },
    {
      method: 'DELETE',
      path: `/${prefix}/items/:id`,
      resources: [rid],
      params: { id: { in: 'path', type: 'integer', minimum: 1, maximum: 1000000 } },
      statements: [{ sql: 'DELETE FROM items WHERE id = :id' }],
      result: 'exec',
      count_as: 'deleted',
    },
    {
      method: 'POST',
      path: `/${prefix}/echo/:p`,
      resources: [rid],
      params: {
        p: { in: 'path', type: 'string' },
        q: { in: 'query', type: 'string' },
        h: { in: 'header', header: 'X-Echo', type: 'string' },
        b: { in: 'body', type: 'string', required: true },
        k: { in: 'body', type: 'integer' },
        t: { in: 'body', type: 'boolean' },
        n: { in: 'body', type: 'number', minimum: -1000, maximum: 1000 },
      },
      statements: [
        {
          sql: sql(
            "SELECT :p::text AS p, :q::text AS q, :h::text AS h, :b::text AS b, :k::bigint AS k, CASE WHEN :t::boolean THEN 'yes' ELSE 'no' END AS t, :n::float8 AS n, :_cid::text AS cid, :_client::text AS client, :_now::text AS now",
            "SELECT :p AS p, :q AS q, :h AS h, :b AS b, :k AS k, CASE WHEN :t THEN 'yes' ELSE 'no' END AS t, :n AS n, :_cid AS cid, :_client AS client, :_now AS now",
          ),
        },
      ],
      result: 'one',
    },
    ...(prefix === 'pg'
      ? [
          {
            method: 'GET',
            path: '/pg/big',
            resources: [rid],
            params: { n: { type: 'integer', minimum: 1, maximum: 10000000 } },
            statements: [{ sql: "SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, :n::int) g" }],
            result: 'stream',
            formats: ['csv', 'ndjson'],
          },
          {
            method: 'GET',
            path: '/pg/sleep',
            resources: [rid],
            params: { s: { type: 'integer', minimum: 0, maximum: 5 } },
            statements: [{ sql: 'SELECT pg_sleep(:s::int) IS NULL AS slept' }],
            result: 'one',
            timeout: 1,
          },
        ]
      : []),
  ];
}

const DBS = [
  { prefix: 'lite', rid: 'lite', skip: false },
  { prefix: 'pg', rid: 'pgdb', skip: skipPg },
  { prefix: 'my', rid: 'mydb', skip: skipMysql },
];

let gw: GatewayProcess;

beforeAll(async () => {
  seedSqlite(join(work, 'items.db'));
  if (!skipPg) await seedServer(pgTarget({ db_name: dbName }));
  if (!skipMysql) await seedServer(mysqlTarget({ db_name: dbName }));
  const live = DBS.filter((d) => !d.skip);
  mkdirSync(join(work, 'endpoints'));
  for (const d of live) writeFileSync(join(work, 'endpoints', `${d.prefix}.yaml`), stringify({ endpoints: endpointsFor(d.prefix, d.rid) }));
  const pool = { db_min_conn_pool_size: 1, db_max_conn_pool_size: 4 };
  gw = await startGateway({
    config: {
      log_level: 'INFO',
      resource_ids: live.map((d) => d.rid),
      resources: Object.fromEntries(live.map((d) => [d.rid, pool])),
      secure: {
        lite: { db_type: 'sqlite', db_sample: true, db_path: join(work, 'items.db') },
        ...(skipPg ? {} : { pgdb: fileTarget(pgTarget({ db_name: dbName })) }),
        ...(skipMysql ? {} : { mydb: fileTarget(mysqlTarget({ db_name: dbName })) }),
      },
      endpoints: [join(work, 'endpoints', '*.yaml')],
      pool_check_interval: 1,
    },
  });
}, 120_000);

afterAll(async () => {
  expect(await gw?.stop()).toBe(0);
  if (!skipPg) await dropServer(pgTarget({ db_name: dbName }));
  if (!skipMysql) await dropServer(mysqlTarget({ db_name: dbName }));
  rmSync(work, { recursive: true, force: true });
}, 60_000);

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}${path}`, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), cid: res.headers.get('x-correlation-id') };
}

async function send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, cid: res.headers.get('x-correlation-id') };
}

const CSV_HEAD = 'id,name,note\r\n1,plain,\r\n2,"a,""b""\r\nc",x\r\n3,n3,\r\n';

describe.each(DBS)('declared endpoints on $prefix', ({ prefix, skip }) => {
  it.skipIf(skip)('rows: a JSON array, filtered by the declared query params, their defaults applied', async () => {
    const all = await get(`/${prefix}/items`);
    expect(all.status).toBe(200);
    expect(all.type).toMatch(/^application\/json/);
    expect((JSON.parse(all.text) as unknown[]).length).toBe(30);
    expect(JSON.parse((await get(`/${prefix}/items?min_id=29`)).text)).toEqual([
      { id: 29, name: 'n29', note: null },
      { id: 30, name: 'n30', note: null },
    ]);
    expect(JSON.parse((await get(`/${prefix}/items?name=plain`)).text)).toEqual([{ id: 1, name: 'plain', note: null }]);
  });

  it.skipIf(skip)('every format, by ?format= or Accept', async () => {
    const csv = await get(`/${prefix}/items?format=csv`);
    expect(csv.type).toBe('text/csv; charset=utf-8; header=present');
    expect(csv.text.startsWith(CSV_HEAD)).toBe(true);
    expect(csv.text.endsWith('30,n30,\r\n')).toBe(true);
    expect((await get(`/${prefix}/items`, { accept: 'text/csv' })).text).toBe(csv.text);
    const nd = await get(`/${prefix}/items?min_id=28`, { accept: 'application/x-ndjson' });
    expect(nd.type).toMatch(/^application\/x-ndjson/);
    expect(nd.text).toBe('{"id":28,"name":"n28","note":null}\n{"id":29,"name":"n29","note":null}\n{"id":30,"name":"n30","note":null}\n');
    const psv = await get(`/${prefix}/items?min_id=29`, { accept: 'text/plain' });
    expect(psv.type).toMatch(/^text\/plain/);
    expect(psv.text).toBe('29|n29|\n30|n30|\n');
  });

  it.skipIf(skip)('406 naming the offered formats, before a slot is taken', async () => {
    for (const r of [await get(`/${prefix}/items`, { accept: 'application/xml' }), await get(`/${prefix}/items?format=xml`)]) {
      expect(r.status).toBe(406);
      expect(JSON.parse(r.text).detail).toBe(
        'not acceptable: this endpoint answers json (application/json), ndjson (application/x-ndjson), csv (text/csv), psv (text/plain); choose one with ?format= or Accept',
      );
    }
    expect((await get(`/${prefix}/items/1`, { accept: 'application/x-ndjson' })).status).toBe(406);
  });

  it.skipIf(skip)('one: an object, 404 when no row, 400 naming a bad path param', async () => {
    expect(JSON.parse((await get(`/${prefix}/items/2`)).text)).toEqual({ id: 2, name: 'a,"b"\r\nc', note: 'x' });
    expect((await get(`/${prefix}/items/2?format=csv`)).text).toBe('id,name,note\r\n2,"a,""b""\r\nc",x\r\n');
    const missing = await get(`/${prefix}/items/999`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text).detail).toBe(`no row found for GET /${prefix}/items/:id`);
    for (const bad of ['abc', '0x1f', '1%20OR%201=1', '01', '2000000']) {
      const r = await get(`/${prefix}/items/${bad}`);
      expect(r.status, bad).toBe(400);
      expect(JSON.parse(r.text).detail, bad).toMatch(/^params\/id must be/);
    }
    const q = await get(`/${prefix}/items?min_id=1%20OR%201=1`);
    expect(q.status).toBe(400);
    expect(JSON.parse(q.text).detail).toBe('querystring/min_id must be integer');
  });

  it.skipIf(skip)('stream: rows from a cursor in every format, cut at max_rows', async () => {
    const json = JSON.parse((await get(`/${prefix}/stream`)).text) as { id: number }[];
    expect(json.map((r) => r.id)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    // The cut does not wait for the statement's stop (MariaDB's took about 2 s).
    const started = Date.now();
    const nd = (await get(`/${prefix}/stream?format=ndjson`)).text.split('\n');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(nd.length).toBe(26);
    expect(nd[25]).toBe('');
    const csv = await get(`/${prefix}/stream`, { accept: 'text/csv' });
    expect(csv.text.startsWith(CSV_HEAD)).toBe(true);
    expect(csv.text.endsWith('25,n25,\r\n')).toBe(true);
    expect((await get(`/${prefix}/stream?format=psv&limit=2`)).text).toBe('1|plain|\n2|a,"b"\r\nc|x\n');
  });

  it.skipIf(skip)('transaction: a body array expanded per item, all or nothing; exec counts rows', async () => {
    const ok = await send('POST', `/${prefix}/items`, { items: [{ id: 100, name: 'x' }, { id: 101, name: 'y', note: 'z' }] });
    expect(ok).toMatchObject({ status: 201, json: { inserted: 2 } });
    expect(JSON.parse((await get(`/${prefix}/items/101`)).text)).toEqual({ id: 101, name: 'y', note: 'z' });
    // The second item fails on the primary key: the first must not stay.
    const dup = await send('POST', `/${prefix}/items`, { items: [{ id: 102, name: 'x' }, { id: 1, name: 'dup' }] });
    expect(dup.status).toBe(409);
    expect(String(dup.json.detail)).toMatch(/^duplicate row for resource /);
    expect((await get(`/${prefix}/items/102`)).status).toBe(404);
    expect((await send('POST', `/${prefix}/items-422`, { items: [{ id: 103, name: 'x' }, { id: 1, name: 'dup' }] })).status).toBe(422);
    expect((await get(`/${prefix}/items/103`)).status).toBe(404);
    const bad = await send('POST', `/${prefix}/items`, { items: [{ id: 104, name: 'x', extra: 1 }] });
    expect(bad).toMatchObject({ status: 400, json: { detail: 'body/items/0 must NOT have additional properties: extra' } });
    expect(await send('DELETE', `/${prefix}/items/100`)).toMatchObject({ status: 200, json: { deleted: 1 } });
    expect(await send('DELETE', `/${prefix}/items/100`)).toMatchObject({ status: 200, json: { deleted: 0 } });
    await send('DELETE', `/${prefix}/items/101`);
  });

  it.skipIf(skip)('values shaped like SQL arrive as data in every location; reserved params hold the request', async () => {
    const values = ["'; DROP TABLE items; --", "' OR '1'='1", ':p ? $1 %s \\', '"items"`x`', '1; DELETE FROM items', 'ünï\u00a0cødé'];
    for (const v of values) {
      const started = Date.now();
      const r = await send('POST', `/${prefix}/echo/${encodeURIComponent(v)}?q=${encodeURIComponent(v)}`, { b: v, k: 7, t: true, n: -2.5 }, { 'x-echo': encodeURIComponent(v) });
      expect(r.status, v).toBe(200);
      expect(r.json, v).toMatchObject({ p: v, q: v, h: encodeURIComponent(v), b: v, t: 'yes', cid: r.cid, client: '127.0.0.1' });
      expect(Number(r.json.k)).toBe(7);
      expect(Number(r.json.n)).toBe(-2.5);
      const now = Date.parse(`${String(r.json.now).replace(' ', 'T')}Z`);
      expect(Math.abs(now - started)).toBeLessThan(5000);
    }
    const off = await send('POST', `/${prefix}/echo/x`, { b: 'b', t: false });
    expect(off.json).toMatchObject({ q: null, h: null, k: null, t: 'no' });
    for (const [body, detail] of [
      [{ b: 'x', k: '1 OR 1=1' }, 'body/k must be integer'],
      [{ b: 'x', t: "' OR 1" }, 'body/t must be boolean'],
      [{ b: 'x', n: '1; DROP TABLE items' }, 'body/n must be number'],
      [{ b: 1 }, 'body/b must be string'],
      [{ k: 1 }, "body must have required property 'b'"],
    ] as const) {
      expect(await send('POST', `/${prefix}/echo/x`, body), detail).toMatchObject({ status: 400, json: { detail } });
    }
    expect((JSON.parse((await get(`/${prefix}/items`)).text) as unknown[]).length).toBe(30);
  });

  it.skipIf(skip)('the OpenAPI document shows the declared params and formats', async () => {
    const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string; description?: string }[]; responses: Record<string, { content?: Record<string, unknown> }> }>>;
    };
    const op = doc.paths[`/${prefix}/items`].get;
    expect(op.parameters?.find((p) => p.name === 'min_id')).toMatchObject({ in: 'query', description: 'Smallest id' });
    expect(Object.keys(op.responses['200'].content ?? {})).toEqual(['application/json', 'application/x-ndjson', 'text/csv', 'text/plain']);
    // The declared columns are the row type; real rows have exactly them.
    const rowSchema = (op.responses['200'].content?.['application/json'] as { schema: { items: { properties: Record<string, unknown> } } }).schema.items;
    expect(rowSchema.properties).toEqual({ id: { type: 'integer' }, name: { type: 'string', description: 'Its name' }, note: { type: 'string', nullable: true } });
    const rows = JSON.parse((await get(`/${prefix}/items`)).text) as Record<string, unknown>[];
    for (const row of rows) expect(Object.keys(row)).toEqual(Object.keys(rowSchema.properties));
    expect(op.responses['406']).toBeDefined();
    expect(doc.paths[`/${prefix}/items/{id}`].get.responses['404']).toBeDefined();
  });
});

/** Resident set of a process, MB (Linux). */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

describe.skipIf(skipPg)('a large stream', () => {
  it.each(['csv', 'ndjson'])('%s keeps flat memory while the client does not read, and sends every row once it does', async (format) => {
    const pid = gw.child.pid!;
    const n = 400_000;
    const before = rssMb(pid);
    /** RSS samples of the paused second half: what the gateway keeps holding, not a collection's passing peak. */
    const held: number[] = [];
    const body = await new Promise<{ bytes: number; lines: number; last: string }>((resolve, reject) => {
      const req = httpGet(`${gw.url}/pg/big?n=${n}&format=${format}`, (res) => {
        expect(res.statusCode).toBe(200);
        res.pause();
        // About 45 MB to send; a gateway that did not wait for its client would hold it all by now.
        const pausedAt = Date.now();
        const sampler = setInterval(() => Date.now() - pausedAt >= 1500 && held.push(rssMb(pid)), 100);
        setTimeout(() => {
          clearInterval(sampler);
          let bytes = 0;
          let lines = 0;
          let tail = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            bytes += chunk.length;
            for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) lines++;
            tail = (tail + chunk).slice(-200);
          });
          res.on('end', () => resolve({ bytes, lines, last: tail.trimEnd().split('\n').pop() ?? '' }));
          res.resume();
        }, 2500);
      });
      req.on('error', reject);
    });
    expect(body.bytes).toBeGreaterThan(n * 100);
    expect(body.lines).toBe(format === 'csv' ? n + 1 : n);
    expect(body.last).toBe(format === 'csv' ? `${n},${'x'.repeat(100)}` : JSON.stringify({ id: n, pad: 'x'.repeat(100) }));
    // Below the 45 MB body a gateway that did not wait would hold until its client reads. The least of
    // the last second's samples: a garbage collection under a loaded CI machine passes through higher
    // (peaks of 26 and 42 MB were seen), which held body bytes could not.
    const least = Math.min(...held);
    expect(held.length).toBeGreaterThan(5);
    expect(least - before, `RSS ${before.toFixed(0)} MB -> ${least.toFixed(0)} MB held`).toBeLessThan(35);
  }, 60_000);
});

describe.skipIf(skipPg)('a declared timeout', () => {
  it('stops the statement at the endpoint\'s own timeout, below the resource\'s', async () => {
    expect(JSON.parse((await get('/pg/sleep?s=0')).text)).toEqual({ slept: false });
    const started = Date.now();
    const r = await get('/pg/sleep?s=3');
    expect(r.status).toBe(504);
    expect(JSON.parse(r.text).detail).toBe('1-sec timeout waiting for DB query or fetch from resource pgdb');
    expect(Date.now() - started).toBeLessThan(2500);
  }, 20_000);
});

describe('an endpoint on a built-in route', () => {
  it('stops start-up naming it', async () => {
    const g = await startGateway({
      noWait: true,
      configPatch: (doc, dir) => {
        Object.assign(doc, sqliteConfig(dir), { endpoints: [join(dir, 'clash.yaml')] });
        writeFileSync(
          join(dir, 'clash.yaml'),
          stringify({ endpoints: [{ method: 'GET', path: '/traffic/compare', resources: ['sqlite_traffic'], statements: [{ sql: 'SELECT 1 AS one' }] }] }),
        );
      },
    });
    try {
      const timer = new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000));
      expect(await Promise.race([g.exited, timer])).toBe(1);
      expect(g.lines.join('\n')).toContain(`endpoint files refused, 1 problem(s): ${join(g.dir, 'clash.yaml')}: GET /traffic/compare: path: a built-in route has this method and path`);
    } finally {
      await g.stop();
    }
  }, 30_000);
});

describe('a bad endpoint file', () => {
  it('stops start-up with every problem named', async () => {
    const bad = startGateway({
      noWait: true,
      configPatch: (doc, dir) => {
        Object.assign(doc, sqliteConfig(dir), { endpoints: [join(dir, 'bad.yaml')] });
        writeFileSync(
          join(dir, 'bad.yaml'),
          stringify({
            endpoints: [
              { method: 'GET', path: '/health/x', resources: ['sqlite_traffic'], statements: [{ sql: 'SELECT :nope' }] },
              { method: 'GET', path: '/y', resources: ['nosuch'], params: { a: { type: 'string' } }, statements: [{ resource: 'nosuch', sql: 'SELECT 1' }] },
            ],
          }),
        );
      },
    });
    const g = await bad;
    try {
      // Bounded, so a gateway that starts anyway is stopped below rather than left running.
      const timer = new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000));
      expect(await Promise.race([g.exited, timer])).toBe(1);
      const file = join(g.dir, 'bad.yaml');
      const text = g.lines.join('\n');
      for (const problem of [
        `${file}: GET /health/x: path: shadows the gateway's own /health`,
        `${file}: GET /health/x: statements[0].sql: placeholder :nope has no param`,
        `${file}: GET /y: resources: unknown resource nosuch (no secure.nosuch section)`,
      ]) {
        expect(text).toContain(problem);
      }
      expect(text).not.toContain('listening');
    } finally {
      await g.stop();
    }
  }, 30_000);
});

describe('the shipped config/endpoints/traffic-*.yaml: the sample routes, declared', () => {
  const sampleDb = uniqueName('wt_decl_sample');
  let sample: GatewayProcess;
  let sqlitePath = '';
  const sources = [
    { prefix: 'sqlite', rid: 'sqlite_traffic', dialect: 'sqlite' as const, skip: false },
    { prefix: 'pg', rid: 'pg_traffic', dialect: 'postgres' as const, skip: skipPg },
    { prefix: 'mysql', rid: 'mysql_traffic', dialect: 'mysql' as const, skip: skipMysql },
    { prefix: 'mysql-odbc', rid: 'mysql_odbc_traffic', dialect: 'mysql' as const, skip: skipMysql || skipOdbc },
  ];
  const targets = (): Record<string, SecureResourceSettings> => ({
    sqlite_traffic: { db_type: 'sqlite', db_sample: true, db_path: sqlitePath } as SecureResourceSettings,
    pg_traffic: pgTarget({ db_name: sampleDb }),
    mysql_traffic: mysqlTarget({ db_name: sampleDb }),
    mysql_odbc_traffic: mysqlTarget({ db_name: sampleDb }),
  });

  beforeAll(async () => {
    for (const t of [skipPg ? undefined : pgTarget({ db_name: sampleDb }), skipMysql ? undefined : mysqlTarget({ db_name: sampleDb })]) {
      if (!t) continue;
      await ensureDatabase(t);
      const conn = await createConnector('seed', t).connect(0, 10);
      try {
        await seedSampleData(conn);
      } finally {
        await conn.close();
      }
    }
    sample = await startGateway({
      configPatch: (doc, dir) => {
        sqlitePath = join(dir, 'traffic.db');
        Object.assign(doc, {
          resource_ids: sources.filter((s) => !s.skip).map((s) => s.rid),
          endpoints: [join(ROOT, 'config', 'endpoints', '*.yaml')],
          secure: {
            sqlite_traffic: { db_type: 'sqlite', db_sample: true, db_path: sqlitePath },
            pg_traffic: fileTarget(pgTarget({ db_name: sampleDb })),
            mysql_traffic: fileTarget(mysqlTarget({ db_name: sampleDb })),
            mysql_odbc_traffic: fileTarget(odbcTarget({ db_name: sampleDb })),
          },
        });
      },
    });
  }, 120_000);

  afterAll(async () => {
    expect(await sample?.stop()).toBe(0);
    if (!skipPg) await dropServer(pgTarget({ db_name: sampleDb }));
    if (!skipMysql) await dropServer(mysqlTarget({ db_name: sampleDb }));
  }, 60_000);

  const text = async (path: string) => {
    const res = await fetch(`${sample.url}${path}`);
    return `${res.status} ${await res.text()}`;
  };

  /** The rows the hand-written SQL of the compare route (src/routes/traffic-sql.ts) reads directly from the database. */
  async function direct(rid: string, dialect: Dialect, query: TrafficQuery): Promise<Record<string, unknown>[]> {
    const { sql, params } = selectTraffic(dialect, toFilter(query));
    const conn = await createConnector(rid, targets()[rid]).connect(0, 10);
    try {
      return (await conn.query(sql, params, { timeoutSeconds: 10 })).rows;
    } finally {
      await conn.close();
    }
  }

  const JAN6 = 1736121600;
  const QUERIES: [string, TrafficQuery][] = [
    ['', { limit: 10 }],
    ['?port=443&limit=7', { port: 443, limit: 7 }],
    [`?from=${JAN6 + 5 * 3600}&to=${JAN6 + 15 * 3600}&limit=100`, { from: String(JAN6 + 5 * 3600), to: String(JAN6 + 15 * 3600), limit: 100 }],
    ['?port=22&from=2025-01-06T05:00:00Z&limit=3', { port: 22, from: '2025-01-06T05:00:00Z', limit: 3 }],
    ['?from=2025-01-06T07:00:00%2B02:00&to=2025-01-06%2006:00&limit=50', { from: '2025-01-06T07:00:00+02:00', to: '2025-01-06 06:00', limit: 50 }],
  ];

  it.each(sources)('/$prefix-json, -psv and -dataframe answer the rows the hand-written SQL reads', async ({ prefix, rid, dialect, skip }) => {
    if (skip) return;
    for (const [query, parsed] of QUERIES) {
      const rows = await direct(rid, dialect, parsed);
      expect(rows.length, query).toBeGreaterThan(0);
      expect(JSON.parse((await text(`/${prefix}-json${query}`)).slice(4)), query).toEqual(rows);
      const psv = rows.map((r) => Object.values(r).join('|') + '\n').join('');
      expect(await text(`/${prefix}-psv${query}`), query).toBe(`200 ${psv}`);
      if (prefix !== 'pg') {
        const asText = rows.map((r) => ({ ...r, date_hour: typeof r.date_hour === 'number' ? new Date(r.date_hour * 1000).toISOString().slice(0, 19).replace('T', ' ') : r.date_hour }));
        expect(JSON.parse((await text(`/${prefix}-dataframe${query}`)).slice(4)), query).toEqual(asText);
      }
    }
    expect(await text(`/${prefix}-json?from=2025-01-07&to=2025-01-06`)).toMatch(/^400 .*querystring\/from must not be after querystring\/to/);
    expect(await text(`/${prefix}-json?from=2025-02-30`)).toMatch(/^400 .*querystring\/from is not a valid date-time: 2025-02-30/);
    // The declared columns are what the rows hold, of the declared types.
    const doc = (await (await fetch(`${sample.url}/docs/json`)).json()) as {
      paths: Record<string, { get: { responses: { 200: { content: Record<string, { schema: { items: { properties: Record<string, { type?: string | string[]; anyOf?: { type: string }[] }> } } }> } } } }>;
    };
    const properties = doc.paths[`/${prefix}-json`].get.responses[200].content['application/json'].schema.items.properties;
    const rows = JSON.parse((await text(`/${prefix}-json?limit=50`)).slice(4)) as Record<string, unknown>[];
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(Object.keys(properties));
      for (const [key, schema] of Object.entries(properties)) {
        const types = schema.anyOf ? schema.anyOf.map((s) => s.type) : [schema.type].flat();
        expect(types.includes(Number.isInteger(row[key]) ? 'integer' : typeof row[key]), `${key}=${String(row[key])}`).toBe(true);
      }
    }
  });

  it.each(sources.filter((s) => s.prefix === 'pg' || s.prefix === 'mysql'))('POST /$prefix/traffic inserts all or nothing, counters beyond 2^53 as text', async ({ prefix, skip }) => {
    if (skip) return;
    const row = (date_hour: number, bytes: number | string = 3) => ({ date_hour, port: 9, flows: 1, pkts: 2, bytes });
    const post = async (rows: unknown[]) => {
      const res = await fetch(`${sample.url}/${prefix}/traffic`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rows }) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const t = 1900000800;
    expect(await post([row(t), row(t + 3600, '9223372036854775807')])).toEqual({ status: 201, body: { inserted: 2 } });
    const dup = await post([row(t + 7200), row(t)]);
    expect(dup.status).toBe(409);
    const stored = JSON.parse((await text(`/${prefix}-json?port=9&from=${t}`)).slice(4)) as { bytes: unknown }[];
    expect(stored.map((r) => r.bytes)).toEqual([3, '9223372036854775807']);
    const over = await post([row(t + 10800, '9223372036854775808')]);
    expect(over.status).toBe(400);
    expect(over.body.detail).toBe('body/rows/0/bytes must be <= 9223372036854775807');
    expect((await post([row(t + 10800, -1)])).status).toBe(400);
  });
});

describe('a bad endpoint file in cluster mode', () => {
  it('stops start-up in the primary instead of restarting failing workers', async () => {
    const g = await startGateway({
      noWait: true,
      env: { WT_WORKERS: '2' },
      configPatch: (doc, dir) => {
        Object.assign(doc, sqliteConfig(dir), { endpoints: [join(dir, 'bad.yaml')] });
        writeFileSync(join(dir, 'bad.yaml'), stringify({ endpoints: [{ method: 'GET', path: '/z', resources: ['sqlite_traffic'], statements: [{ sql: 'SELECT :nope' }] }] }));
      },
    });
    try {
      const timer = new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000));
      expect(await Promise.race([g.exited, timer])).toBe(1);
      expect(g.lines.join('\n')).toContain(`${join(g.dir, 'bad.yaml')}: GET /z: statements[0].sql: placeholder :nope has no param`);
    } finally {
      await g.stop();
    }
  }, 30_000);
});

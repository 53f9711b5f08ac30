/**
 * Declared endpoints proven on every database the gateway serves (SQLite, PostgreSQL, MariaDB and
 * MariaDB through ODBC), one real gateway process over real servers:
 * - every result kind (rows, one, stream, exec, transaction) in every format it offers, each answer
 *   compared byte for byte with an encoding written here from the seeded rows;
 * - values shaped like SQL, in every param type and location, stored and read back unchanged, found
 *   by equality and nothing else, the tables still there; where a value cannot be of the type
 *   (an integer, number or boolean), a 400 naming the param before anything runs;
 * - a transaction interrupted at its 3rd of 5 statements (a CHECK, NOT NULL or unique violation, or
 *   the endpoint's timeout) leaves none of its rows, and the same connection serves the next one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase } from '../../src/db/sample-data.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget } from '../helpers/test-data.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = skipMysql || requireOrSkip('MariaDB ODBC', await odbcAvailable());

type Dialect = 'sqlite' | 'postgres' | 'mysql' | 'odbc';
interface Db {
  prefix: string;
  rid: string;
  dialect: Dialect;
  skip: boolean;
}
const DBS: Db[] = [
  { prefix: 'lite', rid: 'lite', dialect: 'sqlite', skip: false },
  { prefix: 'pg', rid: 'pgdb', dialect: 'postgres', skip: skipPg },
  { prefix: 'my', rid: 'mydb', dialect: 'mysql', skip: skipMysql },
  { prefix: 'odbc', rid: 'odbcdb', dialect: 'odbc', skip: skipOdbc },
];

const dbName = uniqueName('wt_proof');
// ODBC reaches the MariaDB server too; its own database keeps its rows apart.
const odbcDbName = `${dbName}_o`;
const work = mkdtempSync(join(tmpdir(), 'wt-proof-'));

interface Item {
  id: number;
  name: string;
  note: string | null;
  qty: number;
}
/** Every character csv must quote, one psv does not, unicode, an empty text beside NULL. */
const SEED: Item[] = [
  { id: 1, name: 'plain', note: null, qty: 1 },
  { id: 2, name: 'a,"b"\r\nc', note: 'x|y', qty: 2 },
  { id: 3, name: 'ünï 🚀 日本', note: '', qty: 3 },
  { id: 4, name: "it's \\ back", note: '"q"', qty: 4 },
  { id: 5, name: 'n5', note: null, qty: 5 },
];

function ddl(dialect: Dialect): string[] {
  const sqlite = dialect === 'sqlite';
  const pg = dialect === 'postgres';
  const text = sqlite || pg ? 'TEXT' : 'VARCHAR(500)';
  const tail = sqlite || pg ? '' : ' DEFAULT CHARSET=utf8mb4';
  return [
    `CREATE TABLE items (id INTEGER PRIMARY KEY, name ${text} NOT NULL, note ${text}, qty INTEGER NOT NULL CHECK (qty > 0))${tail}`,
    `CREATE TABLE vals (id BIGINT PRIMARY KEY, sp ${text}, sq ${text}, sh ${text}, sb ${text}, ip BIGINT, iq BIGINT, ih BIGINT, ib BIGINT, ` +
      `nb ${pg ? 'DOUBLE PRECISION' : sqlite ? 'REAL' : 'DOUBLE'}, bb ${sqlite ? 'INTEGER' : 'BOOLEAN'})${tail}`,
  ];
}

async function seedServer(target: SecureResourceSettings, dialect: Dialect): Promise<void> {
  await ensureDatabase(target);
  const conn = await createConnector('seed', target).connect(0, 10);
  try {
    for (const sql of ddl(dialect)) await conn.query(sql, [], { timeoutSeconds: 30 });
    for (const r of SEED) await conn.query('INSERT INTO items VALUES (?, ?, ?, ?)', [r.id, r.name, r.note, r.qty], { timeoutSeconds: 30 });
  } finally {
    await conn.close();
  }
}

function seedSqlite(path: string): void {
  const db = new Database(path);
  for (const sql of ddl('sqlite')) db.exec(sql);
  const insert = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?)');
  for (const r of SEED) insert.run(r.id, r.name, r.note, r.qty);
  db.close();
}

const INT_BOUNDS = { minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };
const ID = { type: 'integer', minimum: 1, maximum: 1000000 };

function endpointsFor({ prefix, rid, dialect }: Db): unknown[] {
  const base = { resources: [rid] };
  const all = ['json', 'ndjson', 'csv', 'psv'];
  const item = { type: 'object', required: ['id', 'qty'], properties: { id: ID, name: { type: 'string' }, note: { type: 'string' }, qty: { type: 'integer', minimum: -10, maximum: 1000 } } };
  const slowItem = { ...item, properties: { ...item.properties, delay: { type: 'integer', minimum: 0, maximum: 5, default: 0 } } };
  const itemsBody = { in: 'body', type: 'array', required: true, minItems: 1, maxItems: 10, items: item };
  const insertItem = { sql: 'INSERT INTO items (id, name, note, qty) VALUES (:id, :name, :note, :qty)', each: 'items' };
  // A statement that takes :delay seconds before it inserts (SQLite has no sleep).
  const slowInsert =
    dialect === 'postgres'
      ? 'INSERT INTO items (id, name, note, qty) SELECT :id, :name, :note, :qty FROM pg_sleep(:delay)'
      : "INSERT INTO items (id, name, note, qty) SELECT :id, :name, :note, :qty FROM DUAL WHERE SLEEP(:delay) = 0";
  const str = (extra: object = {}) => ({ type: 'string', maxLength: 200, ...extra });
  const int = (extra: object = {}) => ({ type: 'integer', ...INT_BOUNDS, ...extra });
  return [
    {
      method: 'GET',
      path: `/${prefix}/items`,
      ...base,
      params: { min_id: { type: 'integer', minimum: 0, maximum: 1000000, default: 0 } },
      statements: [{ sql: 'SELECT id, name, note, qty FROM items WHERE id >= :min_id ORDER BY id' }],
      result: 'rows',
      formats: all,
    },
    {
      method: 'GET',
      path: `/${prefix}/items/:id`,
      ...base,
      params: { id: { in: 'path', ...ID } },
      statements: [{ sql: 'SELECT id, name, note, qty FROM items WHERE id = :id' }],
      result: 'one',
      formats: all,
    },
    {
      method: 'GET',
      path: `/${prefix}/items-stream`,
      ...base,
      params: { min_id: { type: 'integer', minimum: 0, maximum: 1000000, default: 0 } },
      statements: [{ sql: 'SELECT id, name, note, qty FROM items WHERE id >= :min_id ORDER BY id' }],
      result: 'stream',
      formats: all,
    },
    { method: 'POST', path: `/${prefix}/items`, ...base, params: { items: itemsBody }, statements: [insertItem], result: 'transaction', status: 201, count_as: 'inserted' },
    {
      method: 'DELETE',
      path: `/${prefix}/items`,
      ...base,
      params: { min_id: { type: 'integer', minimum: 6, maximum: 1000000 } },
      statements: [{ sql: 'DELETE FROM items WHERE id >= :min_id' }],
      result: 'exec',
      count_as: 'deleted',
    },
    ...(dialect === 'sqlite'
      ? []
      : [
          {
            method: 'POST',
            path: `/${prefix}/items-slow`,
            ...base,
            params: { items: { ...itemsBody, items: slowItem } },
            statements: [{ sql: slowInsert, each: 'items' }],
            result: 'transaction',
            timeout: 1,
          },
        ]),
    {
      method: 'POST',
      path: `/${prefix}/vals/:sp/:ip`,
      ...base,
      params: {
        sp: { in: 'path', ...str() },
        ip: { in: 'path', ...int() },
        sq: { in: 'query', ...str() },
        iq: { in: 'query', ...int() },
        sh: { in: 'header', header: 'x-s', ...str() },
        ih: { in: 'header', header: 'x-i', ...int() },
        id: { in: 'body', required: true, ...ID },
        sb: { in: 'body', ...str() },
        ib: { in: 'body', ...int() },
        nb: { in: 'body', type: 'number' },
        bb: { in: 'body', type: 'boolean' },
      },
      statements: [{ sql: 'INSERT INTO vals (id, sp, sq, sh, sb, ip, iq, ih, ib, nb, bb) VALUES (:id, :sp, :sq, :sh, :sb, :ip, :iq, :ih, :ib, :nb, :bb)' }],
      result: 'exec',
      status: 201,
    },
    {
      method: 'POST',
      path: `/${prefix}/vals-batch`,
      ...base,
      params: {
        rows: {
          in: 'body',
          type: 'array',
          required: true,
          minItems: 1,
          maxItems: 50,
          items: { type: 'object', required: ['id'], properties: { id: ID, s: str(), i: int(), n: { type: 'number' }, b: { type: 'boolean' } } },
        },
      },
      statements: [{ sql: 'INSERT INTO vals (id, sb, ib, nb, bb) VALUES (:id, :s, :i, :n, :b)', each: 'rows' }],
      result: 'transaction',
      status: 201,
    },
    {
      method: 'GET',
      path: `/${prefix}/vals/:id`,
      ...base,
      params: { id: { in: 'path', ...ID } },
      statements: [{ sql: 'SELECT sp, sq, sh, sb, ip, iq, ih, ib, nb, bb FROM vals WHERE id = :id' }],
      result: 'one',
    },
    {
      method: 'GET',
      path: `/${prefix}/vals-find`,
      ...base,
      params: { s: { required: true, ...str() } },
      statements: [{ sql: 'SELECT id FROM vals WHERE sq = :s OR sb = :s ORDER BY id' }],
      result: 'rows',
    },
    {
      method: 'GET',
      path: `/${prefix}/tables`,
      ...base,
      statements: [{ sql: 'SELECT (SELECT COUNT(*) FROM items) AS items, (SELECT COUNT(*) FROM vals) AS vals' }],
      result: 'one',
    },
  ];
}

let gw: GatewayProcess;

beforeAll(async () => {
  seedSqlite(join(work, 'lite.db'));
  if (!skipPg) await seedServer(pgTarget({ db_name: dbName }), 'postgres');
  if (!skipMysql) await seedServer(mysqlTarget({ db_name: dbName }), 'mysql');
  if (!skipOdbc) await seedServer(mysqlTarget({ db_name: odbcDbName }), 'odbc');
  const live = DBS.filter((d) => !d.skip);
  const file = join(work, 'proofs.yaml');
  writeFileSync(file, stringify({ endpoints: live.flatMap(endpointsFor) }));
  // One connection per resource: a transaction cut short must leave it clean for the next request.
  const pool = { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1 };
  gw = await startGateway({
    config: {
      log_level: 'INFO',
      resource_ids: live.map((d) => d.rid),
      resources: Object.fromEntries(live.map((d) => [d.rid, pool])),
      secure: {
        lite: { db_type: 'sqlite', db_sample: true, db_path: join(work, 'lite.db') },
        ...(skipPg ? {} : { pgdb: fileTarget(pgTarget({ db_name: dbName })) }),
        ...(skipMysql ? {} : { mydb: fileTarget(mysqlTarget({ db_name: dbName })) }),
        ...(skipOdbc ? {} : { odbcdb: fileTarget(odbcTarget({ db_name: odbcDbName })) }),
      },
      endpoints: [file],
      pool_check_interval: 1,
    },
  });
}, 120_000);

afterAll(async () => {
  expect(await gw?.stop()).toBe(0);
  if (!skipPg) await dropDatabase(pgTarget({ db_name: dbName }));
  if (!skipMysql) await dropDatabase(mysqlTarget({ db_name: dbName }));
  if (!skipOdbc) await dropDatabase(mysqlTarget({ db_name: odbcDbName }));
  rmSync(work, { recursive: true, force: true });
}, 60_000);

interface Answer {
  status: number;
  type: string;
  text: string;
}

async function call(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

const json = (a: Answer): unknown => JSON.parse(a.text);

// The formats, encoded here independently of src/endpoints/formats.ts.
const COLUMNS = ['id', 'name', 'note', 'qty'] as const;
const csvField = (v: unknown) => {
  const t = v === null ? '' : String(v);
  return /[",\r\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
};
const ENCODE = {
  json: (rows: Item[]) => JSON.stringify(rows),
  ndjson: (rows: Item[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join(''),
  csv: (rows: Item[]) => `${COLUMNS.join(',')}\r\n${rows.map((r) => `${COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n`).join('')}`,
  psv: (rows: Item[]) => rows.map((r) => `${COLUMNS.map((c) => (r[c] === null ? '' : String(r[c]))).join('|')}\n`).join(''),
};
const TYPES = { json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv', psv: 'text/plain' };
const ACCEPT = { json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv', psv: 'text/plain' };
const FORMATS = ['json', 'ndjson', 'csv', 'psv'] as const;

describe.each(DBS)('$prefix: every result kind in every format', ({ prefix, skip }) => {
  it.skipIf(skip)('rows, stream and one answer the seeded rows in json, ndjson, csv and psv, by ?format= and by Accept', async () => {
    for (const format of FORMATS) {
      for (const path of [`/${prefix}/items`, `/${prefix}/items-stream`]) {
        for (const [query, headers] of [
          [`?format=${format}`, {}],
          ['', { accept: ACCEPT[format] }],
        ] as const) {
          const a = await call('GET', `${path}${query}`, { headers });
          expect(a.status, `${path}${query} ${format}`).toBe(200);
          expect(a.type.startsWith(TYPES[format]), `${path} ${format}: ${a.type}`).toBe(true);
          expect(a.text, `${path}${query} ${format}`).toBe(ENCODE[format](SEED));
        }
        const tail = await call('GET', `${path}?min_id=4&format=${format}`);
        expect(tail.text, `${path} min_id=4 ${format}`).toBe(ENCODE[format](SEED.slice(3)));
      }
      for (const r of SEED) {
        const one = await call('GET', `/${prefix}/items/${r.id}?format=${format}`);
        expect(one.status).toBe(200);
        // `one` answers an object in json; the other formats are the rows' encoding with one row.
        expect(one.text, `one ${r.id} ${format}`).toBe(format === 'json' ? JSON.stringify(r) : ENCODE[format]([r]));
      }
    }
  });

  it.skipIf(skip)('one: 404 naming the endpoint when no row matches, in every format; rows and stream: an empty answer', async () => {
    for (const format of FORMATS) {
      const missing = await call('GET', `/${prefix}/items/999?format=${format}`);
      expect(missing.status).toBe(404);
      expect(missing.type).toMatch(/^application\/json/);
      expect(json(missing)).toMatchObject({ detail: `no row found for GET /${prefix}/items/:id` });
    }
    for (const path of [`/${prefix}/items`, `/${prefix}/items-stream`]) {
      const none = await call('GET', `${path}?min_id=999`);
      expect(none.status).toBe(200);
      expect(none.text).toBe('[]');
      expect((await call('GET', `${path}?min_id=999&format=ndjson`)).text).toBe('');
    }
  });

  it.skipIf(skip)('406 for a format not offered, by ?format= or Accept, also on one and stream; a write refused so writes nothing', async () => {
    for (const path of [`/${prefix}/items`, `/${prefix}/items/1`, `/${prefix}/items-stream`]) {
      for (const a of [await call('GET', `${path}?format=xml`), await call('GET', path, { headers: { accept: 'application/xml' } }), await call('GET', `${path}?format=`)]) {
        expect(a.status, path).toBe(406);
        expect(json(a), path).toMatchObject({
          detail: 'not acceptable: this endpoint answers json (application/json), ndjson (application/x-ndjson), csv (text/csv), psv (text/plain); choose one with ?format= or Accept',
        });
      }
      // q=0 refuses a type: only csv is left.
      expect((await call('GET', path, { headers: { accept: 'application/json;q=0, text/csv' } })).type, path).toMatch(/^text\/csv/);
    }
    // A write answers json only: one asked for csv is refused before its statements run, or done.
    const t = await call('POST', `/${prefix}/items`, { body: { items: [{ id: 90, name: 'n', qty: 1 }] }, headers: { accept: 'text/csv' } });
    expect([201, 406]).toContain(t.status);
    expect(json(await call('DELETE', `/${prefix}/items?min_id=6`))).toEqual({ deleted: t.status === 201 ? 1 : 0 });
  });

  it.skipIf(skip)('exec and transaction: counts of the rows written, all or nothing', async () => {
    const five = [6, 7, 8, 9, 10].map((id) => ({ id, name: `t${id}`, qty: id }));
    const ok = await call('POST', `/${prefix}/items`, { body: { items: five } });
    expect(ok).toMatchObject({ status: 201 });
    expect(json(ok)).toEqual({ inserted: 5 });
    expect((json(await call('GET', `/${prefix}/items?min_id=6`)) as Item[]).map((r) => r.id)).toEqual([6, 7, 8, 9, 10]);
    expect(json(await call('DELETE', `/${prefix}/items?min_id=6`))).toEqual({ deleted: 5 });
    expect(json(await call('DELETE', `/${prefix}/items?min_id=6`))).toEqual({ deleted: 0 });
  });
});

/** Values shaped like SQL, escapes and quoting of every database, comments, placeholders, unicode. */
const STRINGS = [
  "'; DROP TABLE vals; --",
  "'); DROP TABLE items; --",
  '1 OR 1=1',
  "' OR '1'='1",
  '" OR ""="',
  "\\'; DROP TABLE vals; -- ",
  'back\\slash\\',
  '\\',
  "%' OR 1=1 --",
  '%_*?[]',
  '$1 ?? ? :sp :_cid @p @@version',
  '/* c */ -- x',
  '`vals`; SELECT 1',
  'ünï cødé 🚀 日本語 \u2028',
  'line\nbreak\r\ttab',
  '',
];
/** A header value is one line of visible ASCII; HTTP drops its outer spaces. */
const asHeader = (s: string) => (/^[\x20-\x7e]*$/.test(s) ? s.trim() : 'plain');

interface Vals {
  sp: string | null;
  sq: string | null;
  sh: string | null;
  sb: string | null;
  ip: number | null;
  iq: number | null;
  ih: number | null;
  ib: number | null;
  nb: number | null;
  bb: boolean | number | null;
}

describe.each(DBS)('$prefix: values shaped like SQL arrive as data', ({ prefix, skip }) => {
  let nextId = 1;

  /** Stores one value in every location and reads the row back. */
  async function roundTrip(s: string, ints: [number, number, number, number], nb: number, bb: boolean): Promise<{ id: number; back: Vals }> {
    const id = nextId++;
    const sh = asHeader(s);
    const stored = await call('POST', `/${prefix}/vals/${encodeURIComponent(s)}/${ints[0]}?sq=${encodeURIComponent(s)}&iq=${ints[1]}`, {
      headers: { 'x-s': sh, 'x-i': String(ints[2]) },
      body: { id, sb: s, ib: ints[3], nb, bb },
    });
    expect(stored.status, `${JSON.stringify(s)}: ${stored.text}`).toBe(201);
    expect(json(stored)).toEqual({ affected: 1 });
    const back = json(await call('GET', `/${prefix}/vals/${id}`)) as Vals;
    expect({ ...back, bb: back.bb === null ? null : Boolean(back.bb) }, JSON.stringify(s)).toEqual({
      sp: s,
      sq: s,
      sh,
      sb: s,
      ip: ints[0],
      iq: ints[1],
      ih: ints[2],
      ib: ints[3],
      nb,
      bb,
    });
    return { id, back };
  }

  it.skipIf(skip)('strings in the path, query, a header and the body are stored and read back unchanged, and match only themselves', async () => {
    const ids = new Map<string, number>();
    for (const [i, s] of STRINGS.entries()) {
      const { id } = await roundTrip(s, [i, -i - 1, i * 1000, -(i * 1000) - 1], i + 0.5, i % 2 === 0);
      ids.set(s, id);
    }
    // Found by equality: `1 OR 1=1` and `' OR '1'='1` match their own row, not every row.
    for (const [s, id] of ids) {
      const found = await call('GET', `/${prefix}/vals-find?s=${encodeURIComponent(s)}`);
      expect(json(found), JSON.stringify(s)).toEqual([{ id }]);
    }
    expect(json(await call('GET', `/${prefix}/tables`))).toEqual({ items: 5, vals: STRINGS.length });
  });

  it.skipIf(skip)('integers, numbers and booleans at their bounds are stored and read back exactly, also as body array items', async () => {
    await roundTrip('bounds', [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0, -1], -2.5, true);
    await roundTrip('numbers', [1, 2, 3, 4], 3.141592653589793, false);
    await roundTrip('small', [1, 2, 3, 4], 0.1, false);
    await roundTrip('large', [1, 2, 3, 4], 1e300, true);
    const first = nextId;
    const rows = STRINGS.map((s, i) => ({ id: nextId++, s, i: i - 7, n: i / 8, b: i % 3 === 0 }));
    const batch = await call('POST', `/${prefix}/vals-batch`, { body: { rows } });
    expect(batch.status, batch.text).toBe(201);
    expect(json(batch)).toEqual({ affected: rows.length });
    for (const r of rows) {
      const back = json(await call('GET', `/${prefix}/vals/${r.id}`)) as Vals;
      expect({ sb: back.sb, ib: back.ib, nb: back.nb, bb: Boolean(back.bb) }, JSON.stringify(r.s)).toEqual({ sb: r.s, ib: r.i, nb: r.n, bb: r.b });
    }
    expect(nextId - first).toBe(STRINGS.length);
  });

  it.skipIf(skip)('text where an integer, number or boolean belongs is a 400 naming the param, in every location; nothing runs', async () => {
    const before = json(await call('GET', `/${prefix}/tables`));
    const id = 999_000;
    const post = (path: string, query: string, headers: Record<string, string>, body: Record<string, unknown>) =>
      call('POST', `/${prefix}/vals/${path}?${query}`, { headers, body: { id, ...body } });
    const ok = { path: 'p/1', query: 'iq=1', headers: { 'x-i': '1' } };
    for (const bad of ['1 OR 1=1', '1; DROP TABLE vals', "1' OR '1'='1", '0x10', '1e3', '+1', ' 1', '1.5', '9007199254740992', '']) {
      const e = encodeURIComponent(bad);
      for (const [where, send, detail] of [
        ['path', () => post(`p/${e}`, ok.query, ok.headers, {}), /^params\/ip must be/],
        ['query', () => post(ok.path, `iq=${e}`, ok.headers, {}), /^querystring\/iq must be/],
        ['header', () => post(ok.path, ok.query, { 'x-i': bad }, {}), /^headers\/x-i must be/],
        ['body', () => post(ok.path, ok.query, ok.headers, { ib: bad }), /^body\/ib must be integer$/],
      ] as const) {
        // An empty path segment is another route (404); HTTP trims a header value's outer spaces.
        if ((where === 'path' && bad === '') || (where === 'header' && bad !== bad.trim())) continue;
        const a = await send();
        expect(a.status, `${where} ${JSON.stringify(bad)}: ${a.text}`).toBe(400);
        expect((json(a) as { detail: string }).detail, `${where} ${JSON.stringify(bad)}`).toMatch(detail);
      }
    }
    for (const [body, detail] of [
      [{ nb: '1; DROP TABLE vals' }, 'body/nb must be number'],
      [{ nb: '1.5' }, 'body/nb must be number'],
      [{ bb: "true' OR '1'='1" }, 'body/bb must be boolean'],
      [{ bb: 'true' }, 'body/bb must be boolean'],
      [{ bb: 1 }, 'body/bb must be boolean'],
      [{ sb: 1 }, 'body/sb must be string'],
      [{ sb: ['x'] }, 'body/sb must be string'],
      [{ ib: 1.5 }, 'body/ib must be integer'],
      [{ sql: 'DROP TABLE vals' }, 'body must NOT have additional properties: sql'],
    ] as const) {
      const a = await post(ok.path, ok.query, ok.headers, body);
      expect(a.status, detail).toBe(400);
      expect(json(a)).toMatchObject({ detail });
    }
    const item = await call('POST', `/${prefix}/vals-batch`, { body: { rows: [{ id, i: '1 OR 1=1' }] } });
    expect(json(item)).toMatchObject({ detail: 'body/rows/0/i must be integer' });
    expect(json(await call('GET', `/${prefix}/tables`))).toEqual(before);
    expect((await call('GET', `/${prefix}/vals/${id}`)).status).toBe(404);
  });

  // Known: the odbc package binds text up to its first NUL, so through ODBC "nul\0inside" is stored as
  // "nul", silently. Marked as failing until src/db/odbc.ts refuses such text (a 400) or binds its length.
  const nulTest = skip ? it.skip : prefix === 'odbc' ? it.fails : it;
  nulTest('NUL inside a string is stored as is where the database allows it, and refused with a 400 by PostgreSQL', async () => {
    const s = 'nul\u0000inside';
    const id = nextId++;
    const a = await call('POST', `/${prefix}/vals/p/1?sq=${encodeURIComponent(s)}`, { body: { id, sb: s } });
    if (prefix === 'pg') {
      // PostgreSQL text cannot hold NUL (invalid byte sequence 0x00): the client's value, so a 400.
      expect(a.status, a.text).toBe(400);
      expect((json(a) as { detail: string }).detail).toMatch(/0x00/);
      expect((await call('GET', `/${prefix}/vals/${id}`)).status).toBe(404);
      return;
    }
    expect(a.status, a.text).toBe(201);
    expect(json(await call('GET', `/${prefix}/vals/${id}`))).toMatchObject({ sq: s, sb: s });
  });
});

describe.each(DBS)('$prefix: a transaction interrupted at its 3rd of 5 statements leaves no row', ({ prefix, dialect, skip }) => {
  const five = (third: Record<string, unknown>) =>
    [11, 12, 13, 14, 15].map((id, i) => (i === 2 ? { id, qty: 1, name: `i${id}`, ...third } : { id, name: `i${id}`, qty: 1 }));
  const rowsFrom11 = async () => json(await call('GET', `/${prefix}/items?min_id=11`));

  it.skipIf(skip)('a CHECK, NOT NULL or unique violation: 400 or 409, none of the five written; the connection serves the next transaction', async () => {
    for (const [third, status, detail] of [
      [{ qty: 0 }, 400, /^constraint violated for resource /],
      [{ name: undefined }, 400, /^constraint violated for resource /],
      [{ id: 1 }, 409, /^duplicate row for resource /],
    ] as const) {
      const a = await call('POST', `/${prefix}/items`, { body: { items: five(third) } });
      expect(a.status, `${JSON.stringify(third)}: ${a.text}`).toBe(status);
      expect((json(a) as { detail: string }).detail).toMatch(detail);
      expect(await rowsFrom11(), JSON.stringify(third)).toEqual([]);
    }
    // One connection per resource: it was rolled back, not left inside the failed transaction.
    const ok = await call('POST', `/${prefix}/items`, { body: { items: five({}) } });
    expect(json(ok)).toEqual({ inserted: 5 });
    expect(json(await call('DELETE', `/${prefix}/items?min_id=6`))).toEqual({ deleted: 5 });
  });

  it.skipIf(skip || dialect === 'sqlite')(
    "the endpoint's timeout stopping the 3rd statement: 504 after about 1 s, none of the five written, also once the statement would have ended",
    async () => {
      const started = Date.now();
      const a = await call('POST', `/${prefix}/items-slow`, { body: { items: five({ delay: 3 }) } });
      expect(a.status, a.text).toBe(504);
      expect(Date.now() - started).toBeLessThan(2800);
      expect(await rowsFrom11()).toEqual([]);
      // Past the 3 s the stopped statement would have slept: still nothing (it was stopped, not left to commit).
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 3500 - Date.now())));
      expect(await rowsFrom11()).toEqual([]);
      const ok = await call('POST', `/${prefix}/items-slow`, { body: { items: five({}) } });
      expect(json(ok)).toEqual({ affected: 5 });
      expect(json(await call('DELETE', `/${prefix}/items?min_id=6`))).toEqual({ deleted: 5 });
    },
    20_000,
  );
});

/**
 * Row types read from the database at start-up: a real gateway process serves endpoints without
 * `columns` on SQLite, PostgreSQL, MariaDB and MariaDB through ODBC, and its OpenAPI document shows
 * each column with the JSON type that driver really gives (64-bit integers a number or their exact
 * text, DECIMAL text from mysql2 and a number from ODBC, NOT NULL columns without null). The real
 * rows, NULLs and integers beyond 2^53 among them, are held to the published schema.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AjvCompiler from '@fastify/ajv-compiler';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = skipMysql || requireOrSkip('MariaDB ODBC', await odbcAvailable());

const dbName = uniqueName('wt_rowtypes');
const work = mkdtempSync(join(tmpdir(), 'wt-rowtypes-'));
const pg = pgTarget({ db_name: dbName });
const my = mysqlTarget({ db_name: dbName });
const odbc = odbcTarget({ db_name: dbName });
const lite = { db_type: 'sqlite', db_sample: true, db_path: join(work, 'typed.db') } as SecureResourceSettings;

/** Beyond 2^53: the drivers give its exact text. */
const BIG = '9007199254740993';

const DDL: Record<string, string> = {
  postgres:
    'CREATE TABLE typed (id integer PRIMARY KEY, big bigint NOT NULL, price double precision, label text NOT NULL, note varchar(20), ' +
    'amount numeric(20,3), flag boolean, at timestamp, doc jsonb, tags text[])',
  mysql:
    'CREATE TABLE typed (id INT PRIMARY KEY, big BIGINT NOT NULL, price DOUBLE, label VARCHAR(20) NOT NULL, note TEXT, ' +
    'amount DECIMAL(20,3), flag BOOLEAN, at DATETIME, doc JSON)',
};
const ROWS: Record<string, string[]> = {
  postgres: [
    `INSERT INTO typed VALUES (1, ${BIG}, 1.5, 'one', 'n', 12.5, true, '2024-01-02 03:04:05', '{"a": [1]}', '{x,y}')`,
    "INSERT INTO typed (id, big, label) VALUES (2, 7, 'two')",
  ],
  mysql: [`INSERT INTO typed VALUES (1, ${BIG}, 1.5, 'one', 'n', 12.5, true, '2024-01-02 03:04:05', '{"a": [1]}')`, "INSERT INTO typed (id, big, label) VALUES (2, 7, 'two')"],
};

/** The columns each endpoint selects, and the type its rows are documented with (null where the column allows it). */
const EXPECTED: Record<string, { sql: string; columns: Record<string, unknown> }> = {
  lite: {
    sql: 'SELECT id, big, price, label, note, amount, length(label) AS len FROM typed ORDER BY id',
    columns: {
      id: ['integer', 'string'],
      big: ['integer', 'string'],
      price: ['number', 'null'],
      label: 'string',
      note: ['string', 'null'],
      amount: ['number', 'string', 'null'],
      len: undefined, // an expression: SQLite knows no type before the query runs
    },
  },
  pg: {
    sql: 'SELECT id, big, price, label, note, amount, flag, at, doc, tags, count(*) OVER () AS n FROM typed ORDER BY id',
    columns: {
      id: 'integer',
      big: ['integer', 'string'],
      price: ['number', 'null'],
      label: 'string',
      note: ['string', 'null'],
      amount: ['string', 'null'],
      flag: ['boolean', 'null'],
      at: ['string', 'null'],
      doc: undefined,
      tags: ['array', 'null'],
      n: ['integer', 'string', 'null'],
    },
  },
  my: {
    sql: 'SELECT id, big, price, label, note, amount, flag, at, doc FROM typed ORDER BY id',
    columns: {
      id: 'integer',
      big: ['integer', 'string'],
      price: ['number', 'null'],
      label: 'string',
      note: ['string', 'null'],
      amount: ['string', 'null'],
      flag: ['integer', 'null'],
      at: ['string', 'null'],
      doc: undefined,
    },
  },
  odbc: {
    sql: 'SELECT id, big, price, label, note, amount, flag, at, doc FROM typed ORDER BY id',
    columns: {
      id: 'integer',
      big: ['integer', 'string'],
      price: ['number', 'null'],
      label: 'string',
      note: ['string', 'null'],
      amount: ['number', 'null'],
      flag: ['integer', 'null'],
      at: ['string', 'null'],
      doc: ['string', 'null'],
    },
  },
};

/**
 * A NOT NULL column on the outer side of a LEFT JOIN is NULL where nothing matched (row 2 here).
 * MariaDB computes the result's nullability itself; for PostgreSQL and SQLite, which describe a
 * column by its table, every column of a statement with an outer join is documented nullable.
 */
const JOINED = 'SELECT a.id, b.label FROM typed a LEFT JOIN typed b ON b.id = a.id + 1 ORDER BY a.id';
const JOINED_ID: Record<string, unknown> = { lite: ['integer', 'string', 'null'], pg: ['integer', 'null'], my: 'integer', odbc: 'integer' };

const dbs = [
  { rid: 'lite', skip: false, target: lite },
  { rid: 'pg', skip: skipPg, target: pg },
  { rid: 'my', skip: skipMysql, target: my },
  { rid: 'odbc', skip: skipOdbc, target: odbc },
];
const served = dbs.filter((d) => !d.skip);

let gw: GatewayProcess;

beforeAll(async () => {
  const db = new Database(lite.db_path);
  db.exec('CREATE TABLE typed (id INTEGER PRIMARY KEY, big INTEGER NOT NULL, price REAL, label TEXT NOT NULL, note TEXT, amount NUMERIC)');
  db.exec(`INSERT INTO typed VALUES (1, ${BIG}, 1.5, 'one', 'n', 12.5)`);
  db.exec("INSERT INTO typed (id, big, label) VALUES (2, 7, 'two')");
  db.close();
  for (const [target, dialect] of [...(skipPg ? [] : [[pg, 'postgres']]), ...(skipMysql ? [] : [[my, 'mysql']])] as [SecureResourceSettings, string][]) {
    await seedSampleDatabase(target, [DDL[dialect]]);
    const conn = await createConnector('seed', target).connect(0, 10);
    try {
      for (const sql of ROWS[dialect]) await conn.query(sql, [], { timeoutSeconds: 30 });
    } finally {
      await conn.close();
    }
  }
  const endpoints = served.flatMap((d) => [
    { method: 'GET', path: `/${d.rid}/typed`, resources: [d.rid], statements: [{ sql: EXPECTED[d.rid].sql }], result: 'rows' },
    { method: 'GET', path: `/${d.rid}/typed-stream`, resources: [d.rid], statements: [{ sql: EXPECTED[d.rid].sql }], result: 'stream', formats: ['json', 'csv'] },
    { method: 'GET', path: `/${d.rid}/joined`, resources: [d.rid], statements: [{ sql: JOINED }], result: 'rows' },
  ]);
  const epFile = join(work, 'typed.yaml');
  writeFileSync(epFile, stringify({ endpoints }));
  const rids = served.map((d) => d.rid);
  gw = await startGateway({
    config: {
      log_level: 'INFO',
      resource_ids: rids,
      resources: Object.fromEntries(rids.map((r) => [r, { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2, db_conn_timeout: 5 }])),
      secure: Object.fromEntries(served.map((d) => [d.rid, fileTarget(d.target)])),
      endpoints: [epFile],
    },
  });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  if (!skipPg) await dropDatabase(pg);
  if (!skipMysql) await dropDatabase(my);
  rmSync(work, { recursive: true, force: true });
});

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: { type: string; items?: { properties?: Record<string, Record<string, unknown>> } } }> }>;
}

/** Fastify's validator compiler (ajv 8, which reads OpenAPI's `nullable`), without coercion. */
const compile = AjvCompiler()({}, { customOptions: { coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: true, strict: false } });

/**
 * The published type of a column as a JSON-schema type: the document writes a union as anyOf (null
 * as an `enum: [null]` branch) and a nullable single type with OpenAPI 3.0's `nullable: true`.
 */
function typeOf(schema: Record<string, unknown>): unknown {
  if (Array.isArray(schema.anyOf)) {
    return (schema.anyOf as Record<string, unknown>[]).map((b) => (Array.isArray(b.enum) && b.enum.length === 1 && b.enum[0] === null ? 'null' : b.type));
  }
  const t = schema.type as string | undefined;
  return schema.nullable === true ? [t, 'null'] : t;
}

describe('row types read from the database at start-up', () => {
  for (const d of dbs) {
    it.skipIf(d.skip)(`/docs/json shows the real column types on ${d.rid}, and the rows conform`, async () => {
      const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as { paths: Record<string, { get: Operation }> };
      for (const path of [`/${d.rid}/typed`, `/${d.rid}/typed-stream`]) {
        const schema = doc.paths[path].get.responses['200'].content?.['application/json'].schema;
        expect(schema?.type).toBe('array');
        const properties = schema?.items?.properties ?? {};
        expect(Object.keys(properties), path).toEqual(Object.keys(EXPECTED[d.rid].columns));
        for (const [name, type] of Object.entries(EXPECTED[d.rid].columns)) expect(typeOf(properties[name]), `${path} ${name}`).toEqual(type);

        const res = await fetch(`${gw.url}${path}`);
        expect(res.status).toBe(200);
        const rows = (await res.json()) as Record<string, unknown>[];
        expect(rows).toHaveLength(2);
        expect(String(rows[0].big)).toBe(BIG);
        expect(rows[1].note).toBeNull();
        const validate = compile({ schema: schema } as never);
        expect(validate(rows), JSON.stringify(validate.errors)).toBe(true);
      }
    });

    it.skipIf(d.skip)(`a NOT NULL column an outer join can leave empty is documented nullable on ${d.rid}`, async () => {
      const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as { paths: Record<string, { get: Operation }> };
      const schema = doc.paths[`/${d.rid}/joined`].get.responses['200'].content?.['application/json'].schema;
      const properties = schema?.items?.properties ?? {};
      expect(typeOf(properties.id)).toEqual(JOINED_ID[d.rid]);
      expect(typeOf(properties.label)).toEqual(['string', 'null']);
      const rows = (await (await fetch(`${gw.url}/${d.rid}/joined`)).json()) as Record<string, unknown>[];
      expect(rows.map((r) => r.label)).toEqual(['two', null]);
      const validate = compile({ schema: schema } as never);
      expect(validate(rows), JSON.stringify(validate.errors)).toBe(true);
    });
  }

  it('says at start-up how many row types it read', async () => {
    const record = await gw.waitForLine((l) => l.fields.tag === 'endpoints-checked');
    const n = served.length * 3;
    expect(record.fields.msg).toContain(`${n} endpoints, ${n} statements checked on their databases, row types read for ${n}`);
  });
});

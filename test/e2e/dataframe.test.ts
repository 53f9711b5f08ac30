/**
 * The original's -dataframe routes on a real gateway process over real SQLite and MariaDB (native
 * and ODBC): the rows of the matching -json route with date_hour as 'YYYY-MM-DD HH:MM:SS' text,
 * the same query parameters, and an OpenAPI schema that the real rows hold to.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase, seedSampleData } from '../../src/db/sample-data.js';
import { insertTraffic, type Dialect } from '../../src/routes/traffic-sql.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = skipMysql || requireOrSkip('MariaDB ODBC', await odbcAvailable());

const DATE_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

type Row = Record<string, unknown>;
type PropertySchema = { type?: string; pattern?: string; anyOf?: { type: string }[] };
interface Operation {
  parameters?: { name: string; in: string; schema: unknown; required?: boolean }[];
  responses: Record<string, { content?: { 'application/json'?: { schema: { items?: { properties: Record<string, PropertySchema> } } } } }>;
}

async function openApi(gw: GatewayProcess): Promise<Record<string, { get: Operation }>> {
  const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as { paths: Record<string, { get: Operation }> };
  return doc.paths;
}

/** Every row has exactly the documented properties, each of a documented type (and pattern). */
function expectDocumentedRows(op: Operation, rows: Row[], what: string): void {
  const properties = op.responses['200'].content!['application/json']!.schema.items!.properties;
  expect(rows.length, what).toBeGreaterThan(0);
  for (const row of rows) {
    expect(Object.keys(row), what).toEqual(Object.keys(properties));
    for (const [key, schema] of Object.entries(properties)) {
      const v = row[key];
      const types = schema.anyOf ? schema.anyOf.map((s) => s.type) : [schema.type];
      const ok = types.some((t) => (t === 'integer' ? Number.isInteger(v) : t === 'string' ? typeof v === 'string' : false));
      expect(ok, `${what} ${key}=${String(v)}`).toBe(true);
      if (schema.pattern && typeof v === 'string') expect(v, `${what} ${key}`).toMatch(new RegExp(schema.pattern));
    }
  }
}

async function getJson(gw: GatewayProcess, path: string): Promise<Row[]> {
  const res = await fetch(`${gw.url}${path}`);
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  return (await res.json()) as Row[];
}

async function withConnection(target: SecureResourceSettings, work: (conn: Awaited<ReturnType<ReturnType<typeof createConnector>['connect']>>) => Promise<void>): Promise<void> {
  const conn = await createConnector('test', target).connect(0, 10);
  try {
    await work(conn);
  } finally {
    await conn.close();
  }
}

describe('dataframe routes', () => {
  const db = uniqueName('wt_df');
  const prefixes = ['sqlite', ...(skipMysql ? [] : ['mysql']), ...(skipOdbc ? [] : ['mysql-odbc'])];
  let gw: GatewayProcess;

  beforeAll(async () => {
    if (!skipMysql) {
      await ensureDatabase(mysqlTarget({ db_name: db }));
      await withConnection(mysqlTarget({ db_name: db }), async (conn) => void (await seedSampleData(conn)));
    }
    const ids = ['sqlite_traffic', ...(skipMysql ? [] : ['mysql_traffic']), ...(skipOdbc ? [] : ['mysql_odbc_traffic'])];
    gw = await startGateway({
      configPatch: (cfg, dir) => {
        Object.assign(cfg, sqliteConfig(dir), {
          resource_ids: ids,
          resources: Object.fromEntries(ids.map((id) => [id, { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 }])),
        });
        const secure = cfg.secure as Record<string, unknown>;
        const { db_password: _a, ...mysql } = mysqlTarget({ db_name: db });
        const { db_password: _b, ...odbc } = odbcTarget({ db_name: db });
        if (!skipMysql) secure.mysql_traffic = mysql;
        if (!skipOdbc) secure.mysql_odbc_traffic = odbc;
      },
    });
  }, 120_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    if (!skipMysql) await withConnection(mysqlTarget({ db_name: '' }), async (conn) => void (await conn.query(`DROP DATABASE IF EXISTS ${db}`, [], { timeoutSeconds: 30 })));
  });

  it('answers the rows of the -json route with date_hour as text, on every database', async () => {
    const q = 'limit=50&port=443&from=2025-01-08T00:00:00Z';
    const paths = await openApi(gw);
    for (const p of prefixes) {
      const frame = await getJson(gw, `/${p}-dataframe?${q}`);
      const json = await getJson(gw, `/${p}-json?${q}`);
      expect(frame, p).toHaveLength(50);
      expect(frame[0].date_hour, p).toBe('2025-01-08 00:00:00');
      for (const row of frame) expect(row.date_hour, p).toMatch(DATE_TEXT);
      // Same rows, same order; only SQLite's epoch seconds become text.
      const asText = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString().slice(0, 19).replace('T', ' ') : v);
      expect(frame, p).toEqual(json.map((r) => ({ ...r, date_hour: asText(r.date_hour) })));
      expectDocumentedRows(paths[`/${p}-dataframe`].get, frame, `/${p}-dataframe`);
    }
  });

  it('takes the -json route parameters and refuses bad ones with a 400 naming them', async () => {
    const paths = await openApi(gw);
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(prefixes.map((p) => `/${p}-dataframe`)));
    expect(Object.keys(paths)).not.toContain('/pg-dataframe');
    for (const p of prefixes) {
      const params = (path: string) => (paths[path].get.parameters ?? []).map((x) => ({ name: x.name, in: x.in, schema: x.schema }));
      expect(params(`/${p}-dataframe`), p).toEqual(params(`/${p}-json`));
      expect(params(`/${p}-dataframe`).map((x) => x.name).sort(), p).toEqual(['format', 'from', 'limit', 'port', 'to']);

      const rows = await getJson(gw, `/${p}-dataframe?port=22&from=2025-01-07T10:00:00Z&to=2025-01-07T12:00:00Z`);
      expect(rows.map((r) => [r.date_hour, r.port]), p).toEqual([
        ['2025-01-07 10:00:00', 22],
        ['2025-01-07 11:00:00', 22],
        ['2025-01-07 12:00:00', 22],
      ]);
      expect(await getJson(gw, `/${p}-dataframe`), p).toHaveLength(10);

      for (const [query, names] of [['limit=0', 'limit'], ['limit=10001', 'limit'], ['port=abc', 'port'], ['from=yesterday', 'from'], ['color=red', 'color']] as const) {
        const res = await fetch(`${gw.url}/${p}-dataframe?${query}`);
        expect(res.status, `${p} ${query}`).toBe(400);
        const body = (await res.json()) as { detail: string; cid: string };
        expect(body.detail, `${p} ${query}`).toContain(names);
        expect(body.cid).toBe(res.headers.get('x-correlation-id'));
      }
    }
  });

  it('keeps counters beyond 2^53 exact', async () => {
    const big = '9007199254740993'; // 2^53 + 1: as a JSON number it would read 9007199254740992
    const hour = Date.UTC(2031, 0, 1) / 1000;
    const targets: [Dialect, SecureResourceSettings][] = [
      ['sqlite', { db_type: 'sqlite', db_sample: true, db_path: join(gw.dir, 'traffic.db') } as SecureResourceSettings],
      ...(skipMysql ? [] : [['mysql', mysqlTarget({ db_name: db })] as [Dialect, SecureResourceSettings]]),
    ];
    for (const [dialect, target] of targets) {
      await withConnection(target, async (conn) => {
        const { sql, params } = insertTraffic(dialect, { date_hour: hour, port: 9999, flows: 1, pkts: 2, bytes: 0 });
        params[4] = BigInt(big);
        await conn.query(sql, params, { timeoutSeconds: 10 });
      });
    }
    for (const p of prefixes) {
      const text = await (await fetch(`${gw.url}/${p}-dataframe?port=9999&from=${hour}`)).text();
      expect(text, p).toContain(`"bytes":"${big}"`);
      expect(JSON.parse(text), p).toEqual([{ date_hour: '2031-01-01 00:00:00', port: 9999, flows: 1, pkts: 2, bytes: big }]);
    }
  });

  it('counts the routes in the request metrics', async () => {
    for (const p of prefixes) await getJson(gw, `/${p}-dataframe?limit=1`);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    for (const p of prefixes) expect(text, p).toMatch(new RegExp(`^wt_requests_total\\{endpoint="/${p}-dataframe"\\} [1-9]`, 'm'));
  });
});

describe('dataframe routes of resources this server does not enable', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway();
  }, 60_000);
  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
  });

  it('answers 404 naming the resource, and PostgreSQL, which the original had none for, has no route', async () => {
    for (const [path, rid] of [['/mysql-dataframe', 'mysql_traffic'], ['/mysql-odbc-dataframe', 'mysql_odbc_traffic']]) {
      const res = await fetch(`${gw.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { detail: string }).detail, path).toBe(`resource ${rid} is not enabled on this server`);
    }
    // Not a route of a disabled resource: no route at all.
    const pg = await fetch(`${gw.url}/pg-dataframe`);
    expect(pg.status).toBe(404);
    expect(((await pg.json()) as { detail: string }).detail).toBe('no route for GET /pg-dataframe');
    expect(await getJson(gw, '/sqlite-dataframe?limit=3')).toHaveLength(3);
  });
});

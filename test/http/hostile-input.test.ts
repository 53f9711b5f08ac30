/**
 * Hostile input against a real gateway process over real SQLite, PostgreSQL and MariaDB: every
 * numeric query parameter of every route is a finite safe integer in strict decimal within its
 * bounds, dates are real dates in the range every database stores, POST bodies are never coerced,
 * and what the parsers refuse gets the right status naming what is wrong.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { toAppError } from '../../src/query/query.js';
import { BadRequestError } from '../../src/errors.js';
import { mysqlAvailable, mysqlTarget, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';
import { DISABLED_SAMPLE_TARGETS } from '../helpers/sample-endpoints.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());

/** The data routes every full gateway below serves (the OpenAPI walk must find at least these). */
const GET_ROUTES = ['/sqlite-json', '/sqlite-psv', '/pg-json', '/pg-psv', '/mysql-json', '/mysql-psv', '/traffic/compare'];

/** Not a strict decimal integer, or not a finite one: each must be refused, naming the parameter. */
const BAD_INTEGERS = ['Infinity', '-Infinity', '1e400', 'NaN', '0x16', '0b10', '0o7', '1e3', '+22', ' 22', '22 ', '022', '22.0', '1.5', '', '99999999999999999999', 'twenty'];

/** Not a real instant between 1970 and 9999 in a form the routes read. */
const BAD_TIMES = [
  '2025-02-30', // not a day of February: must not roll over to March 2
  '2025-02-29', // 2025 is not a leap year
  '2025-04-31',
  '2025-01-06T24:00',
  '2025-01-06T23:60',
  '2025-01-06T23:00:60Z',
  '2025-01-06T23:00:00+24:00',
  '9999-12-31T23:00:00-05:00', // year 10000 in UTC: beyond what MySQL's DATETIME stores
  '253402300800', // epoch seconds of 10000-01-01
  '01736121600', // leading zero
  '1969-12-31',
];

interface Reply {
  status: number;
  body: string;
}

async function get(base: string, path: string): Promise<Reply> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, body: await res.text() };
}

async function post(base: string, path: string, body: string, contentType = 'application/json'): Promise<Reply> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, body: await res.text() };
}

function detail(r: Reply): string {
  return (JSON.parse(r.body) as { detail: string }).detail;
}

/** Every (method, path, integer query parameter) the gateway documents. */
async function documentedIntegerParams(base: string): Promise<{ path: string; name: string }[]> {
  const doc = (await (await fetch(`${base}/docs/json`)).json()) as {
    paths: Record<string, Record<string, { parameters?: { in: string; name: string; schema: { type?: string } }[] }>>;
  };
  const out: { path: string; name: string }[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const op of Object.values(methods)) {
      for (const p of op.parameters ?? []) {
        if (p.in === 'query' && (p.schema.type === 'integer' || p.schema.type === 'number')) out.push({ path, name: p.name });
      }
    }
  }
  return out;
}

describe.skipIf(skipPg || skipMysql)('hostile input on every data route of every database', () => {
  const db = uniqueName('wt_hostile');
  let gw: GatewayProcess;

  beforeAll(async () => {
    await Promise.all([seedSampleDatabase(pgTarget({ db_name: db })), seedSampleDatabase(mysqlTarget({ db_name: db }))]);
    const ids = ['sqlite_traffic', 'pg_traffic', 'mysql_traffic'];
    gw = await startGateway({
      config: {
        resource_ids: ids,
        resources: Object.fromEntries(ids.map((id) => [id, { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 }])),
        secure: {
          sqlite_traffic: { db_type: 'sqlite', db_path: 'PLACEHOLDER', db_sample: true },
          pg_traffic: fileTarget(pgTarget({ db_name: db })),
          mysql_traffic: fileTarget(mysqlTarget({ db_name: db })),
          mysql_odbc_traffic: DISABLED_SAMPLE_TARGETS.mysql_odbc_traffic,
        },
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

  it('refuses every numeric query parameter that is not a strict, finite, in-range decimal integer, naming it', async () => {
    const params = (await documentedIntegerParams(gw.url)).filter((p) => !p.path.startsWith('/mysql-odbc'));
    for (const path of GET_ROUTES) for (const name of ['port', 'limit']) expect(params).toContainEqual({ path, name });
    const failures: string[] = [];
    for (const { path, name } of params) {
      const ok = await get(gw.url, `${path}?${name}=${name === 'port' ? 22 : 3}`);
      if (ok.status !== 200) failures.push(`${path}?${name} valid value: ${ok.status} ${ok.body}`);
      const bad = [...BAD_INTEGERS.map((v) => `${name}=${encodeURIComponent(v)}`), `${name}=1&${name}=2`, `${name}=-1`, `${name}=0`, `${name}=10000001`];
      for (const q of bad) {
        const r = await get(gw.url, `${path}?${q}`);
        if (r.status !== 400 || !detail(r).includes(`querystring/${name} `)) failures.push(`${path}?${q}: ${r.status} ${r.body.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('refuses dates that do not exist or that a database cannot store, naming the parameter', async () => {
    const failures: string[] = [];
    for (const path of GET_ROUTES) {
      for (const name of ['from', 'to']) {
        for (const v of BAD_TIMES) {
          const r = await get(gw.url, `${path}?${name}=${encodeURIComponent(v)}`);
          if (r.status !== 400 || !detail(r).includes(`querystring/${name} `)) failures.push(`${path}?${name}=${v}: ${r.status} ${r.body.slice(0, 200)}`);
        }
      }
      // The edges of the range, and a real leap day, are served.
      for (const q of ['from=2024-02-29', 'to=9999-12-31T23:00:00Z', 'to=253402297200', 'from=1970-01-01T00:00:00Z', 'from=2025-01-06T05:00:00%2B05:00']) {
        const r = await get(gw.url, `${path}?${q}&limit=1`);
        if (r.status !== 200) failures.push(`${path}?${q}: ${r.status} ${r.body.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
    // Read right, not only accepted: 05:00 at +05:00 is midnight UTC, the first sample hour.
    const first = JSON.parse((await get(gw.url, '/sqlite-json?from=2025-01-06T05:00:00%2B05:00&limit=1')).body) as { date_hour: number }[];
    expect(first[0].date_hour).toBe(Date.UTC(2025, 0, 6) / 1000);
  }, 60_000);

  for (const prefix of ['pg', 'mysql']) {
    it(`never coerces a POST body on ${prefix}: a wrong type is a 400 naming the field, and nothing is written`, async () => {
      const port = 4242;
      const hour = Date.UTC(2032, 0, 1) / 1000;
      const row = { date_hour: hour, port, flows: 1, pkts: 2, bytes: 3 };
      // [field named in the detail, raw JSON of the row]
      const cases: [string, string][] = [];
      const bad: Record<string, unknown[]> = {
        flows: [null, true, false, [5], {}, 1.5, -1, '', ' 5', '5.0', '+5', '05', '0x10', '1e3'],
        pkts: [null, [2]],
        bytes: [null, '9223372036854775808', '99999999999999999999', '18446744073709551615'],
        date_hour: [null, false, true, String(hour), [hour], hour + 1, hour + 1800, -3600, 253402300800],
        port: [null, true, '22', [22], 0, 65536, 22.5],
      };
      for (const [field, values] of Object.entries(bad)) for (const v of values) cases.push([field, JSON.stringify({ ...row, [field]: v })]);
      // Not expressible through JSON.stringify: a number JSON.parse reads as Infinity.
      cases.push(['flows', JSON.stringify(row).replace('"flows":1', '"flows":1e400')]);
      cases.push(['port', JSON.stringify(row).replace(`"port":${port}`, '"port":-1e400')]);
      const failures: string[] = [];
      for (const [field, rowJson] of cases) {
        const r = await post(gw.url, `/${prefix}/traffic`, `{"rows":[${rowJson}]}`);
        if (r.status !== 400 || !detail(r).includes(`body/rows/0/${field}`)) failures.push(`${rowJson}: ${r.status} ${r.body.slice(0, 200)}`);
      }
      for (const body of [`{"rows":${JSON.stringify(row)}}`, '{"rows":[]}', '{"rows":null}', '[]', '{}']) {
        const r = await post(gw.url, `/${prefix}/traffic`, body);
        if (r.status !== 400 || !/body(\/rows)? /.test(detail(r))) failures.push(`${body}: ${r.status} ${r.body.slice(0, 200)}`);
      }
      expect(failures).toEqual([]);
      expect(JSON.parse((await get(gw.url, `/${prefix}-json?port=${port}&limit=100`)).body)).toEqual([]);
    }, 60_000);

    it(`takes counters up to 2^63 - 1 as decimal text on ${prefix} and keeps them exact`, async () => {
      const port = 4343;
      const hour = Date.UTC(2033, 0, 1) / 1000 + (prefix === 'pg' ? 0 : 3600);
      const max = '9223372036854775807';
      const rows = [
        { date_hour: hour, port, flows: max, pkts: '1000000000000000000', bytes: Number.MAX_SAFE_INTEGER },
        { date_hour: hour + 3600, port, flows: '0', pkts: 0, bytes: '9007199254740993' },
      ];
      const r = await post(gw.url, `/${prefix}/traffic`, JSON.stringify({ rows }));
      expect(r.status, r.body).toBe(201);
      const back = JSON.parse((await get(gw.url, `/${prefix}-json?port=${port}`)).body) as Record<string, unknown>[];
      expect(back.map(({ flows, pkts, bytes }) => ({ flows, pkts, bytes }))).toEqual([
        { flows: max, pkts: '1000000000000000000', bytes: Number.MAX_SAFE_INTEGER },
        { flows: 0, pkts: 0, bytes: '9007199254740993' },
      ]);
    });

    it(`answers 415 to a body that is not JSON, and names a forbidden key, on ${prefix}`, async () => {
      const row = { date_hour: Date.UTC(2034, 0, 1) / 1000, port: 4444, flows: 1, pkts: 2, bytes: 3 };
      const json = JSON.stringify({ rows: [row] });
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded']) {
        const r = await post(gw.url, `/${prefix}/traffic`, json, type);
        expect(r.status, `${type}: ${r.body}`).toBe(415);
        expect(detail(r)).toMatch(/Unsupported Media Type/);
      }
      const poisoned: [string, string][] = [
        ['__proto__', `{"rows":[${JSON.stringify(row)}],"__proto__":{"polluted":1}}`],
        ['__proto__', `{"rows":[${JSON.stringify(row).replace('{', '{"__proto__":{"x":1},')}]}`],
        ['__proto__', `{"rows":[${JSON.stringify(row)}],"\\u005f_proto__":{}}`],
        ['constructor.prototype', `{"rows":[${JSON.stringify(row)}],"constructor":{"prototype":{"polluted":1}}}`],
      ];
      for (const [key, body] of poisoned) {
        const r = await post(gw.url, `/${prefix}/traffic`, body);
        expect(r.status, body).toBe(400);
        expect(detail(r), body).toContain(key);
        expect(detail(r), body).not.toMatch(/not valid JSON/);
      }
      // Broken JSON is still told apart from a forbidden key.
      const broken = await post(gw.url, `/${prefix}/traffic`, '{"rows": [');
      expect(broken.status).toBe(400);
      expect(detail(broken)).toMatch(/not valid JSON/);
      expect(JSON.parse((await get(gw.url, `/${prefix}-json?port=4444`)).body)).toEqual([]);
    });
  }

  it('answers 404 for a disabled resource before looking at its query string', async () => {
    for (const path of ['/mysql-odbc-json', '/mysql-odbc-psv']) {
      for (const q of ['limit=Infinity', 'port=abc&bogus=1', 'from=2025-02-30']) {
        const r = await get(gw.url, `${path}?${q}`);
        expect(r.status, `${path}?${q}`).toBe(404);
        expect(detail(r)).toBe('resource mysql_odbc_traffic is not enabled on this server');
      }
    }
  });

  it('turns a value the database refuses as out of range into a 400, as a last line of defence', async () => {
    const cases: [SecureResourceSettings, string, string[], string][] = [
      [pgTarget({ db_name: db }), 'SELECT CAST(? AS integer) AS n', ['99999999999'], 'pg_traffic'],
      [pgTarget({ db_name: db }), 'SELECT CAST(? AS timestamp) AS t', ['2025-02-30 00:00:00'], 'pg_traffic'],
      [mysqlTarget({ db_name: db }), 'INSERT INTO tcp_hourly (date_hour, port, flows, pkts, bytes) VALUES (?, 1, 1, 1, 1)', ['10000-01-01 00:00:00'], 'mysql_traffic'],
      [mysqlTarget({ db_name: db }), "INSERT INTO tcp_hourly (date_hour, port, flows, pkts, bytes) VALUES ('2040-01-01 00:00:00', ?, 1, 1, 1)", ['99999999999'], 'mysql_traffic'],
    ];
    for (const [target, sql, params, rid] of cases) {
      const conn = await createConnector(rid, target).connect(0, 10);
      try {
        const err = await conn.query(sql, params, { timeoutSeconds: 10 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, sql).toBeDefined();
        const app = toAppError(err, rid, 10);
        expect(app, `${sql}: ${(err as Error).message}`).toBeInstanceOf(BadRequestError);
        expect((app as BadRequestError).statusCode).toBe(400);
        expect(app.message).toMatch(new RegExp(`^value refused by the database for resource ${rid}: `));
        expect(conn.usable).toBe(true);
      } finally {
        await conn.close();
      }
    }
  });
});

describe('hostile input on a gateway with only SQLite', () => {
  let gw: GatewayProcess | undefined;
  afterAll(async () => {
    await gw?.stop();
  });

  it('answers 404 for disabled resources whatever the query string or body', async () => {
    gw = await startGateway();
    for (const path of ['/pg-json?limit=Infinity', '/pg-psv?port=0x16', '/mysql-json?from=2025-02-30', '/traffic/compare?limit=-1']) {
      const r = await get(gw.url, path);
      expect(r.status, path).toBe(404);
      expect(detail(r)).toMatch(/^resource (pg|mysql)_traffic is not enabled on this server$/);
    }
    for (const [body, type] of [['{"rows":5}', 'application/json'], ['x', 'text/plain'], ['{"rows": [', 'application/json']]) {
      const r = await post(gw.url, '/pg/traffic', body, type);
      expect(r.status, body).toBe(404);
    }
  });
});

describe('metrics_allow', () => {
  // Eight gateway processes each: their start-up alone took 3-25 s apiece at a load average of 12.
  const started: GatewayProcess[] = [];
  afterAll(async () => {
    await Promise.all(started.map((g) => g.stop()));
  });
  const start = async (metricsAllow: unknown, noWait = false) => {
    const gw = await startGateway({ noWait, configPatch: (cfg, dir) => Object.assign(cfg, sqliteConfig(dir, { metrics_allow: metricsAllow })) });
    started.push(gw);
    return gw;
  };

  it('matches CIDR blocks, IPv4 and IPv6', async () => {
    for (const allow of [['127.0.0.0/8'], ['10.0.0.0/8', '127.0.0.1/32'], ['::ffff:127.0.0.0/104'], ['127.0.0.1']]) {
      const gw = await start(allow);
      expect((await fetch(`${gw.url}/metrics`)).status, JSON.stringify(allow)).toBe(200);
    }
    const other = await start(['10.0.0.0/8', '::1/128']);
    const r = await get(other.url, '/metrics');
    expect(r.status).toBe(403);
    expect(detail(r)).toBe('client 127.0.0.1 is not allowed to read /metrics');
  }, 120_000);

  it('refuses entries it could never match, at start-up and on reload, naming the key', async () => {
    for (const entry of ['localhost', '127.0.0.0/33', '10.0.0.0/8x', '::1/129', '127.0.0.1/', '10.0.0.0/08', '']) {
      const gw = await start(['127.0.0.1', entry], true);
      const running = new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 15_000).unref());
      expect(await Promise.race([gw.exited, running]), entry).toBe(1);
      const err = await gw.waitForLine((l) => l.fields.tag === 'config-err');
      expect(err.fields.keys, entry).toContain('metrics_allow');
      expect(err.fields.msg, entry).toMatch(/metrics_allow\[1\] is not an IP address or CIDR block/);
    }
    const gw = await start(['127.0.0.1']);
    const refused = await gw.reload({ metrics_allow: ['localhost'] });
    expect(refused.fields.tag).toBe('config-err');
    expect(refused.fields.keys).toContain('metrics_allow');
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(200);
  }, 120_000);
});

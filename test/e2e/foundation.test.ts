/**
 * The gateway as a user meets it: a real child process, real HTTP, real signals, its real log lines.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  const code = await gw?.stop();
  expect(code).toBe(0);
});

function expectStandardHeaders(res: Response): void {
  expect(res.headers.get('x-correlation-id')).toMatch(/^[0-9a-f]{12}$/);
  expect(res.headers.get('x-process-time')).toMatch(/^\d+\.\d{3}$/);
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('gateway process on the embedded SQLite database', () => {
  it('serves /sqlite-json: 10 rows with the five columns', async () => {
    const res = await fetch(`${gw.url}/sqlite-json`);
    expect(res.status).toBe(200);
    expectStandardHeaders(res);
    const rows = (await res.json()) as Record<string, unknown>[];
    expect(rows).toHaveLength(10);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(['date_hour', 'port', 'flows', 'pkts', 'bytes']);
      expect(Number.isInteger(row.date_hour)).toBe(true);
    }
  });

  it('streams /sqlite-psv as pipe-separated lines without a header', async () => {
    const res = await fetch(`${gw.url}/sqlite-psv?limit=25&port=443`);
    expect(res.status).toBe(200);
    expectStandardHeaders(res);
    const lines = (await res.text()).trimEnd().split('\n');
    expect(lines).toHaveLength(25);
    for (const line of lines) expect(line).toMatch(/^\d+\|443\|\d+\|\d+\|\d+$/);
  });

  it('filters by from/to in epoch seconds or ISO 8601 identically', async () => {
    const all = (await (await fetch(`${gw.url}/sqlite-json?limit=1`)).json()) as { date_hour: number }[];
    const start = all[0].date_hour;
    const iso = new Date((start + 3600) * 1000).toISOString();
    const a = await (await fetch(`${gw.url}/sqlite-json?from=${start + 3600}&to=${start + 7200}&limit=100`)).json();
    const b = await (await fetch(`${gw.url}/sqlite-json?from=${encodeURIComponent(iso)}&to=${start + 7200}&limit=100`)).json();
    expect(a).toEqual(b);
    expect((a as unknown[]).length).toBeGreaterThan(0);
    for (const r of a as { date_hour: number }[]) expect(r.date_hour).toBeGreaterThanOrEqual(start + 3600);
  });

  it('answers bad input with 400 naming the field, with the standard headers', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=10001', 'limit'],
      ['port=http', 'port'],
      ['from=yesterday', 'from'],
      ['lmit=5', 'lmit'],
    ]) {
      const res = await fetch(`${gw.url}/sqlite-json?${query}`);
      expect(res.status, query).toBe(400);
      expectStandardHeaders(res);
      const body = (await res.json()) as { detail: string; cid: string };
      expect(body.detail).toContain(field);
      expect(body.cid).toBe(res.headers.get('x-correlation-id'));
    }
  });

  it('answers unknown routes and disabled resources with 404 JSON and the headers', async () => {
    const res = await fetch(`${gw.url}/no/such/route`);
    expect(res.status).toBe(404);
    expectStandardHeaders(res);
    expect(await res.json()).toMatchObject({ detail: 'no route for GET /no/such/route' });
    const pg = await fetch(`${gw.url}/pg-json`);
    expect(pg.status).toBe(404);
    expect(((await pg.json()) as { detail: string }).detail).toBe('resource pg_traffic is not enabled on this server');
  });

  it('keeps a valid incoming correlation id, replaces an unsafe one, and logs with it', async () => {
    const mine = await fetch(`${gw.url}/sqlite-json`, { headers: { 'X-Correlation-ID': 'client-42.a_b' } });
    expect(mine.headers.get('x-correlation-id')).toBe('client-42.a_b');
    await mine.arrayBuffer();
    const stats = await gw.waitForLine((l) => l.fields.tag === 'request-stats' && l.fields.cid === 'client-42.a_b');
    expect(stats.fields).toMatchObject({ status_code: '200', queries: '1' });
    const bad = await fetch(`${gw.url}/sqlite-json`, { headers: { 'X-Correlation-ID': 'has spaces & "quotes"' } });
    expect(bad.headers.get('x-correlation-id')).toMatch(/^[0-9a-f]{12}$/);
    await bad.arrayBuffer();
  });

  it('names the method and URL in the msg of each of a request’s records, for repeated and for long URLs', async () => {
    const long = `/no/such/${'x'.repeat(300)}`;
    for (const path of ['/sqlite-json?limit=2', '/sqlite-json?limit=2', long]) {
      const res = await fetch(`${gw.url}${path}`);
      const cid = res.headers.get('x-correlation-id');
      await res.arrayBuffer();
      await gw.waitForLine((l) => l.fields.tag === 'request-stats' && l.fields.cid === cid);
      const msgs = Object.fromEntries(gw.parsed().filter((l) => l.fields.cid === cid).map((l) => [l.fields.tag, l.fields.msg]));
      const queryStats = path === long ? {} : { 'query-stats': `GET ${path} query stats` };
      expect(msgs).toEqual({ request: `GET ${path}`, 'request-stats': `GET ${path} results`, ...queryStats });
    }
  });

  it('serves Swagger UI and an OpenAPI 3 document describing params and error responses', async () => {
    const ui = await fetch(`${gw.url}/docs`, { redirect: 'follow' });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
    const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { parameters?: { name: string }[]; responses: Record<string, unknown> }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const op = doc.paths['/sqlite-json'].get;
    expect(op.parameters?.map((p) => p.name).sort()).toEqual(['format', 'from', 'limit', 'port', 'to']);
    expect(Object.keys(op.responses).sort()).toEqual(['200', '400', '406', '429', '500', '503', '504']);
    const tooMany = op.responses['429'] as { content: Record<string, { example?: unknown }> };
    expect(tooMany.content['application/json'].example).toEqual({ detail: 'too many pending requests for resource sqlite_traffic', cid: expect.any(String) });
    const ok = op.responses['200'] as { content: Record<string, { example?: unknown[] }> };
    expect(ok.content['application/json'].example?.[0]).toHaveProperty('date_hour');
    // Routes of resources this gateway does not enable are left out (they answer 404).
    expect(doc.paths).not.toHaveProperty('/pg/traffic');
  });

  it('writes only parseable logfmt lines with tag and msg, and no request records for quiet paths', async () => {
    const from = gw.lines.length;
    await (await fetch(`${gw.url}/metrics`)).text();
    await (await fetch(`${gw.url}/health/live`)).text();
    await (await fetch(`${gw.url}/docs/json`)).text();
    const res = await fetch(`${gw.url}/sqlite-psv?limit=3`);
    const cid = res.headers.get('x-correlation-id');
    await res.text();
    const stats = await gw.waitForLine((l) => l.fields.tag === 'request-stats' && l.fields.cid === cid, 5000, from);
    expect(stats.fields.content_length).toBe('-');
    // Lines are buffered briefly, so earlier tests' lines may arrive after `from`: match by path and cid.
    const requests = gw.parsed().filter((l) => l.fields.tag === 'request');
    expect(requests.filter((l) => /^GET \/(metrics|health|docs)/.test(String(l.fields.msg)))).toEqual([]);
    expect(requests.filter((l) => l.fields.cid === cid).map((l) => l.fields.msg)).toEqual(['GET /sqlite-psv?limit=3']);
    for (const line of gw.parsed()) {
      expect(line.fields.tag).toBeTruthy();
      expect(line.fields.msg).toBeTruthy();
      expect(line.pid).toBe(String(gw.child.pid));
    }
    // Nothing bypasses the logger: a library's console warning (ajv's strict mode, say) is not logfmt.
    expect(gw.stderr.join('')).toBe('');
  });

  it('reloads an override on SIGUSR1 at once, without opening an inspector', async () => {
    const reload = await gw.reload({ log_level: 'WARNING', resources: { sqlite_traffic: { max_pending_requests: 7 } } });
    expect(reload.fields.tag).toBe('config-reload');
    expect(reload.fields.changes).toContain('log_level: "INFO" -> "WARNING"');
    expect(reload.fields.changes).toContain('resources.sqlite_traffic.max_pending_requests: 100 -> 7');
    let from = gw.lines.length;
    const res = await fetch(`${gw.url}/sqlite-json`);
    await res.arrayBuffer();
    expect(await portOpen(9229)).toBe(false);
    expect(gw.stderr.join('')).not.toMatch(/Debugger listening/);

    // Lines come out in order: once the next reload's record is out, the request's would be too.
    const debug = await gw.reload({ log_level: 'DEBUG' });
    expect(debug.fields.changes).toContain('"WARNING" -> "DEBUG"');
    const since = gw.parsed().slice(from);
    const beforeDebug = since.slice(0, since.findIndex((l) => l.fields.tag === 'config-reload'));
    expect(beforeDebug.filter((l) => l.fields.tag === 'request' || l.fields.tag === 'request-stats')).toEqual([]);
    from = gw.lines.length;
    await (await fetch(`${gw.url}/sqlite-json`)).arrayBuffer();
    await gw.waitForLine((l) => l.fields.tag === 'request', 5000, from);
  });

  it('refuses an override touching secure or broken YAML, keeps serving the old config', async () => {
    expect((await gw.reload({ log_level: 'INFO' })).fields.changes).toContain('-> "INFO"');

    const refused = await gw.reload({ log_level: 'ERROR', secure: { sqlite_traffic: { db_path: '/tmp/other.db' } } });
    expect(refused).toMatchObject({ level: 'ERROR', fields: { tag: 'config-err', file: gw.overrideFile, keys: 'secure' } });

    const broken = await gw.reload('log_level: [ERROR\n');
    expect(broken.fields.tag).toBe('config-err');
    expect(broken.fields.msg).toMatch(/not valid YAML/);

    expect((await gw.reload({ port: 1234 })).fields).toMatchObject({ tag: 'config-err', keys: 'port' });

    // Still INFO: a request writes its records.
    const from = gw.lines.length;
    await (await fetch(`${gw.url}/sqlite-json`)).arrayBuffer();
    await gw.waitForLine((l) => l.fields.tag === 'request-stats', 5000, from);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/wt_config_reloads_total\{result="error"\} 3/);
    expect(metrics).toMatch(/wt_config_reloads_total\{result="success"\} 3/);
  });
});

describe('start-up with a bad config', () => {
  it('exits non-zero with a config-err record naming the file and keys', async () => {
    const bad = await startGateway({ noWait: true, config: { log_level: 'LOUD', resource_ids: ['sqlite_traffic'], secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'x.db' } } } });
    const code = await bad.exited;
    expect(code).toBe(1);
    const err = bad.parsed().find((l) => l.fields.tag === 'config-err');
    expect(err?.fields.keys).toBe('log_level');
    expect(err?.fields.file).toBe(bad.configFile);
    await bad.stop();
  });
});

describe('start-up with an ODBC resource but no odbc package', () => {
  it('exits non-zero naming the install step', async () => {
    const gw = await startGateway({
      noWait: true,
      extraArgs: ['--import', `${ROOT}/test/fixtures/hide-odbc.mjs`],
      config: {
        resource_ids: ['mysql_odbc_traffic'],
        secure: { mysql_odbc_traffic: { db_type: 'odbc', db_driver: 'MariaDB Unicode', db_host: '127.0.0.1', db_port: 3306, db_name: 'test', db_user: 'root' } },
      },
    });
    expect(await gw.exited).toBe(1);
    const err = gw.parsed().find((l) => l.fields.tag === 'start-err');
    expect(err?.level).toBe('CRITICAL');
    expect(err?.fields.msg).toMatch(/ODBC support is not installed: npm install odbc .*apt-get install unixodbc-dev/);
    await gw.stop();
  });
});

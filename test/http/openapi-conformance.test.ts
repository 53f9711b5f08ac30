/**
 * The OpenAPI document served at /docs/json against what the gateway really sends. Every operation
 * it lists is called until every status it documents has been produced for real, by real gateway
 * processes over real SQLite, PostgreSQL and MariaDB (native and ODBC) set up to fail on purpose:
 * tiny limits and timeouts with the tables locked (429, 504), databases without the table (500),
 * databases that cannot be reached (503), a restrictive metrics_allow (403) and basic auth (401).
 * Each response's status, content type, body and headers are validated against the operation's
 * response in the document of the gateway that answered, with Fastify's own ajv compiler; a status
 * the document does not list fails, and so does a documented one the walk never produced.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase, SAMPLE_TABLE } from '../../src/db/sample-data.js';
import {
  closedPort,
  mysqlAvailable,
  mysqlTarget,
  odbcAvailable,
  odbcTarget,
  pgAvailable,
  pgTarget,
  requireOrSkip,
  uniqueName,
} from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { openRaw } from '../helpers/raw-http.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';
import { waitFor } from '../helpers/wait.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = skipMysql || requireOrSkip('MariaDB ODBC', await odbcAvailable());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

import { conformance, type Answer, type OpenApiDocument, type Operation } from '../helpers/openapi.js';

// ---------------------------------------------------------------- the walk

/** What each (method, path, status) produced, over every gateway. */
const produced = new Map<string, Set<number>>();
const opKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

async function fetchAnswer(gw: GatewayProcess, method: string, path: string, init: RequestInit = {}): Promise<Answer> {
  if (init === TOO_LARGE) return announceTooLarge(gw, method, path);
  const res = await fetch(`${gw.url}${path}`, { method: method.toUpperCase(), ...init });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Stands for a body over the server's limit: only announced (Content-Length), never sent. */
const TOO_LARGE: RequestInit = {};

/**
 * Announces a 6 MB JSON body and waits for the answer without sending it: the server refuses it
 * from the header at once and closes, which would cut a client still busy uploading (EPIPE).
 */
function announceTooLarge(gw: GatewayProcess, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { method: method.toUpperCase(), headers: { 'content-type': 'application/json', 'content-length': String(6 * 1024 * 1024) } });
    req.setTimeout(5_000, () => req.destroy(new Error('no answer to an over-large body within 5 s')));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve({ status: res.statusCode ?? 0, headers, body });
        req.destroy();
      });
    });
    req.flushHeaders();
  });
}

/** Checks an answer against `doc` and records its status. */
function check(doc: OpenApiDocument, method: string, path: string, answer: Answer): number {
  expect(conformance(doc, method, path, answer)).toEqual([]);
  let seen = produced.get(opKey(method, path));
  if (seen === undefined) produced.set(opKey(method, path), (seen = new Set()));
  seen.add(answer.status);
  return answer.status;
}

/** Calls the operation, checks the answer against `doc`, records its status and returns it. */
async function call(gw: GatewayProcess, doc: OpenApiDocument, method: string, path: string, opts: { query?: string; init?: RequestInit } = {}): Promise<number> {
  return check(doc, method, path, await fetchAnswer(gw, method, `${path}${opts.query ?? ''}`, opts.init));
}

async function documentOf(gw: GatewayProcess): Promise<OpenApiDocument> {
  const res = await fetch(`${gw.url}/docs/json`);
  expect(res.status).toBe(200);
  return (await res.json()) as OpenApiDocument;
}

function operations(doc: OpenApiDocument): { method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ method, path, op })));
}

/** Data routes: every GET tagged traffic reads rows; every POST tagged traffic inserts them. */
function kindOf(method: string, path: string, op: Operation): 'select' | 'insert' | 'other' {
  if (!op.tags?.includes('traffic')) return 'other';
  return method === 'post' ? 'insert' : 'select';
}

let nextHour = Math.floor(Date.UTC(2031, 0, 1) / 1000);
/** A batch of rows no other insert of this run uses. */
function newRows(): string {
  nextHour += 3600;
  return JSON.stringify({ rows: [{ date_hour: nextHour, port: 443, flows: 1, pkts: 2, bytes: 3 }] });
}
const json = (body: string): RequestInit => ({ body, headers: { 'content-type': 'application/json' } });

// ---------------------------------------------------------------- databases and gateways

async function seed(target: SecureResourceSettings, withTable: boolean): Promise<void> {
  if (withTable) await seedSampleDatabase(target);
  else await ensureDatabase(target);
}

/** A SQLite file whose tcp_hourly is a view that computes for minutes before it yields a row. */
function slowSqlite(path: string): void {
  const db = new Database(path);
  db.exec(`CREATE VIEW tcp_hourly AS
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000000)
    SELECT x AS date_hour, 22 AS port, 1 AS flows, 1 AS pkts, 1 AS bytes FROM c WHERE x < 0`);
  db.close();
}

/** Drops the sample table from each of `targets`, under a running gateway (which checked its statements at start-up). */
async function dropSampleTable(targets: SecureResourceSettings[]): Promise<void> {
  for (const target of targets) {
    const conn = await createConnector('drop', target).connect(0, 10);
    try {
      await conn.query(`DROP TABLE ${SAMPLE_TABLE}`, [], { timeoutSeconds: 30 });
    } finally {
      await conn.close();
    }
  }
}

const METRICS_AUTH = { WT_METRICS_USER: 'prom', WT_METRICS_PASSWORD: 'conformance' };
const authHeader = { authorization: `Basic ${Buffer.from('prom:conformance').toString('base64')}` };

describe.skipIf(skipPg || skipMysql)('the OpenAPI document at /docs/json', () => {
  const db = uniqueName('wt_oas');
  const emptyDb = uniqueName('wt_oas_empty');
  const dir = mkdtempSync(join(tmpdir(), 'wt-oas-'));
  const ids = ['sqlite_traffic', 'pg_traffic', 'mysql_traffic', ...(skipOdbc ? [] : ['mysql_odbc_traffic'])];
  const started: GatewayProcess[] = [];

  /** A gateway serving every resource from the given targets, with these per-resource limits. */
  async function gateway(targets: Record<string, Partial<SecureResourceSettings>>, limits: Record<string, unknown> = {}, env: Record<string, string> = {}) {
    const resources = Object.fromEntries(ids.map((rid) => [rid, { db_min_conn_pool_size: 0, db_max_conn_pool_size: 2, db_conn_timeout: 2, db_conn_retry_wait_period: 1, ...limits }]));
    const secure = Object.fromEntries(ids.map((rid) => [rid, fileTarget(targets[rid])]));
    const gw = await startGateway({ config: { log_level: 'INFO', resource_ids: ids, resources, secure, pool_check_interval: 1 }, env });
    started.push(gw);
    return gw;
  }

  const targetsFor = (name: string, sqlitePath: string) => ({
    sqlite_traffic: { db_type: 'sqlite' as const, db_path: sqlitePath, db_sample: true },
    pg_traffic: pgTarget({ db_name: name }),
    mysql_traffic: mysqlTarget({ db_name: name }),
    mysql_odbc_traffic: odbcTarget({ db_name: name }),
  });

  let healthy: GatewayProcess;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    await Promise.all([
      seed(pgTarget({ db_name: db }), true),
      seed(mysqlTarget({ db_name: db }), true),
      seed(pgTarget({ db_name: emptyDb }), true),
      seed(mysqlTarget({ db_name: emptyDb }), true),
    ]);
    healthy = await gateway(targetsFor(db, join(dir, 'traffic.db')), { db_min_conn_pool_size: 1 });
    doc = await documentOf(healthy);
  }, 90_000);

  afterAll(async () => {
    for (const gw of started) await gw.stop();
    rmSync(dir, { recursive: true, force: true });
    for (const name of [db, emptyDb]) await Promise.all([dropDatabase(pgTarget({ db_name: name })), dropDatabase(mysqlTarget({ db_name: name }))]);
  }, 60_000);

  it('lists only operations the walk knows, each with its headers declared', () => {
    expect(doc.openapi).toMatch(/^3\./);
    for (const { method, path, op } of operations(doc)) {
      if (kindOf(method, path, op) === 'other') expect(['GET /health/live', 'GET /health/ready', 'GET /metrics'], 'an operation this test does not walk yet').toContain(opKey(method, path));
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.headers?.['X-Correlation-ID']?.required, `${opKey(method, path)} ${status}`).toBe(true);
        expect(response.headers?.['X-Process-Time']?.required, `${opKey(method, path)} ${status}`).toBe(true);
        if (status === '429' || status === '503') expect(response.headers?.['Retry-After']?.required, `${opKey(method, path)} ${status}`).toBe(true);
        if (Number(status) >= 400) expect(Object.keys(response.content ?? {}), `${opKey(method, path)} ${status}`).toEqual(['application/json']);
      }
      if (op.requestBody !== undefined) expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['413', '415']));
    }
  });

  it('success, 400, 406, 409, 413 and 415 on a healthy gateway', async () => {
    for (const { method, path, op } of operations(doc)) {
      const kind = kindOf(method, path, op);
      if (kind === 'select') {
        expect(await call(healthy, doc, method, path, { query: '?limit=3' })).toBe(200);
        expect(await call(healthy, doc, method, path, { query: '?limit=0' })).toBe(400);
        // Declared endpoints offer formats: one not offered is refused before anything else.
        if (op.responses['406']) expect(await call(healthy, doc, method, path, { query: '?format=xml&limit=0' })).toBe(406);
      } else if (kind === 'insert') {
        const rows = newRows();
        expect(await call(healthy, doc, method, path, { init: json(rows) })).toBe(201);
        expect(await call(healthy, doc, method, path, { init: json(rows) })).toBe(409);
        expect(await call(healthy, doc, method, path, { init: json('{"rows": []}') })).toBe(400);
        expect(await call(healthy, doc, method, path, { init: TOO_LARGE })).toBe(413);
        expect(await call(healthy, doc, method, path, { init: { body: '<rows/>', headers: { 'content-type': 'application/xml' } } })).toBe(415);
      } else {
        expect(await call(healthy, doc, method, path)).toBe(200);
      }
    }
  }, 60_000);

  it('403 from /metrics for a client outside metrics_allow', async () => {
    const reload = await healthy.reload({ metrics_allow: ['10.9.8.7'] });
    expect(reload.fields.tag).toBe('config-reload');
    try {
      expect(await call(healthy, doc, 'get', '/metrics')).toBe(403);
    } finally {
      await healthy.reload({});
    }
  });

  it('429 for a request beyond the limits and 504 for the one that waits on a locked table, for every data route; 401 from /metrics without credentials', async () => {
    const slowPath = join(dir, 'slow.db');
    slowSqlite(slowPath);
    const gw = await gateway(
      targetsFor(db, slowPath),
      { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1, max_active_requests: 1, max_pending_requests: 0, db_default_query_timeout: 2, request_slot_timeout: 5 },
      METRICS_AUTH,
    );
    const slowDoc = await documentOf(gw);
    expect(await call(gw, slowDoc, 'get', '/metrics')).toBe(401);

    const inProgress = async () => {
      const text = await (await fetch(`${gw.url}/metrics`, { headers: authHeader })).text();
      return [...text.matchAll(/^wt_in_progress_requests\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const pgLock = new pg.Client({ host: pgTarget().db_host, port: pgTarget().db_port, user: pgTarget().db_user, database: db });
    await pgLock.connect();
    await pgLock.query('BEGIN');
    await pgLock.query('LOCK TABLE tcp_hourly IN ACCESS EXCLUSIVE MODE');
    const my = mysqlTarget();
    const myLock = await mysql.createConnection({ host: my.db_host, port: my.db_port || 3306, user: my.db_user, database: db });
    await myLock.query('LOCK TABLES tcp_hourly WRITE');
    try {
      for (const { method, path, op } of operations(slowDoc)) {
        const kind = kindOf(method, path, op);
        if (kind === 'other') continue;
        const init = kind === 'insert' ? json(newRows()) : {};
        const held = call(gw, slowDoc, method, path, { init });
        await waitFor(`${opKey(method, path)} to get its slot`, async () => (await inProgress()) >= 1, { timeout: 5_000, interval: 20 });
        expect(await call(gw, slowDoc, method, path, { init: kind === 'insert' ? json(newRows()) : {} }), opKey(method, path)).toBe(429);
        expect(await held, opKey(method, path)).toBe(504);
        // The next route starts only once this one gave its slot back.
        await waitFor(`${opKey(method, path)} to give its slot back after its 504`, async () => (await inProgress()) === 0, { interval: 20 });
      }
    } finally {
      await pgLock.query('ROLLBACK').catch(() => undefined);
      await pgLock.end();
      await myLock.query('UNLOCK TABLES').catch(() => undefined);
      await myLock.end();
    }
  }, 120_000);

  it('500 from every data route when its table is missing', async () => {
    // A gateway refuses to start on a statement its database refuses: the tables go once it serves.
    const emptyPath = join(dir, 'empty.db');
    const targets = targetsFor(emptyDb, emptyPath);
    const gw = await gateway(targets);
    await dropSampleTable([targets.sqlite_traffic as SecureResourceSettings, targets.pg_traffic, targets.mysql_traffic]);
    const brokenDoc = await documentOf(gw);
    for (const { method, path, op } of operations(brokenDoc)) {
      const kind = kindOf(method, path, op);
      if (kind === 'other') continue;
      expect(await call(gw, brokenDoc, method, path, { init: kind === 'insert' ? json(newRows()) : {} }), opKey(method, path)).toBe(500);
    }
  }, 60_000);

  it('503 from every data route and from /health/ready when no database can be reached', async () => {
    const port = await closedPort();
    const down = (t: SecureResourceSettings) => ({ ...t, db_host: '127.0.0.1', db_port: port });
    const gw = await gateway(
      {
        sqlite_traffic: { db_type: 'sqlite', db_path: dir }, // a directory: SQLite cannot open it
        pg_traffic: down(pgTarget({ db_name: db })),
        mysql_traffic: down(mysqlTarget({ db_name: db })),
        mysql_odbc_traffic: down(odbcTarget({ db_name: db })),
      },
      { db_min_conn_pool_size: 1 },
    );
    const downDoc = await documentOf(gw);
    for (const { method, path, op } of operations(downDoc)) {
      const kind = kindOf(method, path, op);
      if (kind === 'other') continue;
      expect(await call(gw, downDoc, method, path, { init: kind === 'insert' ? json(newRows()) : {} }), opKey(method, path)).toBe(503);
    }
    // Readiness follows the pools' failed attempts.
    await waitFor('/health/ready to answer 503', async () => (await call(gw, downDoc, 'get', '/health/ready')) === 503, { interval: 200 });
  }, 60_000);

  it('leaves out the routes of resources that are not enabled, which answer 404', async () => {
    const gw = await startGateway();
    started.push(gw);
    const sqliteDoc = await documentOf(gw);
    const paths = Object.keys(sqliteDoc.paths);
    expect(paths).toContain('/sqlite-json');
    for (const path of ['/pg-json', '/pg-psv', '/mysql-json', '/traffic/compare', '/pg/traffic']) {
      expect(paths).not.toContain(path);
      const res = await fetch(`${gw.url}${path}`, { method: path.includes('/traffic') && !path.includes('compare') ? 'POST' : 'GET' });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ detail: expect.stringMatching(/not enabled on this server/), cid: res.headers.get('x-correlation-id') });
    }
  });

  it('503 from the other routes once shutdown has begun (a request that completes after SIGTERM)', async () => {
    const others = operations(doc).filter(({ method, path, op }) => kindOf(method, path, op) === 'other');
    // Requests begun before the signal and completed after it: their connections are not idle, so
    // the server keeps them, and the app sees the requests while it shuts down.
    const conns = await Promise.all(others.map(() => openRaw(healthy.port)));
    others.forEach(({ method, path }, i) => conns[i].send(`${method.toUpperCase()} ${path} HTTP/1.1\r\nHost: x\r\n`));
    await sleep(100); // a moment for the server to read the unfinished requests; nothing to poll for
    const from = healthy.lines.length;
    healthy.signal('SIGTERM');
    await healthy.waitForLine((l) => l.fields.tag === 'shutdown', 5_000, from);
    try {
      for (const [i, { method, path }] of others.entries()) {
        conns[i].send('\r\n');
        const res = await conns[i].response();
        const headers = new Headers(res.headers);
        expect(check(doc, method, path, { status: res.status, headers, body: res.body }), path).toBe(503);
      }
    } finally {
      for (const c of conns) c.close();
    }
  });

  it('every documented status was produced', () => {
    const missing: string[] = [];
    for (const { method, path, op } of operations(doc)) {
      const seen = produced.get(opKey(method, path)) ?? new Set();
      for (const status of Object.keys(op.responses)) {
        if (!seen.has(Number(status))) missing.push(`${opKey(method, path)} ${status}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

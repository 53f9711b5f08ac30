/**
 * sql_comment through a running gateway, over real HTTP: while a request's statement runs,
 * PostgreSQL's pg_stat_activity and MariaDB's SHOW FULL PROCESSLIST show it with the request's
 * sqlcommenter comment (cid and endpoint); a resource without sql_comment sends the SQL as written.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { mysqlAvailable, mysqlTarget, pgAvailable, pgTarget, requireOrSkip, TEST_PG_URL } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { fileTarget } from '../helpers/test-data.js';

const skip = requireOrSkip('PostgreSQL', await pgAvailable()) || requireOrSkip('MariaDB', await mysqlAvailable());

function endpoints(): unknown[] {
  const ep = (path: string, rid: string, sql: string, result = 'one', method = 'GET') => ({ method, path, resources: [rid], public: true, statements: [{ sql }], result });
  return [
    ep('/pg/sleep', 'pgc', 'SELECT 1 AS n FROM pg_sleep(1.5)'),
    ep('/pg/plain', 'pgn', 'SELECT 2 AS n FROM pg_sleep(1.5)'),
    ep('/my/sleep', 'myc', 'SELECT SLEEP(1.5) AS n'),
    ep('/my/fast', 'myc', 'SELECT 1 AS n'),
    ep('/pg/stream', 'pgc', 'SELECT 3 AS n FROM pg_sleep(1.5)', 'stream'),
    ep('/pg/tx', 'pgc', 'SELECT 4 AS n FROM pg_sleep(1.5)', 'transaction', 'POST'),
  ];
}

let gw: GatewayProcess;
let pool: pg.Pool;
let my: mysql.Connection;

beforeAll(async () => {
  if (skip) return;
  pool = new pg.Pool({ connectionString: TEST_PG_URL, max: 1 });
  const t = mysqlTarget();
  my = await mysql.createConnection({ host: t.db_host, port: t.db_port || 3306, user: t.db_user, database: t.db_name });
  gw = await startGateway({
    configPatch: (doc, dir) => {
      const file = join(dir, 'comment-endpoints.yaml');
      writeFileSync(file, stringify({ endpoints: endpoints() }));
      const small = { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 };
      Object.assign(doc, {
        resource_ids: ['pgc', 'pgn', 'myc'],
        resources: { pgc: { ...small, sql_comment: true }, pgn: small, myc: { ...small, sql_comment: true } },
        secure: { pgc: fileTarget(pgTarget()), pgn: fileTarget(pgTarget()), myc: fileTarget(mysqlTarget()) },
        endpoints: [file],
      });
    },
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await pool?.end();
  await my?.end();
});

/** Polls `read` until it finds a statement (or gives up after 1.2 s, within the statement's 1.5). */
async function whileRunning(read: () => Promise<string | undefined>): Promise<string | undefined> {
  for (let i = 0; i < 24; i++) {
    const found = await read();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const pgActivity = (like: string) => async () => {
  const r = await pool.query("SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()", [like]);
  return r.rows[0]?.query as string | undefined;
};

describe.skipIf(skip)('sql_comment', () => {
  it('names the request in pg_stat_activity, and leaves a resource without it alone', async () => {
    const cid = `sqlc-pg-${Date.now()}`;
    const res = fetch(`${gw.url}/pg/sleep`, { headers: { 'x-correlation-id': cid } });
    const plain = fetch(`${gw.url}/pg/plain`, { headers: { 'x-correlation-id': `${cid}-plain` } });
    const seen = await whileRunning(pgActivity('SELECT 1 AS n FROM pg_sleep(1.5)%'));
    const seenPlain = await whileRunning(pgActivity('SELECT 2 AS n FROM pg_sleep(1.5)%'));
    expect((await res).status).toBe(200);
    expect((await plain).status).toBe(200);
    expect(seen).toBe(`SELECT 1 AS n FROM pg_sleep(1.5) /*cid='${cid}',endpoint='%2Fpg%2Fsleep'*/`);
    expect(seenPlain).toBe('SELECT 2 AS n FROM pg_sleep(1.5)');
  });

  it('names the request in pg_stat_activity from a stream and from a transaction too', async () => {
    const cid = `sqlc-pgs-${Date.now()}`;
    const stream = fetch(`${gw.url}/pg/stream`, { headers: { 'x-correlation-id': cid } });
    const tx = fetch(`${gw.url}/pg/tx`, { method: 'POST', headers: { 'x-correlation-id': `${cid}-tx` } });
    const seenStream = await whileRunning(pgActivity('SELECT 3 AS n FROM pg_sleep(1.5)%'));
    const seenTx = await whileRunning(pgActivity('SELECT 4 AS n FROM pg_sleep(1.5)%'));
    expect((await stream).status).toBe(200);
    expect((await tx).status).toBe(200);
    expect(seenStream).toBe(`SELECT 3 AS n FROM pg_sleep(1.5) /*cid='${cid}',endpoint='%2Fpg%2Fstream'*/`);
    expect(seenTx).toBe(`SELECT 4 AS n FROM pg_sleep(1.5) /*cid='${cid}-tx',endpoint='%2Fpg%2Ftx'*/`);
  });

  it('names the request in the MariaDB process list', async () => {
    const cid = `sqlc-my-${Date.now()}`;
    const res = fetch(`${gw.url}/my/sleep`, { headers: { 'x-correlation-id': cid } });
    const seen = await whileRunning(async () => {
      const [rows] = await my.query('SHOW FULL PROCESSLIST');
      const info = (rows as { Info: string | null }[]).map((r) => r.Info).find((q) => q?.startsWith('SELECT SLEEP(1.5)'));
      return info ?? undefined;
    });
    expect((await res).status).toBe(200);
    expect(seen).toBe(`SELECT SLEEP(1.5) AS n /*cid='${cid}',endpoint='%2Fmy%2Fsleep'*/`);
  });

  it('keeps no prepared statement per commented MySQL statement on the server', async () => {
    const count = async () => {
      const [rows] = await my.query("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'");
      return Number((rows as { Value: string }[])[0].Value);
    };
    await (await fetch(`${gw.url}/my/fast`)).text();
    const before = await count();
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${gw.url}/my/fast`);
      expect(res.status).toBe(200);
      await res.text();
    }
    // Global (other sessions may prepare a few meanwhile); kept, these 60 would add 60.
    expect((await count()) - before).toBeLessThan(30);
  });
});

/**
 * Retries of what is safe, through a real gateway process on real databases:
 * - a read whose backend is killed under it (pg_terminate_backend) is run again once on a fresh
 *   connection and answers 200, counted in wt_query_retries_total{reason="connection"} and noted
 *   as q1_retries in its query-stats record;
 * - a write outside a transaction whose backend is killed the same way is never run again;
 * - two concurrent SERIALIZABLE transactions on PostgreSQL that conflict both succeed, one of them
 *   run again (reason serialization); two MariaDB transactions that deadlock both succeed, one run
 *   again (reason deadlock).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import type { DbConnection } from '../../src/db/types.js';
import { mysqlAvailable, mysqlTarget, pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const RID = 'db_retry';
const tag = randomBytes(4).toString('hex');

async function retries(gw: GatewayProcess, reason: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('wt_query_retries_total{') && l.includes(`resource_id="${RID}"`) && l.includes(`reason="${reason}"`));
  if (line === undefined) throw new Error(`wt_query_retries_total{reason="${reason}"} not exposed`);
  return Number(line.split(' ').pop());
}

async function gateway(target: SecureResourceSettings, endpoints: string): Promise<GatewayProcess> {
  const { db_password: _password, ...secure } = target;
  return startGateway({
    config: {
      resource_ids: [RID],
      resources: { [RID]: { db_min_conn_pool_size: 2, db_max_conn_pool_size: 4 } },
      secure: { [RID]: secure },
    },
    env: target.db_password ? { [`${RID}__db_password`]: target.db_password } : {},
    configPatch: (doc, dir) => {
      const file = join(dir, 'retry.yaml');
      writeFileSync(file, endpoints);
      doc.endpoints = [file];
    },
  });
}

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMaria = requireOrSkip('MariaDB', await mysqlAvailable());

describe.skipIf(skipPg)('retries on PostgreSQL', () => {
  const table = `wt_retry_${tag}`;
  let gw: GatewayProcess;
  let db: DbConnection;

  beforeAll(async () => {
    db = await createConnector('setup', pgTarget()).connect(0, 10);
    await db.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, v integer NOT NULL)`, [], { timeoutSeconds: 10 });
    await db.query(`INSERT INTO ${table} VALUES (1, 0)`, [], { timeoutSeconds: 10 });
    gw = await gateway(
      pgTarget(),
      [
        'endpoints:',
        `  - { method: GET, path: /read, resources: [${RID}], statements: [{ sql: 'SELECT v, pg_sleep(1.5) IS NULL AS slept_${tag} FROM ${table} WHERE id = 1' }], result: one, columns: { v: { type: integer }, slept_${tag}: { type: boolean } } }`,
        `  - { method: GET, path: /stream, resources: [${RID}], statements: [{ sql: 'SELECT v, pg_sleep(1.5) IS NULL AS streamed_${tag} FROM ${table} WHERE id = 1' }], result: stream, formats: [ndjson], columns: { v: { type: integer }, streamed_${tag}: { type: boolean } } }`,
        `  - { method: POST, path: /write, resources: [${RID}], statements: [{ sql: 'INSERT INTO ${table} (id, v) SELECT 2, 0 FROM pg_sleep(1.5) AS wrote_${tag} RETURNING id' }], result: rows, columns: { id: { type: integer } } }`,
        `  - method: POST`,
        `    path: /bump`,
        `    resources: [${RID}]`,
        `    result: transaction`,
        `    statements:`,
        `      - { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE' }`,
        `      - { sql: 'SELECT v FROM ${table} WHERE id = 1' }`,
        `      - { sql: 'SELECT pg_sleep(0.5)' }`,
        `      - { sql: 'UPDATE ${table} SET v = v + 1 WHERE id = 1' }`,
        '',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    await db?.query(`DROP TABLE IF EXISTS ${table}`, [], { timeoutSeconds: 10 });
    await db?.close();
  });

  /** Terminates the backend running the statement whose text holds `marker`, once it runs. */
  async function killBackendOf(marker: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.query(`SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE ? AND pid <> pg_backend_pid()`, [`%${marker}%`], { timeoutSeconds: 5 });
      if (rows.length > 0) {
        await sleep(200); // well into the statement
        await db.query('SELECT pg_terminate_backend(?)', [rows[0].pid as number], { timeoutSeconds: 5 });
        return;
      }
      await sleep(30);
    }
    throw new Error(`no backend ran ${marker}`);
  }

  it('a read whose backend is terminated mid-statement is run again on a fresh connection: 200, one retry counted and recorded', { timeout: 30_000 }, async () => {
    const from = gw.lines.length;
    const before = await retries(gw, 'connection');
    const answer = fetch(`${gw.url}/read`);
    await killBackendOf(`slept_${tag}`);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ v: 0, [`slept_${tag}`]: false });
    expect(await retries(gw, 'connection')).toBe(before + 1);
    const stats = await gw.waitForLine((l) => l.fields.tag === 'query-stats' && l.fields.msg === 'GET /read query stats', 5000, from);
    expect(stats.fields.q1_retries).toBe('1');
    const retry = await gw.waitForLine((l) => l.fields.tag === 'query-retry', 5000, from);
    expect(retry.fields).toMatchObject({ resource_id: RID, driver_code: '57P01' });
  });

  it('a stream whose backend is terminated before its first row is run again on a fresh connection', { timeout: 30_000 }, async () => {
    const before = await retries(gw, 'connection');
    const answer = fetch(`${gw.url}/stream`);
    await killBackendOf(`streamed_${tag}`);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(JSON.parse((await res.text()).trim())).toEqual({ v: 0, [`streamed_${tag}`]: false });
    expect(await retries(gw, 'connection')).toBe(before + 1);
  });

  it('a write outside a transaction whose backend is terminated is never run again', { timeout: 30_000 }, async () => {
    const from = gw.lines.length;
    const before = await retries(gw, 'connection');
    const answer = fetch(`${gw.url}/write`, { method: 'POST' });
    await killBackendOf(`wrote_${tag}`);
    const res = await answer;
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(await retries(gw, 'connection')).toBe(before);
    await sleep(2000); // a retry would have written by now
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 2`, [], { timeoutSeconds: 5 })).rows[0].n).toBe(0);
    expect(gw.parsed().slice(from).some((l) => l.fields.tag === 'query-retry')).toBe(false);
  });

  it('two SERIALIZABLE transactions that conflict both succeed, one run again after its serialization failure', { timeout: 30_000 }, async () => {
    const before = await retries(gw, 'serialization');
    const [a, b] = await Promise.all([fetch(`${gw.url}/bump`, { method: 'POST' }), fetch(`${gw.url}/bump`, { method: 'POST' })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await db.query(`SELECT v FROM ${table} WHERE id = 1`, [], { timeoutSeconds: 5 })).rows[0].v).toBe(2);
    expect(await retries(gw, 'serialization')).toBeGreaterThanOrEqual(before + 1);
  });
});

describe.skipIf(skipMaria)('retries on MariaDB', () => {
  const table = `wt_retry_${tag}`;
  let gw: GatewayProcess;
  let db: DbConnection;

  beforeAll(async () => {
    db = await createConnector('setup', mysqlTarget()).connect(0, 10);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`, [], { timeoutSeconds: 10 });
    await db.query(`INSERT INTO ${table} VALUES (1, 0), (2, 0)`, [], { timeoutSeconds: 10 });
    gw = await gateway(
      mysqlTarget(),
      [
        'endpoints:',
        `  - method: POST`,
        `    path: /cross`,
        `    resources: [${RID}]`,
        `    params: { first: { type: integer, minimum: 1, maximum: 2, in: query, required: true }, second: { type: integer, minimum: 1, maximum: 2, in: query, required: true } }`,
        `    result: transaction`,
        `    statements:`,
        `      - { sql: 'UPDATE ${table} SET v = v + 1 WHERE id = :first' }`,
        `      - { sql: 'SELECT SLEEP(0.5)' }`,
        `      - { sql: 'UPDATE ${table} SET v = v + 1 WHERE id = :second' }`,
        '',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    await db?.query(`DROP TABLE IF EXISTS ${table}`, [], { timeoutSeconds: 10 });
    await db?.close();
  });

  it('two transactions that deadlock both succeed, one run again after the deadlock', { timeout: 30_000 }, async () => {
    const from = gw.lines.length;
    const before = await retries(gw, 'deadlock');
    const [a, b] = await Promise.all([fetch(`${gw.url}/cross?first=1&second=2`, { method: 'POST' }), fetch(`${gw.url}/cross?first=2&second=1`, { method: 'POST' })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const { rows } = await db.query(`SELECT id, v FROM ${table} ORDER BY id`, [], { timeoutSeconds: 5 });
    expect(rows).toEqual([{ id: 1, v: 2 }, { id: 2, v: 2 }]);
    expect(await retries(gw, 'deadlock')).toBe(before + 1);
    const retry = await gw.waitForLine((l) => l.fields.tag === 'query-retry', 5000, from);
    expect(retry.fields).toMatchObject({ resource_id: RID, driver_code: 'ER_LOCK_DEADLOCK', attempt: '2' });
  });
});

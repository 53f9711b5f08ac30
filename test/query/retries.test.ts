/**
 * What may be run again, decided without a database: which statements are reads, which driver
 * failures are a lost connection or a transaction the database rolled back, the q<i>_retries field
 * of the query-stats record, and the endpoint key tx_retries. The retries themselves, on real
 * databases: test/e2e/retries.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildSettings } from '../../src/config/load.js';
import { classifyError, isTransientConnectionError, txRetryReason } from '../../src/db/classify.js';
import { cancelledError, timeoutError } from '../../src/db/timeout.js';
import { DbDriverError } from '../../src/db/types.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { isRead } from '../../src/query/query.js';
import { queryStatsFields } from '../../src/query/query-log.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-retries-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('what is retried', () => {
  it('only reads are run again: SELECT, VALUES, TABLE, SHOW, EXPLAIN, and WITH without a write', () => {
    for (const sql of ['SELECT 1', '  select * from t', '(SELECT 1) UNION (SELECT 2)', '/* hint */ SELECT 1', 'WITH a AS (SELECT 1) SELECT * FROM a', 'VALUES (1)', 'SHOW PROCESSLIST', 'EXPLAIN SELECT 1']) {
      expect(isRead(sql), sql).toBe(true);
    }
    for (const sql of ['INSERT INTO t VALUES (1) RETURNING id', 'UPDATE t SET v = 1', 'DELETE FROM t', 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'CALL p()', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE']) {
      expect(isRead(sql), sql).toBe(false);
    }
  });

  it('a lost connection is transient; a timeout, a cancel, a bad statement or a usable connection is not', () => {
    const pgTerminated = classifyError('postgres', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));
    const reset = classifyError('mysql', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    const goneAway = classifyError('mysql', Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }));
    const pgLost = classifyError('postgres', new Error('Connection terminated unexpectedly'));
    const odbcGone = classifyError('odbc', Object.assign(new Error('[ma-3.1] Server has gone away'), { odbcErrors: [{ state: 'HY000', code: 2006 }] }));
    for (const err of [pgTerminated, reset, goneAway, pgLost, odbcGone]) expect(isTransientConnectionError(err), err.message).toBe(true);

    const syntax = classifyError('postgres', Object.assign(new Error('syntax error'), { code: '42601' }));
    const unknown = classifyError('postgres', new Error('something else'));
    for (const err of [timeoutError('query', 1, false), cancelledError('query', false), syntax, unknown, new Error('not a driver error')]) {
      expect(isTransientConnectionError(err), err.message).toBe(false);
    }
  });

  it('a transaction runs again after a serialization failure, a deadlock or a lock wait timeout, nothing else', () => {
    const pg = (code: string) => classifyError('postgres', Object.assign(new Error(code), { code }));
    const my = (code: string, errno: number) => classifyError('mysql', Object.assign(new Error(code), { code, errno }));
    expect(txRetryReason(pg('40001'))).toBe('serialization');
    expect(txRetryReason(pg('40P01'))).toBe('deadlock');
    expect(txRetryReason(my('ER_LOCK_DEADLOCK', 1213))).toBe('deadlock');
    expect(txRetryReason(my('ER_LOCK_WAIT_TIMEOUT', 1205))).toBe('lock-timeout');
    expect(txRetryReason(classifyError('odbc', Object.assign(new Error('Deadlock found'), { odbcErrors: [{ state: '40001', code: 1213 }] })))).toBe('deadlock');
    expect(txRetryReason(pg('23505'))).toBeUndefined();
    expect(txRetryReason(pg('57P01'))).toBeUndefined();
    // A conflict on a connection that is gone is not retried on it.
    expect(txRetryReason(new DbDriverError('x', { kind: 'query', connectionUsable: false, driverCode: '40001' }))).toBeUndefined();
  });

  it('the query-stats record has q<i>_retries only for a statement that ran again', () => {
    const q = { resourceId: 'r', connId: 1, sql: 'SELECT 1', params: [], seconds: 0.01, startedAt: 0, rowCount: 1 };
    const fields = queryStatsFields([q, { ...q, retries: 2 }, { ...q, retries: 0 }], 'stats', 100)!;
    expect(fields.q2_retries).toBe(2);
    expect('q1_retries' in fields).toBe(false);
    expect('q3_retries' in fields).toBe(false);
  });

  it('an endpoint may set tx_retries for its transaction, never for a read', () => {
    const path = join(dir, 'tx.yaml');
    const endpoint = (extra: Record<string, unknown>) => ({ method: 'POST', path: '/t', resources: ['lite'], statements: [{ sql: 'UPDATE t SET v = 1' }], result: 'exec', ...extra });
    const load = (endpoints: unknown[]) => {
      writeFileSync(path, stringify({ endpoints }));
      return loadEndpoints(buildSettings({ resource_ids: ['lite'], secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'x.db') } }, endpoints: [path] }, {}, { env: {} }));
    };
    expect(load([endpoint({ tx_retries: 5 })])[0].txRetries).toBe(5);
    expect(load([endpoint({})])[0].txRetries).toBeUndefined();
    expect(() => load([endpoint({ tx_retries: -1 })])).toThrow(/POST \/t: tx_retries: must be a whole number from 0 to 10/);
    expect(() => load([endpoint({ tx_retries: 'two' })])).toThrow(/tx_retries: must be a whole number/);
    expect(() => load([{ ...endpoint({ tx_retries: 1 }), method: 'GET', statements: [{ sql: 'SELECT 1 AS one' }], result: 'rows' }])).toThrow(/tx_retries: has no meaning for result rows/);
  });
});

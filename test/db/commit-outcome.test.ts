/**
 * A transaction's answer must be the truth about what was written. Many one-row transactions run
 * with a query timeout close to their own duration, so the timer often expires while COMMIT is on
 * its way: every success must have written its row, every failure must not have (an error saying
 * the outcome is unknown may go either way). The old drivers cancelled COMMIT on timeout after the
 * server had done it, and answered "timed out" for rows that were committed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { awaitCommit, COMMIT_OUTCOME_MS, CommitOutcomeUnknown } from '../../src/db/timeout.js';
import { OutcomeUnknownError } from '../../src/errors.js';
import { toAppError } from '../../src/query/query.js';
import type { DbConnection, DbConnector } from '../../src/db/types.js';
import { DbDriverError } from '../../src/db/types.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-commit-'));
const sqlitePath = join(dir, 'test.db');
new Database(sqlitePath).close();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TRANSACTIONS = 150;
const T = { timeoutSeconds: 10 };

interface Case {
  name: string;
  skip: boolean;
  connector: () => DbConnector;
}

const cases: Case[] = [
  { name: 'postgres', skip: requireOrSkip('PostgreSQL', await pgAvailable()), connector: () => createConnector('pg_test', pgTarget()) },
  { name: 'mysql', skip: requireOrSkip('MariaDB', await mysqlAvailable()), connector: () => createConnector('mysql_test', mysqlTarget()) },
  { name: 'odbc', skip: requireOrSkip('ODBC (MariaDB)', await odbcAvailable()), connector: () => createConnector('odbc_test', odbcTarget()) },
  { name: 'sqlite', skip: false, connector: () => createConnector('sqlite_test', targetFromUrl(`sqlite:${sqlitePath}`)) },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

for (const c of cases) {
  describe.skipIf(c.skip)(`${c.name}: the answer to a transaction racing its timeout`, () => {
    it('says committed only for rows written, failed only for rows not written', { timeout: 120_000 }, async () => {
      const table = uniqueName();
      const connector = c.connector();
      let nextConnId = 1;
      const check = await connector.connect(nextConnId++, 5);
      let conn: DbConnection = await connector.connect(nextConnId++, 5);
      await check.query(`CREATE TABLE ${table} (k INTEGER PRIMARY KEY, v VARCHAR(20))`, [], T);
      try {
        const insert = (k: number) => [{ sql: `INSERT INTO ${table} (k, v) VALUES (?, ?)`, params: [k, 'x'] }];
        // How long one such transaction takes here, so the timeouts tried straddle its COMMIT.
        const took: number[] = [];
        for (let k = -1; k >= -20; k--) {
          const t0 = performance.now();
          await conn.transaction(insert(k), T);
          took.push(performance.now() - t0);
        }
        const typicalMs = median(took);

        const outcome = { committed: 0, failed: 0, unknown: 0 };
        const misreported: string[] = [];
        for (let k = 1; k <= TRANSACTIONS; k++) {
          if (!conn.usable) {
            await conn.close();
            conn = await connector.connect(nextConnId++, 5);
          }
          // From a third of the typical duration to twice it, in whole-millisecond steps of the timer.
          const timeoutMs = Math.max(1, Math.round(typicalMs * (0.3 + 1.7 * ((k * 7) % 23) / 22)));
          let error: DbDriverError | undefined;
          try {
            await conn.transaction(insert(k), { timeoutSeconds: timeoutMs / 1000 });
          } catch (err) {
            if (!(err instanceof DbDriverError)) throw err;
            error = err;
          }
          const written = (await check.query(`SELECT k FROM ${table} WHERE k = ?`, [k], T)).rows.length === 1;
          if (error === undefined) {
            outcome.committed++;
            if (!written) misreported.push(`k=${k}: reported committed, not written`);
          } else if (error.driverCode === 'WT_COMMIT_UNKNOWN') {
            outcome.unknown++;
          } else {
            outcome.failed++;
            if (written) misreported.push(`k=${k}: reported ${error.kind} (${error.message}) after ${timeoutMs} ms, but written`);
          }
        }
        expect(misreported, `typical transaction ${typicalMs.toFixed(2)} ms; ${JSON.stringify(outcome)}`).toEqual([]);
        // The race was really run: some transactions beat their timeout and some did not.
        expect(outcome.committed).toBeGreaterThan(0);
        expect(outcome.failed + outcome.unknown).toBeGreaterThan(0);
      } finally {
        await conn.close();
        await check.query(`DROP TABLE ${table}`, [], T).catch(() => undefined);
        await check.close();
      }
    });
  });
}

describe('awaitCommit', () => {
  it('passes on the server\'s own refusal of a COMMIT (rolled back), keeping the connection', async () => {
    const abandon = vi.fn();
    const refusal = Object.assign(new Error('could not serialize access'), { code: '40001' });
    const err = await awaitCommit('postgres', Promise.reject(refusal), abandon).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DbDriverError);
    expect(err).not.toBeInstanceOf(CommitOutcomeUnknown);
    expect(abandon).not.toHaveBeenCalled();
  });

  it('says "unknown" when the connection is lost during COMMIT, and gives the connection up', async () => {
    const abandon = vi.fn();
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    await expect(awaitCommit('postgres', Promise.reject(lost), abandon)).rejects.toBeInstanceOf(CommitOutcomeUnknown);
    expect(abandon).toHaveBeenCalledOnce();
  });

  it('waits COMMIT_OUTCOME_MS for an answer, then says "unknown"', async () => {
    vi.useFakeTimers();
    try {
      const abandon = vi.fn();
      const waiting = awaitCommit('mysql', new Promise(() => undefined), abandon).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(COMMIT_OUTCOME_MS - 1);
      expect(abandon).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(await waiting).toBeInstanceOf(CommitOutcomeUnknown);
      expect(abandon).toHaveBeenCalledOnce();
    } finally {
      vi.useRealTimers();
    }
  });

  it('reaches the client as a 504 that says the outcome is unknown, not that it failed', () => {
    const e = toAppError(new CommitOutcomeUnknown('no answer'), 'pg_traffic', 1);
    expect(e).toBeInstanceOf(OutcomeUnknownError);
    expect((e as OutcomeUnknownError).statusCode).toBe(504);
    expect(e.message).toMatch(/^transaction outcome unknown for resource pg_traffic: .*may or may not have been written/);
  });
});

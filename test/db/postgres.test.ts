import { describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';

const skip = requireOrSkip('PostgreSQL', await pgAvailable());
const connector = (port?: number) => createConnector('pg_test', pgTarget(port ? { db_port: port } : {}));

/** An inspection connection of our own, opened per call (tests are short). */
async function admin<T>(sql: string, params: (string | number)[]): Promise<T[]> {
  const c = await connector().connect(900, 5);
  try {
    return (await c.query(sql, params, { timeoutSeconds: 5 })).rows as T[];
  } finally {
    await c.close();
  }
}

describe.skipIf(skip)('postgres', () => {
  driverSuite({
    name: 'postgres',
    connector: () => connector(),
    connectorAtPort: (port) => connector(port),
    sleepSql: 'SELECT pg_sleep(5)',
    manyRowsSql: (n) => `SELECT n FROM generate_series(1, ${n}) AS n`,
    textType: 'VARCHAR(100)',
    keepsConnectionAfterTimeout: true,
    sessionId: async (c) => Number((await c.query('SELECT pg_backend_pid() AS pid', [], { timeoutSeconds: 5 })).rows[0].pid),
    isBusy: async (pid) => (await admin(`SELECT 1 FROM pg_stat_activity WHERE pid = ? AND state = 'active'`, [pid])).length > 0,
    kill: async (pid) => {
      await admin('SELECT pg_terminate_backend(?)', [pid]);
    },
    dropTable: async (c, table) => {
      await c.query(`DROP TABLE IF EXISTS ${table}`, [], { timeoutSeconds: 5 });
    },
  });

  describe('postgres types', () => {
    it('returns int8 as a number when safe and as exact text otherwise; timestamps as UTC Dates', async () => {
      const c = await connector().connect(1, 5);
      try {
        const { rows } = await c.query(
          "SELECT count(*) AS c, 9007199254740993::int8 AS big, TIMESTAMP '2025-01-06 01:00:00' AS ts, ?::timestamp AS p",
          [new Date(Date.UTC(2025, 0, 6, 2))],
          { timeoutSeconds: 5 },
        );
        expect(rows[0].c).toBe(1);
        expect(rows[0].big).toBe('9007199254740993');
        expect((rows[0].ts as Date).toISOString()).toBe('2025-01-06T01:00:00.000Z');
        expect((rows[0].p as Date).toISOString()).toBe('2025-01-06T02:00:00.000Z');
      } finally {
        await c.close();
      }
    });

    it('times out a stream waiting on a slow statement and stops it on the server', async () => {
      const c = await connector().connect(2, 5);
      const pid = Number((await c.query('SELECT pg_backend_pid() AS pid', [], { timeoutSeconds: 5 })).rows[0].pid);
      const rows = c.stream('SELECT pg_sleep(5) AS s', [], { timeoutSeconds: 0.5 });
      await expect(
        (async () => {
          for await (const _ of rows) void _;
        })(),
      ).rejects.toMatchObject({ kind: 'timeout' });
      expect((await admin(`SELECT 1 FROM pg_stat_activity WHERE pid = ? AND state = 'active'`, [pid])).length).toBe(0);
      // The statement was stopped, so the connection is proven clean and kept.
      expect(c.usable).toBe(true);
      expect((await c.query('SELECT 2 AS two', [], { timeoutSeconds: 5 })).rows).toEqual([{ two: 2 }]);
      await c.close();
    });
  });
});

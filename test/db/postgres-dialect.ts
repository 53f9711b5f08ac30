/**
 * What the driver suite needs to know about PostgreSQL, shared by the native (pg) and ODBC
 * (psqlODBC) runs: both reach the same server, so sessions are inspected and ended the same way.
 */
import { createConnector } from '../../src/db/index.js';
import { pgTarget } from '../helpers/databases.js';
import type { Dialect } from './driver-suite.js';

/** Runs one statement on a short-lived native connection (for inspecting other sessions). */
export async function admin<T>(sql: string, params: (string | number)[] = []): Promise<T[]> {
  const c = await createConnector('pg_admin', pgTarget()).connect(900, 5);
  try {
    return (await c.query(sql, params, { timeoutSeconds: 5 })).rows as T[];
  } finally {
    await c.close();
  }
}

export const postgresDialect = {
  sleepSql: 'SELECT pg_sleep(5)',
  manyRowsSql: (n: number) => `SELECT n FROM generate_series(1, ${n}) AS n`,
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
} satisfies Partial<Dialect>;

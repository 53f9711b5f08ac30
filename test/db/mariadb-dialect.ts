/**
 * What the driver suite needs to know about MariaDB, shared by the native (mysql2) and ODBC runs:
 * both reach the same server, so sessions are inspected and killed the same way.
 */
import { createConnector } from '../../src/db/index.js';
import { mysqlTarget } from '../helpers/databases.js';
import type { Dialect } from './driver-suite.js';

/** Runs one statement on a short-lived native connection (for inspecting other sessions). */
export async function admin<T>(sql: string, params: (string | number)[] = []): Promise<T[]> {
  const c = await createConnector('mysql_admin', mysqlTarget()).connect(900, 5);
  try {
    return (await c.query(sql, params, { timeoutSeconds: 5 })).rows as T[];
  } finally {
    await c.close();
  }
}

export const mariadbDialect = {
  sleepSql: 'SELECT SLEEP(5)',
  // MariaDB's SEQUENCE engine makes rows without a table.
  manyRowsSql: (n: number) => `SELECT seq AS n FROM seq_1_to_${n}`,
  textType: 'VARCHAR(100)',
  keepsConnectionAfterTimeout: true,
  sessionId: async (c) => Number((await c.query('SELECT CONNECTION_ID() AS id', [], { timeoutSeconds: 5 })).rows[0].id),
  /** Whether the session runs a statement now (SHOW PROCESSLIST, as information_schema). */
  isBusy: async (id) => {
    const rows = await admin<{ COMMAND: string }>('SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
    return rows.length > 0 && rows[0].COMMAND !== 'Sleep';
  },
  kill: async (id) => {
    await admin(`KILL ${Number(id)}`);
  },
  dropTable: async (c, table) => {
    await c.query(`DROP TABLE IF EXISTS ${table}`, [], { timeoutSeconds: 5 });
  },
} satisfies Partial<Dialect>;

/**
 * The shared driver suite against PostgreSQL through psqlODBC ("PostgreSQL Unicode"): a driver that
 * is stopped with SQLCancel on the statement (not KILL QUERY, as MariaDB's is), fetches in blocks, and
 * takes its connection string's values unbraced where they need no braces.
 */
import { execFile } from 'node:child_process';
import pg from 'pg';
import { describe } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { pgAvailable, pgTarget, requireOrSkip, TEST_PG_URL } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';

const DRIVER = 'PostgreSQL Unicode';
const registered = await new Promise<string>((resolve) => execFile('odbcinst', ['-q', '-d'], (err, out) => resolve(err ? '' : out)));
const skip =
  requireOrSkip('PostgreSQL', await pgAvailable()) ||
  requireOrSkip(`ODBC (${DRIVER})`, registered.includes(`[${DRIVER}]`) ? { ok: true } : { ok: false, reason: `ODBC driver "${DRIVER}" not registered (odbcinst -q -d)` });

const target = (port?: number) => pgTarget({ db_type: 'odbc', db_driver: DRIVER, db_port: port ?? (pgTarget().db_port || 5432) });
const connector = (port?: number) => createConnector('odbc_pg_test', target(port));

async function admin(sql: string, params: unknown[]): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: TEST_PG_URL });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

describe.skipIf(skip)('odbc (PostgreSQL)', () => {
  driverSuite({
    name: 'odbc-postgres',
    connector: () => connector(),
    connectorAtPort: (port) => connector(port),
    sleepSql: 'SELECT pg_sleep(5)',
    manyRowsSql: (n) => `SELECT n FROM generate_series(1, ${n}) AS n`,
    textType: 'VARCHAR(100)',
    keepsConnectionAfterTimeout: true,
    sessionId: async (c) => Number((await c.query('SELECT pg_backend_pid() AS pid', [], { timeoutSeconds: 5 })).rows[0].pid),
    isBusy: async (pid) => (await admin(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pid])).length > 0,
    kill: async (pid) => {
      await admin('SELECT pg_terminate_backend($1)', [pid]);
    },
    dropTable: async (c, table) => {
      await c.query(`DROP TABLE IF EXISTS ${table}`, [], { timeoutSeconds: 5 });
    },
  });
});

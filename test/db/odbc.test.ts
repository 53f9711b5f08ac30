import { describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { odbcConnectionString } from '../../src/db/odbc.js';
import { mysqlTarget, odbcAvailable, odbcTarget, requireOrSkip } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';

const skip = requireOrSkip('ODBC (MariaDB)', await odbcAvailable());
const connector = (port?: number) => createConnector('odbc_test', odbcTarget(port ? { db_port: port } : {}));

/** Inspection goes through the native MySQL driver. */
async function admin<T>(sql: string, params: (string | number)[] = []): Promise<T[]> {
  const c = await createConnector('mysql_admin', mysqlTarget()).connect(900, 5);
  try {
    return (await c.query(sql, params, { timeoutSeconds: 5 })).rows as T[];
  } finally {
    await c.close();
  }
}

describe('odbc connection string', () => {
  it('braces every value so ; and } in a password are literal', () => {
    const s = odbcConnectionString({ ...odbcTarget(), db_host: 'db', db_port: 3307, db_name: 'x', db_user: 'u', db_password: 'p;w}d' });
    expect(s).toBe('DRIVER={MariaDB Unicode};SERVER={db};PORT={3307};DATABASE={x};UID={u};PWD={p;w}}d}');
  });
});

describe.skipIf(skip)('odbc', () => {
  it('returns BIGINT as a number when exact, else as text', async () => {
    const c = await connector().connect(1, 5);
    try {
      const { rows } = await c.query('SELECT COUNT(*) AS c, 9007199254740993 AS big FROM seq_1_to_3', [], { timeoutSeconds: 5 });
      expect(rows).toEqual([{ c: 3, big: '9007199254740993' }]);
    } finally {
      await c.close();
    }
  });

  driverSuite({
    name: 'odbc',
    connector: () => connector(),
    connectorAtPort: (port) => connector(port),
    sleepSql: 'SELECT SLEEP(5)',
    manyRowsSql: (n) => `SELECT seq AS n FROM seq_1_to_${n}`,
    textType: 'VARCHAR(100)',
    keepsConnectionAfterTimeout: true,
    streamRows: 20_000, // the MariaDB ODBC driver is read one row per fetch (see src/db/odbc.ts)
    sessionId: async (c) => Number((await c.query('SELECT CONNECTION_ID() AS id', [], { timeoutSeconds: 5 })).rows[0].id),
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
  });
});

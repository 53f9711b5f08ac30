import { describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { odbcConnectionString } from '../../src/db/odbc.js';
import { odbcAvailable, odbcTarget, requireOrSkip } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';
import { mariadbDialect } from './mariadb-dialect.js';

const skip = requireOrSkip('ODBC (MariaDB)', await odbcAvailable());
const connector = (port?: number) => createConnector('odbc_test', odbcTarget(port ? { db_port: port } : {}));

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
    ...mariadbDialect,
    streamRows: 20_000, // the MariaDB ODBC driver is read one row per fetch (see src/db/odbc.ts)
  });
});

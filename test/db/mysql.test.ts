import { describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { mysqlAvailable, mysqlTarget, requireOrSkip } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';
import { mariadbDialect } from './mariadb-dialect.js';

const skip = requireOrSkip('MySQL/MariaDB', await mysqlAvailable());
const connector = (port?: number) => createConnector('mysql_test', mysqlTarget(port ? { db_port: port } : {}));

describe.skipIf(skip)('mysql', () => {
  driverSuite({
    name: 'mysql',
    connector: () => connector(),
    connectorAtPort: (port) => connector(port),
    ...mariadbDialect,
  });

  describe('mysql types', () => {
    it('renders DATETIME as YYYY-MM-DD HH:MM:SS and keeps big integers exact', async () => {
      const c = await connector().connect(1, 5);
      try {
        const { rows } = await c.query(
          "SELECT CAST('2025-01-06 01:00:00' AS DATETIME) AS dh, 9007199254740993 AS big, COUNT(*) AS c FROM seq_1_to_3",
          [],
          { timeoutSeconds: 5 },
        );
        expect(rows).toEqual([{ dh: '2025-01-06 01:00:00', big: '9007199254740993', c: 3 }]);
      } finally {
        await c.close();
      }
    });

    it('times out a stream waiting on a slow statement and kills it on the server', async () => {
      const c = await connector().connect(2, 5);
      const id = Number((await c.query('SELECT CONNECTION_ID() AS id', [], { timeoutSeconds: 5 })).rows[0].id);
      const rows = c.stream('SELECT SLEEP(5) AS s', [], { timeoutSeconds: 0.5 });
      await expect(
        (async () => {
          for await (const _ of rows) void _;
        })(),
      ).rejects.toMatchObject({ kind: 'timeout' });
      expect(await mariadbDialect.isBusy(id)).toBe(false);
      // The statement was stopped, so the connection is proven clean and kept.
      expect(c.usable).toBe(true);
      expect((await c.query('SELECT 2 AS two', [], { timeoutSeconds: 5 })).rows).toEqual([{ two: 2 }]);
      await c.close();
    });
  });
});

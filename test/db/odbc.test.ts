import { describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { odbcConnectionString } from '../../src/db/odbc.js';
import { DbDriverError } from '../../src/db/types.js';
import { blackholeServer, odbcAvailable, odbcTarget, requireOrSkip, tcpRelay } from '../helpers/databases.js';
import { waitFor } from '../helpers/wait.js';
import { driverSuite } from './driver-suite.js';
import { admin, mariadbDialect } from './mariadb-dialect.js';
import { loopStallWhile } from '../helpers/loop-stall.js';

const skip = requireOrSkip('ODBC (MariaDB)', await odbcAvailable());
const connector = (port?: number) => createConnector('odbc_test', odbcTarget(port ? { db_port: port } : {}));

describe('odbc connection string', () => {
  it('braces the values that need it, so ; and } in a password are literal, and no others', () => {
    const s = odbcConnectionString({ ...odbcTarget(), db_host: 'db', db_port: 3307, db_name: 'x', db_user: 'u', db_password: 'p;w}d' });
    expect(s).toBe('DRIVER={MariaDB Unicode};SERVER=db;PORT=3307;DATABASE=x;UID=u;PWD={p;w}}d}');
  });

  it('bounds the handshake of MariaDB/MySQL drivers with CONN_TIMEOUT, and only theirs', () => {
    expect(odbcConnectionString({ ...odbcTarget(), db_driver: 'MariaDB Unicode' }, 3)).toMatch(/;CONN_TIMEOUT=3$/);
    expect(odbcConnectionString({ ...odbcTarget(), db_driver: 'MySQL ODBC 8.0 Unicode Driver' }, 2)).toMatch(/;CONN_TIMEOUT=2$/);
    expect(odbcConnectionString({ ...odbcTarget(), db_driver: 'PostgreSQL Unicode' }, 3)).not.toContain('CONN_TIMEOUT');
  });
});

const T = { timeoutSeconds: 10 };

/** Milliseconds to open a fresh connection to the test server, run one query and close it. */
async function freshRoundTripMs(connId: number): Promise<number> {
  const started = Date.now();
  const c = await connector().connect(connId, 5);
  try {
    expect((await c.query('SELECT 1 AS one', [], T)).rows).toEqual([{ one: 1 }]);
  } finally {
    await c.close();
  }
  return Date.now() - started;
}

// The odbc package runs connect and close under one process-wide lock that the main thread takes
// too: a driver call that never returns there would stop every ODBC connection and the event loop.
describe.skipIf(skip)('odbc: nothing waits on a server that does not answer', () => {
  it('gives up a connect to a server that never sends its greeting, so other connections still work', async () => {
    const open = await connector().connect(98, 5);
    const hole = await blackholeServer();
    try {
      const err = await connector(hole.port)
        .connect(97, 0.5)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DbDriverError);
      expect((err as DbDriverError).kind).toBe('timeout');
      // The silent server still holds that connect's socket, so only the driver's CONN_TIMEOUT (1 s)
      // ends the call. Until then the package's lock stops other connects, and the end of any query
      // (which takes the lock on the main thread) stops the event loop: for good without the timeout.
      const { stallMs, error } = await loopStallWhile(() => open.query('SELECT 1 AS one', [], T));
      expect(error).toBeUndefined();
      expect(stallMs).toBeLessThan(2000);
      expect(await freshRoundTripMs(96)).toBeLessThan(3000);
    } finally {
      await open.close();
      await hole.close();
    }
  });

  it('stops a statement without blocking the event loop when the server takes no new connections', async () => {
    const target = odbcTarget();
    const relay = await tcpRelay(target.db_host, target.db_port);
    const c = await connector(relay.port).connect(95, 5);
    try {
      // The running session still works; a side connection to stop it is not answered for 3 s.
      relay.silence(3000);
      const { stallMs, error } = await loopStallWhile(() => c.query('SELECT SLEEP(4)', [], { timeoutSeconds: 0.5 }));
      expect(error).toBeInstanceOf(DbDriverError);
      expect((error as DbDriverError).kind).toBe('timeout');
      // Not proven clean (the stop could not be sent), so it is not reused.
      expect(c.usable).toBe(false);
      expect(stallMs).toBeLessThan(1000);
    } finally {
      await c.close();
      await relay.close();
    }
  });

  it('closes a connection only once its statement has returned, and blocks no other connection meanwhile', async () => {
    const c = await connector().connect(94, 5);
    const session = Number((await c.query('SELECT CONNECTION_ID() AS id', [], T)).rows[0].id);
    const running = c.query('SELECT SLEEP(3)', [], T).catch((e: unknown) => e);
    await waitFor('SLEEP(3) to run on the server', () => mariadbDialect.isBusy(session), { timeout: 3000 });
    const { stallMs, error } = await loopStallWhile(async () => {
      const closing = c.close();
      expect(await freshRoundTripMs(93)).toBeLessThan(1500); // well before SLEEP(3) ends
      await closing;
    });
    expect(error).toBeUndefined();
    expect(stallMs).toBeLessThan(1000);
    await running;
    // The close happened after all, once the statement returned.
    const sessions = async () => (await admin('SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?', [session])).length;
    await expect.poll(sessions, { timeout: 5000, message: 'the closed connection\'s session' }).toBe(0);
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

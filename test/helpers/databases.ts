/**
 * Real test databases. Suites call pgAvailable()/mysqlAvailable()/odbcAvailable() once at the top,
 * then requireOrSkip(): a server that is down skips the suite locally (with the reason printed)
 * but fails it under CI=true, so CI can never go green by silently skipping.
 */
import { execFile } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { ensureDatabase } from '../../src/db/sample-data.js';
import { DEFAULT_MYSQL_URL, DEFAULT_PG_URL } from './test-databases-setup.js';

// Set by the user, or by the globalSetup test-databases-setup.ts for containers it started.
export const TEST_PG_URL = process.env.TEST_PG_URL || DEFAULT_PG_URL;
export const TEST_MYSQL_URL = process.env.TEST_MYSQL_URL || DEFAULT_MYSQL_URL;
export const TEST_ODBC_DRIVER = process.env.TEST_ODBC_DRIVER ?? 'MariaDB Unicode';

export type Availability = { ok: true } | { ok: false; reason: string };

export function pgTarget(overrides: Partial<SecureResourceSettings> = {}): SecureResourceSettings {
  return targetFromUrl(TEST_PG_URL, overrides);
}
export function mysqlTarget(overrides: Partial<SecureResourceSettings> = {}): SecureResourceSettings {
  return targetFromUrl(TEST_MYSQL_URL, overrides);
}
/** The MySQL test server reached through ODBC. */
export function odbcTarget(overrides: Partial<SecureResourceSettings> = {}): SecureResourceSettings {
  return targetFromUrl(TEST_MYSQL_URL, { db_type: 'odbc', db_driver: TEST_ODBC_DRIVER, db_port: targetFromUrl(TEST_MYSQL_URL).db_port || 3306, ...overrides });
}

/** Connects, creating the test database first when the server lacks it. */
async function reachable(target: SecureResourceSettings): Promise<Availability> {
  try {
    await ensureDatabase(target, 3);
    const conn = await createConnector('probe', target).connect(0, 3);
    try {
      await conn.ping(3);
    } finally {
      await conn.close();
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `${target.db_type} at ${target.db_host}:${target.db_port} unavailable: ${(err as Error).message}` };
  }
}

export function pgAvailable(): Promise<Availability> {
  return reachable(pgTarget());
}
export function mysqlAvailable(): Promise<Availability> {
  return reachable(mysqlTarget());
}

/** Whether unixODBC lists `driver` (odbcinst -q -d). */
export async function odbcDriverRegistered(driver: string): Promise<Availability> {
  const drivers = await new Promise<string>((resolve) => execFile('odbcinst', ['-q', '-d'], (err, out) => resolve(err ? '' : out)));
  return drivers.includes(`[${driver}]`) ? { ok: true } : { ok: false, reason: `ODBC driver "${driver}" not registered (odbcinst -q -d)` };
}

/** The odbc package loads, unixODBC lists the driver, and it reaches the MySQL test server. */
export async function odbcAvailable(): Promise<Availability> {
  const registered = await odbcDriverRegistered(TEST_ODBC_DRIVER);
  if (!registered.ok) return registered;
  const my = await mysqlAvailable();
  if (!my.ok) return my;
  return reachable(odbcTarget());
}

/** True when the suite should be skipped; throws under CI=true instead of skipping. */
export function requireOrSkip(name: string, availability: Availability): boolean {
  if (availability.ok) return false;
  const msg = `${name} tests: ${availability.reason}`;
  if (process.env.CI === 'true') throw new Error(`${msg} (CI=true: a missing test database is a failure)`);
  console.warn(`SKIPPED ${msg}`);
  return true;
}

/** A table or database name no other test run uses. */
export function uniqueName(prefix = 'wt_test'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

interface LoopbackServer {
  port: number;
  /** Closes the server and every socket it tracked. */
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1:`port` whose sockets (those `onConnection` passes to `track`) close with it. */
async function loopbackServer(port: number, onConnection: (client: Socket, track: (s: Socket) => void) => void): Promise<LoopbackServer> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    onConnection(client, track);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A TCP server that accepts connections and never says a word: proves connect timeouts fire. */
export function blackholeServer(): Promise<LoopbackServer> {
  return loopbackServer(0, () => undefined);
}

export interface TcpRelay extends LoopbackServer {
  /**
   * From now on new connections are accepted and never answered (a server that stopped answering),
   * each dropped after `dropAfterMs` so a client that waits on it without a timeout is freed at last.
   */
  silence(dropAfterMs: number): void;
}

/** A loopback TCP relay to a real server, on `port` (0: any free one). */
export async function tcpRelay(host: string, targetPort: number, port = 0): Promise<TcpRelay> {
  let dropAfterMs: number | undefined;
  const server = await loopbackServer(port, (client, track) => {
    if (dropAfterMs !== undefined) {
      setTimeout(() => client.destroy(), dropAfterMs).unref();
      return;
    }
    const upstream = connect(targetPort, host);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  return {
    ...server,
    silence: (ms) => {
      dropAfterMs = ms;
    },
  };
}

/** A loopback port nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const { port, close } = await blackholeServer();
  await close();
  return port;
}

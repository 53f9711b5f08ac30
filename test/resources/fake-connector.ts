/**
 * An in-memory DbConnector for unit tests of the pool logic: configurable connect delay and
 * failure, query delay, ping failure; it counts connections opened and close() calls per
 * connection. The real drivers are exercised end to end elsewhere.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DbDriverError, type DbConnection, type DbConnector, type QueryResult, type Row, type RowStream, type Statement } from '../../src/db/types.js';

export class FakeConnection implements DbConnection {
  readonly dbType = 'sqlite' as const;
  readonly createdAt = Date.now();
  usable = true;
  /** Set by a test to stand for a statement still running on the connection. */
  busy = false;
  closeCalls = 0;
  queries = 0;
  pings = 0;

  constructor(
    readonly resourceId: string,
    readonly connId: number,
    private readonly connector: FakeConnector,
  ) {}

  async query(): Promise<QueryResult> {
    this.queries++;
    if (this.connector.queryDelayMs > 0) await sleep(this.connector.queryDelayMs);
    return { rows: [{ one: 1 }], rowCount: 1 };
  }

  stream(): RowStream {
    this.queries++;
    const rows: Row[] = [{ one: 1 }];
    return {
      cancel: () => Promise.resolve(),
      [Symbol.asyncIterator]: async function* () {
        yield* rows;
      },
    };
  }

  async transaction(statements: Statement[]): Promise<number[]> {
    this.queries++;
    return statements.map(() => 1);
  }

  async ping(): Promise<void> {
    this.pings++;
    if (this.connector.pingFails) {
      this.usable = false;
      throw new DbDriverError('server has gone away', { kind: 'unreachable', connectionUsable: false });
    }
  }

  async close(): Promise<void> {
    this.closeCalls++;
  }
}

export class FakeConnector implements DbConnector {
  readonly dbType = 'sqlite' as const;
  connectDelayMs = 0;
  /** Set to make every connect fail with this kind ('unreachable' fails at once, 'timeout' after the timeout). */
  failConnect: 'unreachable' | 'timeout' | undefined;
  queryDelayMs = 0;
  pingFails = false;
  attempts = 0;
  /** Connection attempts under way now, and the most ever under way at once. */
  connecting = 0;
  maxConnecting = 0;
  readonly connections: FakeConnection[] = [];

  constructor(readonly resourceId = 'db_a') {}

  /** Connections opened and not closed yet. */
  get openNow(): number {
    return this.connections.filter((c) => c.closeCalls === 0).length;
  }

  /** Connections closed more than once: must stay 0. */
  get closedTwice(): number {
    return this.connections.filter((c) => c.closeCalls > 1).length;
  }

  async connect(connId: number, timeoutSeconds: number): Promise<DbConnection> {
    this.attempts++;
    this.connecting++;
    this.maxConnecting = Math.max(this.maxConnecting, this.connecting);
    try {
      return await this.open(connId, timeoutSeconds);
    } finally {
      this.connecting--;
    }
  }

  private async open(connId: number, timeoutSeconds: number): Promise<DbConnection> {
    if (this.failConnect === 'unreachable') throw new DbDriverError('connect ECONNREFUSED 127.0.0.1:1', { kind: 'unreachable', connectionUsable: false });
    const timeoutMs = timeoutSeconds * 1000;
    if (this.failConnect === 'timeout' || this.connectDelayMs >= timeoutMs) {
      await sleep(timeoutMs);
      throw new DbDriverError(`connect timed out after ${timeoutSeconds} s`, { kind: 'timeout', connectionUsable: false });
    }
    if (this.connectDelayMs > 0) await sleep(this.connectDelayMs);
    const conn = new FakeConnection(this.resourceId, connId, this);
    this.connections.push(conn);
    return conn;
  }
}

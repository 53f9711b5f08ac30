/**
 * Any database with an ODBC driver, through the optional `odbc` package (loaded on first use so the
 * gateway runs without it). Each statement carries the ODBC query timeout (SQL_ATTR_QUERY_TIMEOUT)
 * as the server-side safety net; our own timer fires first and stops the statement, then proves the
 * connection with SELECT 1, or marks it unusable.
 *
 * The odbc package runs connect and close under one process-wide lock, which the main thread also
 * takes (after each query, and when a connection object is collected). A driver call that never
 * returns while holding it therefore stalls every ODBC connection and the event loop. So:
 * - MariaDB/MySQL drivers get CONN_TIMEOUT: their login timeout does not cover the server's greeting,
 *   and a server that accepts but never answers would hold the lock for ever.
 * - They are stopped with KILL QUERY from a side connection (mysql2, asynchronous), not SQLCancel:
 *   the package calls SQLCancel on the main thread, where their driver opens that side connection
 *   synchronously, and, between calls, frees the statement under a fetch that is about to run.
 *   Other drivers get SQLCancel (connection.cancel).
 * - A connection is closed only once the driver has returned from every call on it: its disconnect
 *   would wait for a running statement while holding the lock.
 *
 * Streams use an ODBC cursor of a statement of their own (createStatement, prepare, bind, execute):
 * a cursor from connection.query owns its statement, and the package frees that statement when the
 * cursor closes on a worker thread, deleting a JavaScript reference there (odbc 2.6.0,
 * ODBCCursor::Free), which races with the main thread on V8's handle table: the gateway aborted
 * so, once, under clients leaving ("Check failed: node->IsInUse()"). A statement's cursor leaves
 * the statement alone, and closing the statement touches no JavaScript reference. Its SQLCancel is
 * the statement's own (connection.cancel reaches only connection.query's statements). The cursor is
 * fetched `BATCH_SIZE` rows at a time, except with the MariaDB/MySQL ODBC drivers: their block
 * fetch (row array size > 1) silently loses rows after the first block (seen with MariaDB
 * Connector/ODBC 3.1), so there the cursor fetches one row per call, which is correct but slower.
 *
 * Types: BIGINT (which the odbc package returns as a JS bigint) is a number when it fits in 2^53
 * and the exact decimal string otherwise, as with the other drivers.
 */
import type { SecureResourceSettings } from '../config/schema.js';
import { commented } from '../query/sql-comment.js';
import { BaseConnection } from './base.js';
import { connectError } from './classify.js';
import { exactInteger, exactIntegers } from './exact-integer.js';
import { killQuery } from './mysql.js';
import { noRowsQuery, odbcColumn, type OdbcColumn } from './result-columns.js';
import type { BatchSource } from './row-stream.js';
import { awaitCommit, Deadline, HOUSEKEEPING_MS, settledWithin, stopAndProve, timeoutError, toMs, withTimeout } from './timeout.js';
import { DbDriverError, type DbConnector, type LineEncoding, type QueryResult, type ResultColumn, type Row, type SqlParam, type Statement } from './types.js';

const BATCH_SIZE = 500;
export const ODBC_INSTALL_HINT = 'npm install odbc (it builds against unixODBC: apt-get install unixodbc-dev)';

/** The parts of the odbc package we use (declared here so the build does not need it installed). */
type OdbcParam = string | number | null;
interface OdbcResult extends Array<Row> {
  count: number;
  /** SQLDescribeCol of each result column. */
  columns?: OdbcColumn[];
}
interface OdbcStatement {
  prepare(sql: string): Promise<void>;
  bind(params: OdbcParam[]): Promise<void>;
  execute(options: OdbcQueryOptions): Promise<OdbcResult | OdbcCursor>;
  /** SQLCancel on this statement, on the main thread. */
  cancel(): Promise<void>;
  close(): Promise<void>;
}
interface OdbcCursor {
  noData: boolean;
  fetch(): Promise<OdbcResult>;
  close(): Promise<void>;
}
interface OdbcQueryOptions {
  timeout?: number;
  cursor?: boolean;
  fetchSize?: number;
}
interface OdbcConnection {
  query(sql: string, params: OdbcParam[], options: OdbcQueryOptions): Promise<OdbcResult | OdbcCursor>;
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  cancel(): Promise<void>;
  close(): Promise<void>;
  createStatement(): Promise<OdbcStatement>;
}
interface OdbcModule {
  connect(opts: { connectionString: string; connectionTimeout?: number; loginTimeout?: number }): Promise<OdbcConnection>;
}

let odbcModule: Promise<OdbcModule> | undefined;

async function loadOdbc(): Promise<OdbcModule> {
  const name = 'odbc'; // a variable, so type-checking does not require the optional package
  try {
    const mod = (await import(name)) as { default?: OdbcModule } & OdbcModule;
    return mod.default ?? mod;
  } catch (err) {
    odbcModule = undefined; // try again next time: it may get installed
    throw new DbDriverError(`ODBC support is not installed: ${ODBC_INSTALL_HINT}`, {
      kind: 'unreachable',
      connectionUsable: false,
      driverCode: 'WT_ODBC_MISSING',
      cause: err,
    });
  }
}

/** Fails (with the install step in the message) when the optional odbc package cannot be loaded. */
export async function requireOdbc(): Promise<void> {
  odbcModule ??= loadOdbc();
  await odbcModule;
}

/**
 * ODBC attribute value, braced when it holds `;`, `=`, a brace or a space, so they are taken
 * literally; otherwise as it is: psqlODBC reads a braced PORT={5432} as an invalid integer.
 */
function braced(v: string): string {
  return /[;={}\s]/.test(v) ? `{${v.replace(/}/g, '}}')}}` : v;
}

/** MariaDB/MySQL drivers: CONN_TIMEOUT, KILL QUERY, row-at-a-time cursors (see the top of this file). */
function isMysqlFamily(driver: string): boolean {
  return /maria|mysql/i.test(driver);
}

/** Drivers of servers whose EXPLAIN plans a statement without running it (MariaDB/MySQL, PostgreSQL). */
function explainsLike(driver: string): boolean {
  return isMysqlFamily(driver) || /postgres|psql/i.test(driver);
}

/** The connection string; with `connectSeconds`, a MariaDB/MySQL driver also bounds the handshake. */
export function odbcConnectionString(target: SecureResourceSettings, connectSeconds?: number): string {
  const parts: [string, string][] = [
    ['DRIVER', target.db_driver],
    ['SERVER', target.db_host],
    ['PORT', target.db_port ? String(target.db_port) : ''],
    ['DATABASE', target.db_name],
    ['UID', target.db_user],
    ['PWD', target.db_password],
    ['CONN_TIMEOUT', connectSeconds !== undefined && isMysqlFamily(target.db_driver) ? String(connectSeconds) : ''],
  ];
  return parts
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}=${braced(v)}`)
    .join(';');
}

/** 'YYYY-MM-DD HH:MM:SS.fff' in UTC: the ODBC timestamp literal every driver accepts. */
function toOdbcParam(p: SqlParam): OdbcParam {
  if (typeof p === 'boolean') return p ? 1 : 0;
  if (typeof p === 'bigint') return exactInteger(p);
  if (p instanceof Date) return p.toISOString().replace('T', ' ').replace('Z', '');
  return p;
}

/** bigint → number when exact, else its decimal text (JSON cannot carry a bigint). */
function normalize(rows: Row[]): Row[] {
  for (const row of rows) exactIntegers(row);
  return rows;
}

function isCursor(r: OdbcResult | OdbcCursor): r is OdbcCursor {
  return typeof (r as OdbcCursor).fetch === 'function';
}

/** The ODBC query timeout is whole seconds; it sits above our timer so our cancel runs first. */
function serverTimeout(ms: number): number {
  return Math.ceil(ms / 1000) + 1;
}

/** Exported for tests (a fake driver connection); the gateway gets it through odbcConnector. */
export class OdbcDbConnection extends BaseConnection {
  /** Driver calls that have not returned yet (see doClose). */
  private readonly inDriver = new Set<Promise<unknown>>();
  private readonly rowAtATime: boolean;

  /**
   * @param sessionId the server's id of this session where it can be stopped with KILL QUERY
   *   (MariaDB/MySQL drivers); otherwise undefined and statements are stopped with SQLCancel.
   */
  constructor(
    resourceId: string,
    connId: number,
    private readonly conn: OdbcConnection,
    private readonly target: SecureResourceSettings,
    private readonly sessionId: number | undefined,
  ) {
    super(resourceId, connId, 'odbc');
    this.rowAtATime = isMysqlFamily(target.db_driver);
  }

  /** Records a driver call until it returns. */
  private call<T>(op: Promise<T>): Promise<T> {
    this.inDriver.add(op);
    const done = () => this.inDriver.delete(op);
    op.then(done, done);
    return op;
  }

  /**
   * KILL QUERY where the session can be named (MariaDB/MySQL drivers), else SQLCancel: `sqlCancel`,
   * the connection's by default (it reaches connection.query's statements; a stream's is its statement's).
   */
  private cancelOnServer(sqlCancel: () => Promise<unknown> = () => this.conn.cancel()): Promise<unknown> {
    return this.sessionId !== undefined ? killQuery(this.target, this.sessionId) : sqlCancel();
  }

  /**
   * Settles once the driver has returned from every call on this connection. The package runs each
   * call in a thread of its own, and two at once on one connection (a cursor's close and the proof's
   * SELECT 1, say) race inside the driver: the gateway crashed so, rarely, under clients leaving.
   */
  private driverIdle(): Promise<unknown> {
    return Promise.allSettled([...this.inDriver]);
  }

  /** `sqlCancel`: see cancelOnServer. */
  private async stop(running: Promise<unknown> | undefined, sqlCancel?: () => Promise<unknown>): Promise<boolean> {
    const prove = async () => {
      await this.driverIdle();
      return this.call(this.conn.query('SELECT 1', [], {}));
    };
    const clean = await stopAndProve(running, () => this.cancelOnServer(sqlCancel), prove);
    if (!clean) this.markUnusable();
    return clean;
  }

  private async execute(sql: string, params: SqlParam[], ms: number): Promise<QueryResult> {
    const running = this.call(this.conn.query(sql, params.map(toOdbcParam), { timeout: serverTimeout(ms) }));
    const res = await this.stoppable(running, ms, () => this.stop(running), 'query');
    if (isCursor(res)) throw new Error('unexpected cursor');
    const rows = normalize(Array.from(res)); // a plain array, without the driver's extra properties
    return { rows, rowCount: rows.length > 0 ? rows.length : Math.max(0, res.count ?? 0) };
  }

  protected runQuery(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    return this.execute(commented(sql, comment), params, ms);
  }

  /**
   * EXPLAIN where the server has it; otherwise SQLPrepare, which runs nothing (some drivers only
   * send the statement to the server when it first runs, and so find fewer mistakes).
   */
  protected override async runPlan(sql: string, params: SqlParam[], ms: number): Promise<boolean> {
    if (explainsLike(this.target.db_driver)) return super.runPlan(sql, params, ms);
    const preparing = this.call(
      (async () => {
        const statement = await this.conn.createStatement();
        try {
          await statement.prepare(sql);
        } finally {
          await statement.close();
        }
      })(),
    );
    await this.stoppable(preparing, ms, () => this.stop(preparing), 'query');
    return true;
  }

  /** The wrapped statement's SQLDescribeCol: each column's SQL type and nullability. */
  protected async runDescribe(sql: string, params: SqlParam[], ms: number): Promise<ResultColumn[] | undefined> {
    const wrapped = noRowsQuery(sql);
    if (wrapped === undefined) return undefined;
    const running = this.call(this.conn.query(wrapped, params.map(toOdbcParam), { timeout: serverTimeout(ms) }));
    const res = await this.stoppable(running, ms, () => this.stop(running), 'query');
    if (isCursor(res)) throw new Error('unexpected cursor');
    return (res.columns ?? []).map(odbcColumn);
  }

  private bounded(op: Promise<void>, ms: number): Promise<void> {
    return this.stoppable(op, ms, () => this.stop(op), 'transaction');
  }

  /**
   * The query timeout covers the start and the statements; past it nothing is committed. Once the
   * commit is sent it is never cancelled: its own answer is awaited (see awaitCommit).
   */
  protected async runTransaction(statements: Statement[], ms: number): Promise<number[]> {
    const deadline = new Deadline(ms);
    await this.bounded(this.call(this.conn.beginTransaction()), deadline.remaining());
    const counts: number[] = [];
    try {
      for (const s of statements) counts.push((await this.execute(commented(s.sql, s.comment), s.params, deadline.remaining())).rowCount);
      if (deadline.expired()) throw timeoutError('transaction', ms / 1000, true);
    } catch (err) {
      if (this.usable) {
        try {
          await withTimeout(this.call(this.conn.rollback()), HOUSEKEEPING_MS, () => new Error('rollback timed out'));
        } catch {
          this.markUnusable(); // closing the connection rolls back
        }
      }
      throw err;
    }
    await awaitCommit('odbc', this.call(this.conn.commit()), () => this.markUnusable());
    return counts;
  }

  protected openStream(sql: string, params: SqlParam[], ms: number, _lines?: LineEncoding, comment?: string): BatchSource {
    sql = commented(sql, comment);
    /** The stream's own statement (see the module's comment), from its creation until closed. */
    let statement: OdbcStatement | undefined;
    let cursor: OdbcCursor | undefined;
    let pending: Promise<unknown> | undefined;
    let ended = false;
    const open = async (): Promise<OdbcCursor> => {
      const created = await this.conn.createStatement();
      statement = created;
      await created.prepare(sql);
      if (params.length > 0) await created.bind(params.map(toOdbcParam));
      const res = await created.execute({ cursor: true, fetchSize: this.rowAtATime ? 1 : BATCH_SIZE, timeout: serverTimeout(ms) });
      if (!isCursor(res)) throw new Error('the ODBC driver did not return a cursor');
      return res;
    };
    /** The close of the cursor, then of its statement, once begun: a second caller (next() failing, stop() after it) waits for the same one. */
    let closing: Promise<boolean> = Promise.resolve(true);
    const closeCursor = (): Promise<boolean> => {
      const c = cursor;
      const st = statement;
      if (c !== undefined || st !== undefined) {
        cursor = undefined;
        statement = undefined;
        const close = async () => {
          try {
            await c?.close();
          } finally {
            await st?.close();
          }
        };
        closing = settledWithin(this.call(close()), HOUSEKEEPING_MS);
      }
      return closing;
    };
    /** SQLCancel on the stream's own statement (connection.cancel does not reach it). */
    const sqlCancel = (): Promise<unknown> => statement?.cancel() ?? Promise.resolve();
    return {
      next: async () => {
        if (ended) return null;
        try {
          if (!cursor) {
            const opened = this.call(open());
            pending = opened;
            cursor = await opened;
            if (ended) return null; // stopped while opening: stop() closes the cursor once this returns
          }
          const rows: Row[] = [];
          while (rows.length < BATCH_SIZE) {
            if (ended) return null;
            const fetching = this.call(cursor.fetch());
            pending = fetching;
            const got = await fetching;
            rows.push(...got);
            if (cursor.noData || got.length === 0) {
              ended = true;
              await closeCursor();
              break;
            }
            if (!this.rowAtATime) break;
          }
          return rows.length > 0 ? normalize(rows) : null;
        } catch (err) {
          ended = true;
          await closeCursor();
          throw err;
        } finally {
          pending = undefined;
        }
      },
      stop: async () => {
        if (ended) return this.usable;
        ended = true;
        if (pending) {
          const running = pending;
          return this.stop(running.finally(() => closeCursor()), sqlCancel);
        }
        if (await closeCursor()) return true;
        this.markUnusable();
        return false;
      },
    };
  }

  /**
   * Closes once the driver has returned from every call on this connection: a disconnect behind a
   * running statement would wait for it under the package's process-wide lock. If the calls do not
   * return in time, the close still happens, later, when they do.
   */
  protected async doClose(): Promise<void> {
    const returned = Promise.allSettled([...this.inDriver]);
    if (await settledWithin(returned, HOUSEKEEPING_MS)) {
      await settledWithin(this.conn.close(), HOUSEKEEPING_MS);
    } else {
      returned.then(() => this.conn.close()).catch(() => undefined);
    }
  }
}

/** The server's id of a MariaDB/MySQL session, for KILL QUERY; on failure the connection is closed. */
async function sessionIdOf(conn: OdbcConnection, ms: number): Promise<number> {
  const asking = conn.query('SELECT CONNECTION_ID() AS id', [], { timeout: serverTimeout(ms) });
  try {
    const res = await withTimeout(asking, ms, () => new DbDriverError('ODBC connect timed out reading the session id', { kind: 'timeout', connectionUsable: false }));
    const id = isCursor(res) ? Number.NaN : Number(res[0]?.id);
    if (!Number.isSafeInteger(id)) throw new Error('the server did not report a session id');
    return id;
  } catch (err) {
    // Closed once the query has returned (see OdbcDbConnection.doClose).
    asking.then(() => undefined, () => undefined).then(() => conn.close()).catch(() => undefined);
    throw err;
  }
}

export function odbcConnector(resourceId: string, target: SecureResourceSettings): DbConnector {
  return {
    dbType: 'odbc',
    async connect(connId, timeoutSeconds) {
      const deadline = new Deadline(toMs(timeoutSeconds));
      try {
        odbcModule ??= loadOdbc();
        const odbc = await odbcModule;
        const seconds = Math.max(1, Math.ceil(timeoutSeconds));
        const connectionString = odbcConnectionString(target, seconds);
        const opening = odbc.connect({ connectionString, loginTimeout: seconds, connectionTimeout: seconds });
        // A connect that completes after we gave up is closed, not leaked.
        const conn = await withTimeout(opening, deadline.remaining(), () => {
          opening.then((c) => c.close()).catch(() => undefined);
          return new DbDriverError(`ODBC connect timed out after ${timeoutSeconds} s`, { kind: 'timeout', connectionUsable: false });
        });
        const sessionId = isMysqlFamily(target.db_driver) ? await sessionIdOf(conn, deadline.remaining()) : undefined;
        return new OdbcDbConnection(resourceId, connId, conn, target, sessionId);
      } catch (err) {
        throw connectError('odbc', err);
      }
    },
  };
}

/**
 * The contract every database driver implements. Drivers know nothing of requests, metrics or
 * logs: they run statements, bound every wait by a timeout, and report failures as DbDriverError
 * with a classification the pool and the Query layer act on.
 */
import type { DbType, SecureResourceSettings } from '../config/schema.js';
import type { LineFormat } from '../endpoints/row-encoders.js';

export type Row = Record<string, unknown>;
export type SqlParam = string | number | boolean | null | bigint | Date;

/**
 * Stops a running statement from outside, as its timeout would (an AbortSignal, or a request's
 * RequestResources when its client leaves). A COMMIT already sent is never stopped.
 */
export interface StatementSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface QueryOptions {
  /** Seconds the database may take; past it the statement is really stopped on the server. */
  timeoutSeconds: number;
  /** query() and transaction(): on abort the statement is stopped on the server and the call fails with kind 'cancelled'. */
  signal?: StatementSignal;
  /** stream() only: the rows come encoded as these lines (see EncodedRows). */
  lines?: LineEncoding;
  /**
   * query() and stream(): the request's sqlcommenter comment (sql_comment), sent after the SQL but
   * not after setup statements; kept apart from the SQL so drivers do their per-text work on the
   * text as written, which repeats (transaction(): each Statement carries its own).
   */
  comment?: string;
  /**
   * query() and transaction() only: statements run first in the same transaction, their results
   * dropped (a session role and settings that end with it). A query with setup runs in a
   * transaction of its own, committed when it succeeded; drivers without it refuse.
   */
  setup?: Statement[];
}

export interface QueryResult {
  rows: Row[];
  /** Rows returned, or rows affected for a statement without a result set. */
  rowCount: number;
}

export interface Statement {
  sql: string;
  params: SqlParam[];
  /** The request's sqlcommenter comment (sql_comment), sent after the SQL (see sql-comment.ts). */
  comment?: string;
}

/**
 * A row stream. Iterate it with `for await`; each wait for the database (first row, next batch)
 * is bounded by the query timeout, but a slow reader is not. Breaking out of the loop or calling
 * `cancel()` stops the statement and leaves the connection clean (or marks it unusable).
 */
export interface RowStream<T = Row> extends AsyncIterable<T> {
  cancel(): Promise<void>;
}

/**
 * A stream's rows as text (QueryOptions.lines): such a stream yields EncodedRows, encoded where the
 * statement runs by a driver that can (SQLite's worker thread), else batch by batch on the main
 * thread as the driver's rows arrive (encoded-batches.ts).
 */
export interface LineEncoding {
  format: LineFormat;
  /** What ends each line. */
  eol: string;
  /** What goes between two lines (json's comma). */
  separator: string;
  /** Rows to yield at most; the statement is stopped after them. */
  maxRows?: number;
}

/**
 * `rows` lines of a LineEncoding in `text` (a string, or its UTF-8 bytes), joined by its separator;
 * `columns`: the rows' columns.
 */
export class EncodedRows {
  constructor(
    readonly text: string | Buffer,
    readonly rows: number,
    readonly columns: readonly string[],
  ) {}
}

/** What a stream yields: rows, or also EncodedRows when its options ask for lines. */
export type StreamItem<O> = O extends { lines: LineEncoding } ? Row | EncodedRows : Row;

export interface DbConnection {
  readonly resourceId: string;
  readonly connId: number;
  readonly dbType: DbType;
  /** Date.now() when opened. */
  readonly createdAt: number;
  /** False once an error left the connection in an unknown state: it must be closed, never reused. */
  readonly usable: boolean;
  /**
   * True while a statement, transaction or stream runs on it (a stream until it is exhausted or
   * cancelled). A connection must never be lent out, or pooled, in that state.
   */
  readonly busy: boolean;

  /**
   * Runs one statement. SQL uses `?` positional placeholders for every driver (the postgres driver
   * rewrites them to $1..$n outside quoted text); values are always bound, never spliced.
   */
  query(sql: string, params: SqlParam[], opts: QueryOptions): Promise<QueryResult>;

  /** Runs one SELECT and yields its rows without holding them all in memory. */
  stream<O extends QueryOptions>(sql: string, params: SqlParam[], opts: O): RowStream<StreamItem<O>>;

  /**
   * Runs statements in one transaction: all commit or none do (rolled back on any error, including
   * a timeout). Returns the rows affected by each statement. The timeout covers the statements; a
   * COMMIT once sent is awaited, not cancelled, and without a clear answer the error is
   * CommitOutcomeUnknown (src/db/timeout.ts), never a failure that could be false.
   */
  transaction(statements: Statement[], opts: QueryOptions): Promise<number[]>;

  /** Proves the connection works (a trivial round trip) within the timeout. */
  ping(timeoutSeconds: number): Promise<void>;

  /** Closes the connection; safe to call more than once. */
  close(): Promise<void>;
}

/** One column of a statement's result: its name and the JSON schema of its values as the driver returns them. */
export interface ResultColumn {
  name: string;
  schema: Record<string, unknown>;
}

/**
 * What a driver connection can learn about a statement without running it (the start-up check and
 * `watchtower check`). Every built-in driver has it; see canInspect.
 */
export interface StatementInspector {
  /**
   * Has the database parse and plan the statement (EXPLAIN, or prepare where EXPLAIN is unknown)
   * with `params` bound, executing nothing. Throws the database's own error for a bad statement;
   * false when this kind of statement cannot be checked without running it.
   */
  plan(sql: string, params: SqlParam[], opts: QueryOptions): Promise<boolean>;
  /**
   * The columns a row-returning statement yields, read from the database without producing a row;
   * undefined when that cannot be learned without running it (a write, a call).
   */
  describe(sql: string, params: SqlParam[], opts: QueryOptions): Promise<ResultColumn[] | undefined>;
}

export function canInspect(conn: DbConnection): conn is DbConnection & StatementInspector {
  const c = conn as Partial<StatementInspector>;
  return typeof c.plan === 'function' && typeof c.describe === 'function';
}

export interface DbConnector {
  readonly dbType: DbType;
  /** Opens a connection within `timeoutSeconds`, or throws DbDriverError (kind 'unreachable' or 'timeout'). */
  connect(connId: number, timeoutSeconds: number): Promise<DbConnection>;
}

/** What a driver reports that only it can see, for metrics (every hook optional). */
export interface ConnectorHooks {
  /** A SQLite read stopped on the event loop at sqlite_inline_read_ms, to run again in its worker. */
  sqliteInlineOverrun?: () => void;
}

export type ConnectorFactory = (resourceId: string, target: SecureResourceSettings, hooks?: ConnectorHooks) => DbConnector;

/**
 * How a driver failure is classified (one table per driver, in ./classify.ts):
 * - timeout:     the statement ran past its limit and was stopped
 * - unreachable: no connection could be opened / the server went away (client sees 503)
 * - query:       the statement was wrong (syntax, unknown table/column); connection still usable
 * - constraint:  a constraint was violated; `duplicate` when it is a unique/primary key; usable
 * - broken:      anything else; the connection must not be reused
 * - cancelled:   stopped on the server because its signal aborted (the client left)
 */
export type DbErrorKind = 'timeout' | 'unreachable' | 'query' | 'constraint' | 'broken' | 'cancelled';

export class DbDriverError extends Error {
  readonly kind: DbErrorKind;
  /** Whether the connection that raised it may go back to the pool. */
  readonly connectionUsable: boolean;
  /** True for a unique/primary-key violation (client sees 409). */
  readonly duplicate: boolean;
  /** The driver's own error code, for logs (e.g. '42P01', 'ER_NO_SUCH_TABLE'). */
  readonly driverCode?: string;

  constructor(
    message: string,
    opts: { kind: DbErrorKind; connectionUsable: boolean; duplicate?: boolean; driverCode?: string; cause?: unknown },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DbDriverError';
    this.kind = opts.kind;
    this.connectionUsable = opts.connectionUsable;
    this.duplicate = opts.duplicate ?? false;
    this.driverCode = opts.driverCode;
  }
}

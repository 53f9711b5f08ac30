/**
 * What every driver connection shares: identity, the usable flag, one operation at a time, error
 * classification, and a close that runs once however often it is called.
 */
import type { DbType } from '../config/schema.js';
import { classifyError } from './classify.js';
import { encodedBatches } from './encoded-batches.js';
import { createRowStream, type BatchSource } from './row-stream.js';
import { statementKind } from './result-columns.js';
import {
  DbDriverError,
  type DbConnection,
  type EncodedRows,
  type LineEncoding,
  type QueryOptions,
  type QueryResult,
  type ResultColumn,
  type Row,
  type RowStream,
  type SqlParam,
  type Statement,
  type StatementInspector,
  type StatementSignal,
  type StreamItem,
} from './types.js';
import { runStoppable, toMs } from './timeout.js';

/** Statement kinds whose EXPLAIN (without ANALYZE) plans and executes nothing. */
const EXPLAINABLE = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'WITH']);

export abstract class BaseConnection implements DbConnection, StatementInspector {
  readonly createdAt = Date.now();
  private healthy = true;
  private running = false;
  private closing: Promise<void> | undefined;
  /** The cancel signal of the operation running now (there is one at a time), see stoppable(). */
  private signal: StatementSignal | undefined;

  constructor(
    readonly resourceId: string,
    readonly connId: number,
    readonly dbType: DbType,
  ) {}

  get usable(): boolean {
    return this.healthy && this.closing === undefined;
  }

  get busy(): boolean {
    return this.running;
  }

  /** Once unusable, always unusable: the pool will close it. */
  protected markUnusable(): void {
    this.healthy = false;
  }

  /** Classifies a driver error and marks the connection unusable when the error says so. */
  protected fail(err: unknown): DbDriverError {
    const e = classifyError(this.dbType, err);
    if (!e.connectionUsable) this.markUnusable();
    return e;
  }

  /** Claims the connection for one operation; a second concurrent one is a caller bug. */
  private enter(): void {
    if (!this.usable) {
      throw new DbDriverError(`connection ${this.connId} is ${this.closing ? 'closed' : 'unusable'}`, {
        kind: 'broken',
        connectionUsable: false,
        driverCode: 'WT_CLOSED',
      });
    }
    if (this.running) throw new Error(`connection ${this.connId} is already running a statement`);
    this.running = true;
  }

  /** Runs one operation exclusively, classifying whatever it throws; `signal` stops its statements (see stoppable()). */
  protected async exclusive<T>(fn: () => Promise<T>, signal?: StatementSignal): Promise<T> {
    this.enter();
    this.signal = signal;
    try {
      return await fn();
    } catch (err) {
      throw this.fail(err);
    } finally {
      this.running = false;
      this.signal = undefined;
    }
  }

  /**
   * runStoppable() under the running operation's signal: a statement is stopped on the server past
   * `ms` or when the signal aborts. Drivers run every statement of query() and transaction() through
   * it, but never a COMMIT once sent or a ROLLBACK.
   */
  protected stoppable<T>(op: Promise<T>, ms: number, stop: () => Promise<boolean>, what: string): Promise<T> {
    return runStoppable(op, ms, stop, what, this.signal);
  }

  /** True while the running operation's signal has aborted (a driver may stop more gently then). */
  protected get cancelling(): boolean {
    return this.signal?.aborted === true;
  }

  query(sql: string, params: SqlParam[], opts: QueryOptions): Promise<QueryResult> {
    const setup = opts.setup;
    if (setup !== undefined && setup.length > 0) return this.exclusive(() => this.runQueryAfter(setup, sql, params, toMs(opts.timeoutSeconds), opts.comment), opts.signal);
    return this.exclusive(() => this.runQuery(sql, params, toMs(opts.timeoutSeconds), opts.comment), opts.signal);
  }

  transaction(statements: Statement[], opts: QueryOptions): Promise<number[]> {
    const setup = opts.setup ?? [];
    // The setup's own counts are not the caller's.
    return this.exclusive(async () => (await this.runTransaction([...setup, ...statements], toMs(opts.timeoutSeconds))).slice(setup.length), opts.signal);
  }

  ping(timeoutSeconds: number): Promise<void> {
    return this.exclusive(async () => {
      await this.runQuery('SELECT 1', [], toMs(timeoutSeconds));
    });
  }

  stream<O extends QueryOptions>(sql: string, params: SqlParam[], opts: O): RowStream<StreamItem<O>> {
    this.enter();
    let source: BatchSource<Row | EncodedRows>;
    try {
      source = this.openStream(sql, params, toMs(opts.timeoutSeconds), opts.lines, opts.comment);
      if (opts.lines !== undefined) source = encodedBatches(source, opts.lines);
    } catch (err) {
      this.running = false;
      throw this.fail(err);
    }
    // Only a stream asked for lines yields EncodedRows (see encodedBatches), so the items are StreamItem<O>.
    return createRowStream(source as BatchSource<StreamItem<O>>, {
      timeoutMs: toMs(opts.timeoutSeconds),
      classify: (err) => this.fail(err),
      onFinish: (usable) => {
        if (!usable) this.markUnusable();
        this.running = false;
      },
    });
  }

  plan(sql: string, params: SqlParam[], opts: QueryOptions): Promise<boolean> {
    return this.exclusive(() => this.runPlan(sql, params, toMs(opts.timeoutSeconds)));
  }

  describe(sql: string, params: SqlParam[], opts: QueryOptions): Promise<ResultColumn[] | undefined> {
    return this.exclusive(() => this.runDescribe(sql, params, toMs(opts.timeoutSeconds)));
  }

  close(): Promise<void> {
    this.closing ??= this.doClose().catch(() => undefined);
    return this.closing;
  }

  /**
   * Runs one statement within `ms`, really stopping it on the server past that; `comment`: sent after
   * it (see sql-comment.ts `commented`). Likewise each Statement's comment in the others.
   */
  protected abstract runQuery(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult>;
  /** Runs statements all-or-nothing within `ms` in total. */
  protected abstract runTransaction(statements: Statement[], ms: number): Promise<number[]>;
  /** Runs `setup`, then the statement, in one transaction within `ms`; only drivers that implement it. */
  protected runQueryAfter(_setup: Statement[], _sql: string, _params: SqlParam[], _ms: number, _comment?: string): Promise<QueryResult> {
    return Promise.reject(new DbDriverError(`a statement with setup statements is not available on ${this.dbType}`, { kind: 'query', connectionUsable: true, driverCode: 'WT_UNSUPPORTED' }));
  }
  /** Prepares a row source; nothing is sent before its first next(). */
  /** `lines`: the rows may be yielded encoded (EncodedRows); a driver that cannot, ignores it. */
  protected abstract openStream(sql: string, params: SqlParam[], ms: number, lines?: LineEncoding, comment?: string): BatchSource<Row | EncodedRows>;
  /** EXPLAIN plans without executing on PostgreSQL, MySQL/MariaDB and SQLite; other kinds are not checked. */
  protected async runPlan(sql: string, params: SqlParam[], ms: number): Promise<boolean> {
    if (!EXPLAINABLE.has(statementKind(sql))) return false;
    await this.runQuery(`EXPLAIN ${sql}`, params, ms);
    return true;
  }
  /** The result columns of a statement, within `ms`, without producing a row (see StatementInspector). */
  protected abstract runDescribe(sql: string, params: SqlParam[], ms: number): Promise<ResultColumn[] | undefined>;
  /** Releases the driver connection; bounded, called once. */
  protected abstract doClose(): Promise<void>;
}

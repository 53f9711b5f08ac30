/**
 * Runs statements on a request's acquired connections: applies the timeout, records what ran (for
 * the query-stats record), reports each statement to metrics, and turns driver failures into the
 * AppErrors clients see.
 */
import { performance } from 'node:perf_hooks';
import { config, resourceSettingsOf, type SettingsReader } from '../config/index.js';
import { DbValueError, isTransientConnectionError, txRetryReason } from '../db/classify.js';
import { statementKind } from '../db/result-columns.js';
import { CommitOutcomeUnknown } from '../db/timeout.js';
import { DbDriverError, EncodedRows, type DbConnection, type LineEncoding, type QueryResult, type Row, type RowStream, type SqlParam, type Statement, type StreamItem } from '../db/types.js';
import { AppError, AppTimeoutError, BadRequestError, ClientClosedError, ConflictError, DatabaseError, OutcomeUnknownError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { requestComment } from './sql-comment.js';
import { StallWatch } from './stall-watch.js';
import { failures } from '../log/summarise.js';
import type { QueryEvent, RetryReason } from '../resources/events.js';
import type { RequestResources } from '../resources/request-resources.js';

const log = getLogger('query.ts');

export interface QueryRecord {
  resourceId: string;
  connId: number;
  sql: string;
  params: readonly SqlParam[];
  seconds: number;
  /** performance.now() when it was sent: where its span starts (src/tracing/). */
  startedAt: number;
  /** Rows returned or affected; 'streamed' when rows went straight to the client. */
  rowCount: number | 'streamed';
  /** A stream's rows taken by its consumer, once the stream has ended (for its trace span). */
  streamedRows?: number;
  /** Result rows, kept only for JSON results so they can be logged on demand. */
  results?: readonly Row[];
  /** Times it was run again (a read on a fresh connection, a transaction after a conflict). */
  retries?: number;
  /** Why it failed (the error's message); only on the records of failed statements. */
  error?: string;
}

/** How a transaction is named in its record: its one statement, or their number and the first. */
function transactionSql(statements: readonly Statement[]): string {
  return statements.length === 1 ? statements[0].sql : `${statements.length} statements: ${statements[0]?.sql ?? ''}`;
}

/** A retry needs at least this much of the statement's time left, or it is not tried. */
const MIN_RETRY_SECONDS = 0.05;

/**
 * Whether a statement only reads, so running it twice is as good as once: SELECT (and a WITH
 * without a data-modifying part), VALUES, TABLE, SHOW, EXPLAIN. A write is never run again.
 */
export function isRead(sql: string): boolean {
  const kind = statementKind(sql);
  if (kind === 'WITH') return !/\b(insert|update|delete|merge)\b/i.test(sql);
  return kind === 'SELECT' || kind === 'VALUES' || kind === 'TABLE' || kind === 'SHOW' || kind === 'EXPLAIN';
}

/** A short random pause before a transaction runs again, so two that collided do not collide again. */
function jitter(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
}

export type QueryListener = (ev: QueryEvent) => void;

/** What the runner needs of its request (the request's state, `req.wt`, is one). */
export interface QueryContext {
  readonly cid: string;
  /** The route template, named in the statements' sqlcommenter comment (sql_comment). */
  readonly endpoint?: string;
  /** What the request holds; statements and streams report to it. Absent on routes that declare no resources. */
  readonly resources?: RequestResources;
  /** Each statement's record is added here, for the query-stats record. */
  readonly queries: QueryRecord[];
  /** The records of statements that failed before any row (kept apart: query-stats counts what ran); for tracing. */
  failedQueries?: QueryRecord[];
  /** A stream whose client stopped reading is cut off through it. */
  readonly response?: import('node:http').ServerResponse;
}

/** What a route gives its runners: where statements are reported, and the live settings. */
export interface QueryDeps {
  onQuery: QueryListener;
  settings: SettingsReader;
}

export interface QueryOptions {
  /** Overrides the resource's db_default_query_timeout for this statement. */
  timeoutSeconds?: number;
  /**
   * Statements run first, in one transaction with the statement(s) (rows and transaction only; see
   * the driver's QueryOptions): the caller's database role and claims for row-level security.
   */
  setup?: Statement[];
  /** transaction(): runs after a serialization failure or deadlock, instead of the resource's tx_retries. */
  txRetries?: number;
  /** stream(): rows may come encoded as these lines (the driver's QueryOptions.lines). */
  lines?: LineEncoding;
}



/** Maps a driver failure to the client-facing error and writes the matching log record. */
export function toAppError(err: unknown, resourceId: string, timeoutSeconds: number, cid?: string): Error {
  if (!(err instanceof DbDriverError)) return err instanceof Error ? err : new Error(String(err));
  const fields = { resource_id: resourceId, error: err.message, driver_code: err.driverCode, conn_usable: err.connectionUsable, cid };
  if (err instanceof CommitOutcomeUnknown) {
    log.error('commit-unknown', 'COMMIT got no clear answer: the transaction may or may not have been written', fields);
    return new OutcomeUnknownError(
      `transaction outcome unknown for resource ${resourceId}: COMMIT was sent but no clear answer came, so the rows may or may not have been written; check before retrying`,
      { resourceId, cause: err },
    );
  }
  if (err.kind === 'cancelled') {
    // The client left while its statement ran: stopped on the server, so nobody waits for it.
    log.info('query-cancel', 'client left; its statement was stopped on the server', fields);
    return new ClientClosedError();
  }
  if (err instanceof DbValueError) {
    // Validation should have refused the value first; the database's message names it.
    log.info('query-err', 'the database refused a value', fields);
    return new BadRequestError(`value refused by the database for resource ${resourceId}: ${err.message}`, { resourceId, cause: err });
  }
  // Summarised per tag, resource and code (src/log/summarise.ts): a database that goes away or hangs
  // fails every request the same way.
  const failed = (tag: string, msg: string, f: Record<string, unknown>) => failures.write(`${tag} ${resourceId} ${err.driverCode ?? ''}`, log.error, tag, msg, f);
  switch (err.kind) {
    case 'timeout':
      failed('query-timeout', 'query ran past its timeout and was stopped', { ...fields, timeout: timeoutSeconds });
      return new AppTimeoutError(`${timeoutSeconds}-sec timeout waiting for DB query or fetch from resource ${resourceId}`, {
        resourceId,
        kind: 'query',
        timeoutSeconds,
        cause: err,
      });
    case 'unreachable':
      failed('query-err', 'database went away during the query', fields);
      return new DatabaseError(`could not open a DB connection to resource ${resourceId}`, { resourceId, unreachable: true, cause: err });
    case 'constraint':
      log.info('query-err', 'statement violated a constraint', fields);
      return err.duplicate
        ? new ConflictError(`duplicate row for resource ${resourceId}: a row with the same key already exists`, { resourceId, cause: err })
        : new BadRequestError(`constraint violated for resource ${resourceId}: ${err.message}`, { resourceId, cause: err });
    default:
      failed('query-err', 'query failed', fields);
      return new DatabaseError(`DB query error for resource ${resourceId}`, { resourceId, cause: err });
  }
}

/** The queries of one request, run on the connections it holds. */
export class RequestQueries {
  constructor(
    private readonly state: QueryContext,
    private readonly onQuery: QueryListener,
    /** The live settings (query and stall timeouts); the process config by default. */
    private readonly settings: SettingsReader = config,
  ) {}

  private timeoutFor(resourceId: string, opts?: QueryOptions): number {
    return opts?.timeoutSeconds ?? resourceSettingsOf(this.settings(), resourceId).db_default_query_timeout;
  }

  /**
   * The request's sqlcommenter comment when the resource's sql_comment is on, which the driver sends
   * after each statement. Records keep the SQL as written (the comment would make every query-stats
   * record differ).
   */
  private comment(resourceId: string): string | undefined {
    if (!resourceSettingsOf(this.settings(), resourceId).sql_comment) return undefined;
    return requestComment(this.state.cid, this.state.endpoint);
  }

  /** What the request holds (a route that declares no resources has nothing to run on). */
  private held(resourceId: string): RequestResources {
    const held = this.state.resources;
    if (!held) throw new Error(`route ran a query on ${resourceId} without declaring it in config.resources`);
    return held;
  }

  private report(resourceId: string, started: number, rows: number | undefined, err?: unknown, stalled?: true, retries?: readonly RetryReason[]): number {
    const seconds = (performance.now() - started) / 1000;
    // 'constraint' apart: a duplicate key or other violation is the client's mistake (409/400), not a
    // server-side failure; a statement stopped because its client left is no failure at all.
    const kind = err instanceof DbDriverError ? err.kind : undefined;
    const error = err === undefined || kind === 'cancelled' ? undefined : kind === 'timeout' || kind === 'constraint' ? kind : 'other';
    this.onQuery(retries === undefined ? { resourceId, seconds, rows, error, stalled } : { resourceId, seconds, rows, error, stalled, retries });
    return seconds;
  }

  /**
   * After a read lost its connection: another connection of the resource, within what is left of
   * the statement's time; undefined when the error is no lost connection, no time is left or the
   * request has ended. Throws the pool's error (503, 504) when no connection can be had.
   */
  private async freshConnection(held: RequestResources, resourceId: string, err: unknown, leftSeconds: number): Promise<DbConnection | undefined> {
    if (!isTransientConnectionError(err) || held.aborted || leftSeconds < MIN_RETRY_SECONDS) return undefined;
    log.info('query-retry', 'connection lost under a read; running it again on a fresh connection', {
      resource_id: resourceId,
      error: err instanceof Error ? err.message : String(err),
      driver_code: err instanceof DbDriverError ? err.driverCode : undefined,
      cid: this.state.cid,
    });
    return held.renewConnection(resourceId, leftSeconds * 1000);
  }

  /** freshConnection(), its failure as a value: the connection, undefined (no retry), or why none could be had. */
  private retryOn(held: RequestResources, resourceId: string, err: unknown, leftSeconds: number): Promise<DbConnection | undefined | Error> {
    return this.freshConnection(held, resourceId, err, leftSeconds).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  }

  /** Runs one statement and returns all its rows. */
  async rows(resourceId: string, sql: string, params: SqlParam[], opts?: QueryOptions): Promise<Row[]> {
    const held = this.held(resourceId);
    const conn = held.connection(resourceId);
    const timeoutSeconds = this.timeoutFor(resourceId, opts);
    const started = performance.now();
    // Counted as running until it settles: the request's end, and the early releases, wait for it
    // (a handler that failed beside a running statement, under Promise.all, must not return it busy);
    // the request's end also stops it on the server (`held` is its signal).
    if (held.aborted) throw new ClientClosedError();
    held.statementStarted();
    let result: QueryResult;
    const comment = this.comment(resourceId);
    let on = conn;
    let retries: RetryReason[] | undefined;
    for (;;) {
      const left = timeoutSeconds - (performance.now() - started) / 1000;
      try {
        result = await on.query(sql, params, { timeoutSeconds: retries === undefined ? timeoutSeconds : left, setup: opts?.setup, signal: held, comment });
        break;
      } catch (err) {
        // A read whose connection was lost runs once more, on a fresh connection, within its own time.
        const fresh = retries === undefined && isRead(sql) ? await this.retryOn(held, resourceId, err, timeoutSeconds - (performance.now() - started) / 1000) : undefined;
        if (fresh === undefined || fresh instanceof Error) {
          held.statementEnded();
          this.noteFailure({ resourceId, connId: on.connId, sql, params, seconds: 0, startedAt: started, rowCount: 0 }, err);
          throw this.failed(resourceId, started, timeoutSeconds, err, fresh instanceof AppError ? fresh : undefined);
        }
        on = fresh;
        retries = ['connection'];
      }
    }
    held.statementEnded();
    const seconds = this.report(resourceId, started, result.rowCount, undefined, undefined, retries);
    this.state.queries.push({ resourceId, connId: on.connId, sql, params, seconds, startedAt: started, rowCount: result.rowCount, results: result.rows, retries: retries?.length });
    return result.rows;
  }

  /**
   * A statement failed (and was counted as ended): report it and map the error for the client, or
   * answer with `instead` (why a retry could not run: no connection could be had).
   */
  private failed(resourceId: string, started: number, timeoutSeconds: number, err: unknown, instead?: AppError, retries?: readonly RetryReason[]): Error {
    this.report(resourceId, started, undefined, err, undefined, retries);
    const mapped = toAppError(err, resourceId, timeoutSeconds, this.state.cid);
    return instead ?? mapped;
  }

  /** Keeps the record of a statement that failed before any row (a rare path), with its time and error. */
  private noteFailure(record: QueryRecord, err: unknown): void {
    record.seconds = (performance.now() - record.startedAt) / 1000;
    record.error = err instanceof Error ? err.message : String(err);
    (this.state.failedQueries ??= []).push(record);
  }

  /**
   * Starts a streamed SELECT and waits for its first row, so a failing query still gets a proper
   * status code; later failures can only cut the stream short. Rows are yielded as they come.
   */
  async stream<O extends QueryOptions>(resourceId: string, sql: string, params: SqlParam[], opts?: O): Promise<AsyncGenerator<StreamItem<O>, void, void>> {
    const state = this.state;
    const held = this.held(resourceId);
    const conn = held.connection(resourceId);
    const timeoutSeconds = this.timeoutFor(resourceId, opts);
    const started = performance.now();
    const comment = this.comment(resourceId);
    // Rows, or with opts.lines also EncodedRows (counted by their rows below).
    const lines = opts?.lines;
    let rowStream: RowStream<Row | EncodedRows> = conn.stream(sql, params, { timeoutSeconds, lines, comment });
    let iterator = rowStream[Symbol.asyncIterator]();
    const record: QueryRecord = { resourceId, connId: conn.connId, sql, params, seconds: 0, startedAt: started, rowCount: 'streamed' };
    // The outcome is recorded once, by whichever side ends the stream first: the rows running out,
    // an error, the consumer leaving the loop, or the request ending (client gone). Only the last
    // two leave a statement running on the server, which is then cancelled before release.
    let recorded = false;
    let retries: RetryReason[] | undefined;
    const finish = (err?: unknown, stalled?: true): boolean => {
      if (recorded) return false;
      recorded = true;
      record.seconds = this.report(resourceId, started, undefined, err, stalled, retries);
      return true;
    };
    let cancelling: Promise<void> | undefined;
    const cancel = () => (cancelling ??= rowStream.cancel().catch(() => undefined));
    // Registered before the first row is awaited: a client that leaves while the statement starts
    // (or a handler that never consumes the rows) still has it stopped before the connection goes back.
    const cleanup = async () => {
      if (finish()) await cancel();
      else if (cancelling) await cancelling;
    };
    held.addCleanup(cleanup);
    let first: IteratorResult<Row | EncodedRows>;
    // Running until its first row; from then on the cleanup stands for it.
    held.statementStarted();
    for (;;) {
      try {
        first = await iterator.next();
        break;
      } catch (err) {
        // The row stream has ended itself on the error; there is nothing left to stop. Before its
        // first row a stream is a read nobody has seen yet: once more on a fresh connection.
        const left = timeoutSeconds - (performance.now() - started) / 1000;
        const fresh = retries === undefined ? await this.retryOn(held, resourceId, err, left) : undefined;
        if (fresh === undefined || fresh instanceof Error) {
          held.removeCleanup(cleanup);
          recorded = true;
          held.statementEnded();
          this.noteFailure(record, err);
          throw this.failed(resourceId, started, timeoutSeconds, err, fresh instanceof AppError ? fresh : undefined, retries);
        }
        retries = ['connection'];
        record.connId = fresh.connId;
        record.retries = 1;
        rowStream = fresh.stream(sql, params, { timeoutSeconds: left, lines, comment });
        iterator = rowStream[Symbol.asyncIterator]();
      }
    }
    held.statementEnded();
    // Until the stream ends, its time to the first row (what Server-Timing can say before the body).
    if (!recorded) record.seconds = (performance.now() - started) / 1000;
    state.queries.push(record);
    let exhausted = false;
    const cid = state.cid;
    const settings = this.settings;
    const stallTimeout = () => resourceSettingsOf(settings(), resourceId).stream_stall_timeout;
    // A client that stops reading would hold the statement, its slot and its connection for as long
    // as it likes (a PostgreSQL backend idle in a transaction with an old snapshot): past
    // stream_stall_timeout the stream is ended, the statement stopped and the response cut off.
    const onStall = (idleSeconds: number) => {
      log.warning('stream-stalled', 'client stopped reading a stream; ended it and stopped its statement', {
        resource_id: resourceId,
        stall_timeout: stallTimeout(),
        idle: Math.round(idleSeconds * 1000) / 1000,
        cid,
      });
      if (finish(undefined, true)) void cancel();
      state.response?.destroy();
    };
    return (async function* rows() {
      let watch: StallWatch | undefined;
      let taken = 0;
      try {
        // Done at once also when the request ended while the first row was awaited (the cleanup cancelled it).
        if (first.done || recorded) {
          exhausted = first.done === true;
          return;
        }
        watch = new StallWatch(stallTimeout, onStall);
        watch.waitingForConsumer();
        yield first.value as StreamItem<O>;
        taken += first.value instanceof EncodedRows ? first.value.rows : 1;
        watch.progressed();
        for (;;) {
          const next = await iterator.next();
          if (next.done) {
            exhausted = true;
            return;
          }
          watch.waitingForConsumer();
          yield next.value as StreamItem<O>;
          taken += next.value instanceof EncodedRows ? next.value.rows : 1;
          watch.progressed();
        }
      } catch (err) {
        finish(err);
        record.error = err instanceof Error ? err.message : String(err);
        throw toAppError(err, resourceId, timeoutSeconds, cid);
      } finally {
        record.streamedRows = taken;
        watch?.stop();
        if (finish() && !exhausted) await cancel();
      }
    })();
  }

  /**
   * The handler is done with the database: give its slots and connections back now, so a queued
   * request starts while this one's reply is serialized and written. Optional (a complete reply
   * releases them anyway) and idempotent; a query after it fails. Does nothing while a statement
   * or stream of the request still runs: the request's end releases then.
   *
   * Resolves at the event loop's next check phase (setImmediate). A handler that awaits it writes
   * its reply only after the request it let in, and every other callback of this loop turn, has
   * sent its statement: the database works while the replies go out, instead of idling behind
   * them (bench/README.md, "Reply after the hand-off"); without a queue it costs one loop turn.
   */
  release(): Promise<void> {
    this.state.resources?.releaseIfIdle();
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Runs statements in one transaction: all or nothing. Returns the rows affected by each. */
  async transaction(resourceId: string, statements: Statement[], opts?: QueryOptions): Promise<number[]> {
    const held = this.held(resourceId);
    const conn = held.connection(resourceId);
    const timeoutSeconds = this.timeoutFor(resourceId, opts);
    const started = performance.now();
    if (held.aborted) throw new ClientClosedError();
    const maxRetries = opts?.txRetries ?? resourceSettingsOf(this.settings(), resourceId).tx_retries;
    held.statementStarted();
    const comment = this.comment(resourceId);
    const sent = comment === undefined ? statements : statements.map((s) => ({ ...s, comment }));
    let counts: number[];
    let retries: RetryReason[] | undefined;
    for (;;) {
      const left = timeoutSeconds - (performance.now() - started) / 1000;
      try {
        counts = await conn.transaction(sent, { timeoutSeconds: retries === undefined ? timeoutSeconds : left, setup: opts?.setup, signal: held });
        break;
      } catch (err) {
        // Rolled back by the database to resolve a conflict: nothing was written, so it runs again
        // from the start (on the same connection, still clean), within the same query timeout.
        const reason = (retries?.length ?? 0) < maxRetries ? txRetryReason(err) : undefined;
        if (reason === undefined || !conn.usable || held.aborted || timeoutSeconds - (performance.now() - started) / 1000 < MIN_RETRY_SECONDS) {
          held.statementEnded();
          this.noteFailure({ resourceId, connId: conn.connId, sql: transactionSql(statements), params: [], seconds: 0, startedAt: started, rowCount: 0, retries: retries?.length }, err);
          throw this.failed(resourceId, started, timeoutSeconds, err, undefined, retries);
        }
        (retries ??= []).push(reason);
        log.info('query-retry', `transaction rolled back (${reason}); running it again`, {
          resource_id: resourceId,
          driver_code: err instanceof DbDriverError ? err.driverCode : undefined,
          attempt: retries.length + 1,
          cid: this.state.cid,
        });
        await jitter(retries.length);
      }
    }
    held.statementEnded();
    const total = counts.reduce((a, b) => a + b, 0);
    const seconds = this.report(resourceId, started, total, undefined, undefined, retries);
    this.state.queries.push({
      resourceId,
      connId: conn.connId,
      sql: transactionSql(statements),
      params: [],
      seconds,
      startedAt: started,
      rowCount: total,
      retries: retries?.length,
    });
    return counts;
  }
}

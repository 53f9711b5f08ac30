/**
 * MySQL / MariaDB through mysql2, one connection each. Statements run as server-side prepared
 * statements (execute), so values are bound by the server, never spliced into the SQL text.
 * A timeout sends KILL QUERY <thread id> from a short-lived second connection, waits for the
 * statement to end and proves the connection with SELECT 1, or marks it unusable.
 *
 * Types: DATETIME/DATE come back as 'YYYY-MM-DD HH:MM:SS' strings (dateStrings); BIGINT is a
 * number when it fits in 2^53 and the exact decimal string otherwise; DECIMAL stays a string.
 * The session time zone is UTC, so Date parameters are written as UTC.
 */
import mysql, { type FieldPacket } from 'mysql2';
import type { SecureResourceSettings } from '../config/schema.js';
import { BaseConnection } from './base.js';
import { connectError } from './classify.js';
import { commented } from '../query/sql-comment.js';
import { asBinaryProtocol, inlineValues } from './mysql-inline.js';
import { mysqlColumn, noRowsQuery, type MysqlField } from './result-columns.js';
import { readableBatches, type BatchSource } from './row-stream.js';
import { awaitCommit, Deadline, HOUSEKEEPING_MS, runStoppable, settledWithin, stopAndProve, timeoutError, toMs, withTimeout } from './timeout.js';
import { DbDriverError, type DbConnector, type LineEncoding, type QueryResult, type ResultColumn, type Row, type SqlParam, type Statement } from './types.js';

const BATCH_SIZE = 500;
/** Prepared statements cached per connection (mysql2's default of 16000 would hold server memory). */
const MAX_PREPARED = 64;

type MysqlParam = string | number | boolean | null | Date;

function toMysqlParam(p: SqlParam): MysqlParam {
  return typeof p === 'bigint' ? p.toString() : p;
}

export function mysqlOptions(target: SecureResourceSettings, connectMs: number): mysql.ConnectionOptions {
  return {
    host: target.db_host,
    port: target.db_port || 3306,
    database: target.db_name || undefined,
    user: target.db_user || undefined,
    password: target.db_password || undefined,
    connectTimeout: connectMs,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    timezone: 'Z',
    enableKeepAlive: true,
    maxPreparedStatements: MAX_PREPARED,
    queryFormat: sqlAsWritten,
  };
}

/**
 * The text protocol's statements go out as written: values are bound by execute() or inlined
 * before (mysql-inline.ts). mysql2's own formatter scanned every commented statement for `?`
 * even without values, about 2 µs a request with sql_comment on.
 */
function sqlAsWritten(sql: string, values: unknown): string {
  if (Array.isArray(values) && values.length > 0) throw new Error('text-protocol MySQL statements take no values: bind them with execute()');
  return sql;
}

/** Opens a connection, bounded by `ms`; rejects with the driver's error. */
function openConnection(options: mysql.ConnectionOptions, ms: number): Promise<mysql.Connection> {
  const conn = mysql.createConnection(options);
  conn.on('error', () => undefined); // reported through the pending operation instead
  const opened = new Promise<mysql.Connection>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve(conn))));
  return withTimeout(opened, ms, () => {
    conn.destroy();
    return new DbDriverError(`MySQL connect timed out after ${ms / 1000} s`, { kind: 'timeout', connectionUsable: false });
  }).catch((err: unknown) => {
    conn.destroy();
    throw err;
  });
}

/**
 * mysql2 keeps each statement prepared on its connection, by SQL text (up to 16000 of them). A
 * statement carrying its request's comment (sql_comment) is never run again, so it is closed once
 * run: kept, a pool's connections would soon exceed the server's max_prepared_stmt_count (16382
 * for all sessions) and crowd out the statements worth keeping. It costs a prepare per statement.
 */
function forget(conn: mysql.Connection, sql: string, comment: string | undefined): void {
  if (comment !== undefined) conn.unprepare(sql);
}

function run(conn: mysql.Connection, sql: string, values: MysqlParam[], comment: string | undefined): Promise<QueryResult> {
  return new Promise((resolve, reject) => {
    const done = (err: mysql.QueryError | null, result: unknown) => {
      if (err) return reject(err);
      if (Array.isArray(result)) resolve({ rows: result as Row[], rowCount: result.length });
      else resolve({ rows: [], rowCount: (result as mysql.ResultSetHeader).affectedRows ?? 0 });
    };
    // A commented statement is new text each time: one round trip with its values inlined, where
    // they can be written exactly (see mysql-inline.ts), instead of a PREPARE of its own.
    const inlined = comment === undefined ? undefined : inlineValues(sql, values);
    if (inlined !== undefined) {
      conn.query({ sql: commented(inlined, comment) }, (err, result, fields) => {
        if (!err && Array.isArray(result)) asBinaryProtocol(result as Row[], fields as FieldPacket[] | undefined);
        done(err, result);
      });
      return;
    }
    const text = commented(sql, comment);
    conn.execute({ sql: text, values }, (err, result) => {
      forget(conn, text, comment);
      done(err, result);
    });
  });
}

/** The column definitions of a statement's result (its rows are not kept). */
function fieldsOf(conn: mysql.Connection, sql: string, values: MysqlParam[]): Promise<MysqlField[]> {
  return new Promise((resolve, reject) => {
    conn.execute({ sql, values }, (err, _result, fields) => (err ? reject(err) : resolve((fields ?? []) as unknown as MysqlField[])));
  });
}

/**
 * Stops the statement running in session `threadId` with KILL QUERY from a short-lived second
 * connection (also used for MariaDB/MySQL reached through ODBC). Bounded by HOUSEKEEPING_MS.
 */
export async function killQuery(target: SecureResourceSettings, threadId: number): Promise<void> {
  if (!Number.isSafeInteger(threadId)) throw new Error(`no session id to stop: ${threadId}`);
  const side = await openConnection(mysqlOptions(target, HOUSEKEEPING_MS), HOUSEKEEPING_MS);
  try {
    // KILL is not preparable; the id is an integer we checked, so the text is safe.
    const kill = new Promise<void>((resolve, reject) => side.query(`KILL QUERY ${threadId}`, (err) => (err ? reject(err) : resolve())));
    await withTimeout(kill, HOUSEKEEPING_MS, () => new Error('KILL QUERY timed out'));
  } finally {
    side.destroy();
  }
}

class MysqlConnection extends BaseConnection {
  constructor(
    resourceId: string,
    connId: number,
    private readonly conn: mysql.Connection,
    private readonly target: SecureResourceSettings,
  ) {
    super(resourceId, connId, 'mysql');
    conn.on('error', () => this.markUnusable());
    conn.on('end', () => this.markUnusable());
  }

  private async stop(running: Promise<unknown> | undefined): Promise<boolean> {
    const clean = await stopAndProve(running, () => killQuery(this.target, Number(this.conn.threadId)), () => run(this.conn, 'SELECT 1', [], undefined));
    if (!clean) this.markUnusable();
    return clean;
  }

  private execute(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    const running = run(this.conn, sql, params.map(toMysqlParam), comment);
    return this.stoppable(running, ms, () => this.stop(running), 'query');
  }

  protected runQuery(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    return this.execute(sql, params, ms, comment);
  }

  /** The wrapped statement's column definitions: types and nullability as the server computes them for the result. */
  protected async runDescribe(sql: string, params: SqlParam[], ms: number): Promise<ResultColumn[] | undefined> {
    const wrapped = noRowsQuery(sql);
    if (wrapped === undefined) return undefined;
    const running = fieldsOf(this.conn, wrapped, params.map(toMysqlParam));
    return (await this.stoppable(running, ms, () => this.stop(running), 'query')).map(mysqlColumn);
  }

  /**
   * The query timeout covers START TRANSACTION and the statements; past it nothing is committed.
   * Once COMMIT is sent it is never killed: its own answer is awaited (see awaitCommit) and is what
   * the caller gets.
   */
  protected async runTransaction(statements: Statement[], ms: number): Promise<number[]> {
    const deadline = new Deadline(ms);
    await this.simple('START TRANSACTION', deadline.remaining());
    const counts: number[] = [];
    try {
      for (const s of statements) counts.push((await this.execute(s.sql, s.params, deadline.remaining(), s.comment)).rowCount);
      if (deadline.expired()) throw timeoutError('transaction', ms / 1000, true);
    } catch (err) {
      if (this.usable) {
        try {
          await this.simple('ROLLBACK', HOUSEKEEPING_MS, false);
        } catch {
          this.markUnusable(); // closing the connection rolls back
        }
      }
      throw err;
    }
    await awaitCommit('mysql', this.send('COMMIT'), () => this.markUnusable());
    return counts;
  }

  /** Transaction control is not preparable on every server version: plain text protocol. */
  private send(sql: string): Promise<void> {
    return new Promise<void>((resolve, reject) => this.conn.query(sql, (err) => (err ? reject(err) : resolve())));
  }

  /** `cancellable` false: not stopped by the operation's signal (a ROLLBACK after a cancel must run). */
  private simple(sql: string, ms: number, cancellable = true): Promise<unknown> {
    const running = this.send(sql);
    const stop = () => this.stop(running);
    return cancellable ? this.stoppable(running, ms, stop, 'query') : runStoppable(running, ms, stop, 'query');
  }

  protected openStream(sql: string, params: SqlParam[], _ms?: number, _lines?: LineEncoding, comment?: string): BatchSource {
    const text = commented(sql, comment);
    let stream: ReturnType<ReturnType<mysql.Connection['execute']>['stream']> | undefined;
    let read: (() => Promise<Row[] | null>) | undefined;
    let ended = false;
    return {
      next: async () => {
        if (!stream) {
          stream = this.conn.execute({ sql: text, values: params.map(toMysqlParam) }).stream({ highWaterMark: BATCH_SIZE });
          const conn = this.conn;
          stream.once('end', () => forget(conn, text, comment)).once('error', () => forget(conn, text, comment));
          read = readableBatches(stream, BATCH_SIZE);
        }
        try {
          const rows = await read!();
          if (rows === null) ended = true;
          return rows;
        } catch (err) {
          ended = true;
          throw err;
        }
      },
      stop: async () => {
        if (!stream || ended) return this.usable;
        ended = true;
        // mysql2 cannot abandon a result set: stop it on the server, then let the stream drain to its end.
        const s = stream;
        const done = new Promise<void>((resolve) => {
          s.on('end', resolve).on('close', resolve).on('error', () => resolve());
          s.removeAllListeners('readable'); // a 'readable' listener would keep resume() from flowing
          s.resume();
        });
        return this.stop(done);
      },
    };
  }

  protected async doClose(): Promise<void> {
    const ended = new Promise<void>((resolve) => this.conn.end(() => resolve()));
    if (!(await settledWithin(ended, HOUSEKEEPING_MS))) this.conn.destroy();
  }
}

export function mysqlConnector(resourceId: string, target: SecureResourceSettings): DbConnector {
  return {
    dbType: 'mysql',
    async connect(connId, timeoutSeconds) {
      const ms = toMs(timeoutSeconds);
      try {
        return new MysqlConnection(resourceId, connId, await openConnection(mysqlOptions(target, ms + HOUSEKEEPING_MS), ms), target);
      } catch (err) {
        throw connectError('mysql', err);
      }
    },
  };
}

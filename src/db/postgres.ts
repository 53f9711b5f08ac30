/**
 * PostgreSQL through a plain pg Client per connection (our pool does the pooling). A timeout
 * cancels the statement with pg_cancel_backend() from a short-lived second connection, waits for
 * it to end and proves the connection with SELECT 1, or marks it unusable. statement_timeout is
 * set slightly above the query timeout as a safety net for when the cancel cannot get through.
 *
 * Types: int8 (count(*), sum of integers) is a number when it fits in 2^53 and the exact decimal
 * string otherwise; numeric stays a string; timestamp without time zone holds UTC and is read as a
 * Date at that UTC instant (whatever the process time zone); Date parameters are sent as UTC ISO.
 */
import pg from 'pg';
import type { SecureResourceSettings } from '../config/schema.js';
import { commented } from '../query/sql-comment.js';
import { BaseConnection } from './base.js';
import { connectError } from './classify.js';
import { exactInteger } from './exact-integer.js';
import { toPgPlaceholders } from './pg-placeholders.js';
import { PortalStream } from './pg-portal-stream.js';
import { mayAddNulls, noRowsQuery, pgColumn } from './result-columns.js';
import { readableBatches, type BatchSource } from './row-stream.js';
import { awaitCommit, Deadline, HOUSEKEEPING_MS, settledWithin, stopAndProve, timeoutError, toMs, withTimeout } from './timeout.js';
import { DbDriverError, type DbConnector, type LineEncoding, type QueryResult, type ResultColumn, type Row, type SqlParam, type Statement } from './types.js';

const BATCH_SIZE = 500;
/** statement_timeout exceeds our own timer by this much, so our cancel (which proves the connection clean) runs first. */
const SAFETY_MARGIN_MS = 1000;
const INT8_OID = 20;
const TIMESTAMP_OID = 1114;

function parseUtcTimestamp(text: string): Date | string {
  const d = new Date(`${text.replace(' ', 'T')}Z`);
  return Number.isNaN(d.getTime()) ? text : d; // 'infinity', BC dates: keep the server's text
}
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary' && oid === INT8_OID) return exactInteger;
    if (format !== 'binary' && oid === TIMESTAMP_OID) return parseUtcTimestamp;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

function toPgParam(p: SqlParam): unknown {
  if (typeof p === 'bigint') return p.toString();
  if (p instanceof Date) return p.toISOString();
  return p;
}

export function pgClientConfig(target: SecureResourceSettings, connectMs: number): pg.ClientConfig {
  return {
    host: target.db_host,
    port: target.db_port || 5432,
    database: target.db_name || undefined,
    user: target.db_user || undefined,
    password: target.db_password || undefined,
    connectionTimeoutMillis: connectMs,
    keepAlive: true,
    application_name: 'watchtower',
    types,
  };
}

/** The backend pid from the startup handshake (pg keeps it on the client; its typings omit it). */
function backendPid(client: pg.Client): number | undefined {
  const pid: unknown = (client as unknown as { processID?: unknown }).processID;
  return typeof pid === 'number' ? pid : undefined;
}

/** Destroys a client's socket at once. */
function destroyClient(client: pg.Client): void {
  const stream: unknown = (client as unknown as { connection?: { stream?: unknown } }).connection?.stream;
  if (stream && typeof (stream as { destroy?: unknown }).destroy === 'function') (stream as { destroy(): void }).destroy();
}

/** Ends a client within the housekeeping bound, destroying its socket if the server does not answer. */
async function endClient(client: pg.Client): Promise<void> {
  if (await settledWithin(client.end(), HOUSEKEEPING_MS)) return;
  destroyClient(client);
}

class PgConnection extends BaseConnection {
  private statementTimeoutMs = 0;
  /** Why the connection was lost, once it was; see unlessLost(). */
  private lostWith: Error | undefined;
  private readonly onLost = new Set<(err: Error) => void>();

  constructor(
    resourceId: string,
    connId: number,
    private readonly client: pg.Client,
    private readonly target: SecureResourceSettings,
  ) {
    super(resourceId, connId, 'postgres');
    // An idle connection the server dropped emits 'error'; without a listener it would crash the process.
    client.on('error', (err: Error) => this.loseWith(err));
    client.on('end', () => this.loseWith(new Error('Connection terminated unexpectedly')));
  }

  private loseWith(err: Error): void {
    this.markUnusable();
    if (this.lostWith !== undefined) return;
    this.lostWith = err;
    for (const fail of [...this.onLost]) fail(err);
  }

  /**
   * `op`, or the socket's error as soon as the connection is lost while it waits. A cursor read
   * waiting when the server drops the connection (pg_terminate_backend, a restart) is not told by
   * pg-query-stream and would wait out the query timeout. A listener per wait, removed when it
   * settles (not a race with one long-lived promise, whose reactions would keep every batch).
   */
  private unlessLost<T>(op: Promise<T>): Promise<T> {
    if (this.lostWith !== undefined) {
      op.catch(() => undefined);
      return Promise.reject(this.lostWith);
    }
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.onLost.add(fail);
      op.then(
        (v) => {
          this.onLost.delete(fail);
          resolve(v);
        },
        (e: unknown) => {
          this.onLost.delete(fail);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Cancels whatever our backend runs, from a second short-lived connection. */
  private async cancelOnServer(): Promise<void> {
    const pid = backendPid(this.client);
    if (pid === undefined) throw new Error('backend pid unknown');
    const side = new pg.Client(pgClientConfig(this.target, HOUSEKEEPING_MS));
    side.on('error', () => undefined);
    try {
      await side.connect();
      await side.query('SELECT pg_cancel_backend($1)', [pid]);
    } finally {
      void endClient(side);
    }
  }

  /** After a timeout: true when the statement was stopped and the connection answers again. */
  private async stop(running: Promise<unknown> | undefined): Promise<boolean> {
    const clean = await stopAndProve(running, () => this.cancelOnServer(), () => this.client.query('SELECT 1'));
    if (!clean) this.markUnusable();
    return clean;
  }

  /** Keeps the server-side safety net just above our own timer (one extra round trip only when it changes). */
  private async ensureStatementTimeout(ms: number, wanted = ms + SAFETY_MARGIN_MS): Promise<void> {
    if (wanted === this.statementTimeoutMs) return;
    await this.execute(`SET statement_timeout = ${wanted}`, [], ms);
    this.statementTimeoutMs = wanted;
  }

  private async execute(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    const running = this.client.query<Row>({ text: commented(toPgPlaceholders(sql), comment), values: params.map(toPgParam) });
    const res = await this.stoppable(running, ms, () => this.stop(running), 'query');
    const rows = res.rows;
    return { rows, rowCount: rows.length > 0 ? rows.length : (res.rowCount ?? 0) };
  }

  protected async runQuery(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    const deadline = new Deadline(ms);
    await this.ensureStatementTimeout(ms);
    return this.execute(sql, params, deadline.remaining(), comment);
  }

  /** The wrapped statement's RowDescription: each column's type, and NOT NULL where its table says so. */
  protected async runDescribe(sql: string, params: SqlParam[], ms: number): Promise<ResultColumn[] | undefined> {
    const wrapped = noRowsQuery(sql);
    if (wrapped === undefined) return undefined;
    const deadline = new Deadline(ms);
    await this.ensureStatementTimeout(ms);
    const running = this.client.query<Row>({ text: toPgPlaceholders(wrapped), values: params.map(toPgParam) });
    const { fields } = await this.stoppable(running, deadline.remaining(), () => this.stop(running), 'query');
    const notNull = mayAddNulls(sql) ? new Set<string>() : await this.notNullColumns(fields, deadline.remaining());
    return fields.map((f) => pgColumn(f.name, f.dataTypeID, notNull.has(`${f.tableID}:${f.columnID}`)));
  }

  /** `table:column` of the NOT NULL table columns among `fields`. */
  private async notNullColumns(fields: pg.FieldDef[], ms: number): Promise<Set<string>> {
    const tables = [...new Set(fields.map((f) => f.tableID).filter((t) => t !== 0))];
    if (tables.length === 0) return new Set();
    const running = this.client.query<{ rel: number; num: number }>({
      text: 'SELECT attrelid::int8 AS rel, attnum AS num FROM pg_attribute WHERE attnotnull AND attrelid = ANY($1::oid[])',
      values: [tables],
    });
    const { rows } = await this.stoppable(running, ms, () => this.stop(running), 'query');
    return new Set(rows.map((r) => `${r.rel}:${r.num}`));
  }

  /**
   * The query timeout covers BEGIN and the statements; past it nothing is committed. Once COMMIT is
   * sent it is never cancelled: its own answer is awaited (see awaitCommit) and is what the caller gets.
   */
  protected async runTransaction(statements: Statement[], ms: number): Promise<number[]> {
    const deadline = new Deadline(ms);
    await this.ensureStatementTimeout(ms);
    await this.execute('BEGIN', [], deadline.remaining());
    const counts: number[] = [];
    try {
      for (const s of statements) counts.push((await this.execute(s.sql, s.params, deadline.remaining(), s.comment)).rowCount);
      if (deadline.expired()) throw timeoutError('transaction', ms / 1000, true);
    } catch (err) {
      await this.rollback();
      throw err;
    }
    await awaitCommit('postgres', this.client.query('COMMIT'), () => this.markUnusable());
    return counts;
  }

  /**
   * The setup statements (the caller's role and claims), then the statement, in one transaction:
   * what SET LOCAL and set_config(..., true) set ends with it, so the connection goes back to the
   * pool as the gateway's own user. Bounded and committed as runTransaction is.
   */
  protected override async runQueryAfter(setup: Statement[], sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    const deadline = new Deadline(ms);
    await this.ensureStatementTimeout(ms);
    await this.execute('BEGIN', [], deadline.remaining());
    let result: QueryResult;
    try {
      for (const s of setup) await this.execute(s.sql, s.params, deadline.remaining());
      result = await this.execute(sql, params, deadline.remaining(), comment);
      if (deadline.expired()) throw timeoutError('transaction', ms / 1000, true);
    } catch (err) {
      await this.rollback();
      throw err;
    }
    await awaitCommit('postgres', this.client.query('COMMIT'), () => this.markUnusable());
    return result;
  }

  /** Bounded ROLLBACK; a connection that cannot roll back is not reused (closing it rolls back). */
  private async rollback(): Promise<void> {
    if (!this.usable) return;
    try {
      await withTimeout(this.client.query('ROLLBACK'), HOUSEKEEPING_MS, () => new Error('rollback timed out'));
    } catch {
      this.markUnusable();
    }
  }

  protected openStream(sql: string, params: SqlParam[], ms: number, _lines?: LineEncoding, comment?: string): BatchSource {
    let stream: PortalStream | undefined;
    let read: (() => Promise<Row[] | null>) | undefined;
    let pending: Promise<Row[] | null> | undefined;
    let ended = false;
    let stopping: Promise<boolean> | undefined;
    const stopRunning = async (s: PortalStream): Promise<boolean> => {
      const fetching = pending;
      const prove = () => this.client.query('SELECT 1');
      const clean = fetching
        ? // A fetch is running on the server: cancel it there before anything else is sent. Were the
          // portal closed first, the cancel could land on the Sync's commit instead.
          await stopAndProve(
            undefined,
            async () => {
              await this.cancelOnServer();
              if (!(await settledWithin(fetching, HOUSEKEEPING_MS))) throw new Error('fetch did not end');
              if (!(await s.closePortal(HOUSEKEEPING_MS))) throw new Error('portal did not close');
            },
            prove,
          )
        : // Between batches: close the portal (Close + Sync), then prove the connection answers.
          (await s.closePortal(HOUSEKEEPING_MS)) && (await stopAndProve(undefined, async () => undefined, prove));
      if (!clean) this.markUnusable();
      return clean;
    };
    return {
      next: async () => {
        if (!stream) {
          // statement_timeout runs across every batch of a cursor, so it would cut a long stream;
          // each wait for a batch is bounded by our own timer and its server-side cancel instead.
          await this.ensureStatementTimeout(ms, 0);
          if (ended) return null; // stopped while setting up: never start the statement
          stream = new PortalStream(commented(toPgPlaceholders(sql), comment), params.map(toPgParam), BATCH_SIZE, { types });
          this.client.query(stream);
          read = readableBatches(stream, BATCH_SIZE, true);
        }
        pending = this.unlessLost(read!());
        try {
          const rows = await pending;
          if (rows === null) ended = true;
          return rows;
        } catch (err) {
          ended = true; // the server ended the statement with an error; the client is ready again
          throw err;
        } finally {
          pending = undefined;
        }
      },
      // Once: a timeout and a departing client may both ask, and the connection is free only after the first is done.
      stop: () => {
        if (stopping) return stopping;
        const s = stream;
        const wasEnded = ended;
        ended = true;
        stopping = !s || wasEnded ? Promise.resolve(this.usable) : stopRunning(s);
        return stopping;
      },
    };
  }

  protected async doClose(): Promise<void> {
    await endClient(this.client);
  }
}

export function postgresConnector(resourceId: string, target: SecureResourceSettings): DbConnector {
  return {
    dbType: 'postgres',
    async connect(connId, timeoutSeconds) {
      const ms = toMs(timeoutSeconds);
      // pg's own connect timeout is a backstop; ours fires first and reports kind 'timeout'.
      const client = new pg.Client(pgClientConfig(target, ms + HOUSEKEEPING_MS));
      client.on('error', () => undefined);
      try {
        await withTimeout(client.connect(), ms, () => new DbDriverError(`PostgreSQL connect timed out after ${timeoutSeconds} s`, { kind: 'timeout', connectionUsable: false }));
        return new PgConnection(resourceId, connId, client, target);
      } catch (err) {
        // Nothing to end gracefully: a connect that failed or timed out gives its socket up at once,
        // so a server that stopped answering is not held on to (a breaker's probes never overlap).
        destroyClient(client);
        void endClient(client);
        throw connectError('postgres', err);
      }
    },
  };
}

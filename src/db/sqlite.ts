/**
 * SQLite through better-sqlite3, each connection in a worker thread or, as a fallback, a worker
 * process (sqlite_workers; see sqlite-worker.ts). A statement past its timeout, or whose client
 * left, is stopped: in a thread through sqlite3_interrupt (sqlite-interrupt.ts), which keeps the
 * connection; in a process by killing it, after which the pool opens a new one. A transaction cut
 * short either way is never committed: an interrupted one is rolled back before the connection is
 * used again, a killed one by SQLite from the WAL when the file is next opened.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SecureResourceSettings } from '../config/schema.js';
import { commented } from '../query/sql-comment.js';
import { BaseConnection } from './base.js';
import { connectError } from './classify.js';
import { mayAddNulls, sqliteColumn } from './result-columns.js';
import type { BatchSource } from './row-stream.js';
import { leavesConnectionState, SharedInlineReads, sqliteBindable, type InlineReads } from './sqlite-inline.js';
import { workerKind, type Interrupter, type WorkerKind } from './sqlite-interrupt.js';
import type { WorkerParam, WorkerReply, WorkerRequest } from './sqlite-protocol.js';
import { awaitCommit, Deadline, HOUSEKEEPING_MS, runStoppable, settledWithin, timeoutError, toMs, withTimeout } from './timeout.js';
import { DbDriverError, EncodedRows, type ConnectorHooks, type DbConnector, type LineEncoding, type QueryOptions, type QueryResult, type ResultColumn, type Row, type SqlParam, type Statement } from './types.js';

const BATCH_SIZE = 500;
/**
 * The most rows a stream may have to be read on the event loop: a small answer. Reading a row
 * through an iterator costs about 2 µs, so 500 rows came near the 1 ms budget, and a stream stopped
 * there would be counted as an overrun though nothing about it is slow.
 */
const INLINE_STREAM_ROWS = 100;
/**
 * How long a stream whose consumer left may finish the batch already being read before its worker
 * is killed. A batch takes about a millisecond; a killed worker costs a process start, which under
 * load (many clients leaving at once) took seconds of capacity away.
 */
const CANCEL_GRACE_MS = 250;
/**
 * A worker runs one statement at a time and keeps little alive between them, so it needs neither
 * a large young generation (Node's default lets it grow to tens of MB before collecting) nor V8's
 * helper threads: with these, each worker process stayed about 4-6 MB smaller under load at the
 * same statements per second (bench/README.md, "The embedded database at its limit").
 */
const WORKER_NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1', '--single-threaded-gc'];
/** How long SQLite waits for another writer's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;



/**
 * Worker processes are started a few at a time: one start costs about 100 ms of CPU, and a cold pool
 * growing by seven at once under a burst took every core from the event loop and from the
 * connections already open, so the whole burst waited for the slowest start. Hand-written because
 * it is a counter and a queue, with the caller's own deadline.
 */
class StartGate {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Resolves with a release function once a start may begin, or false if `ms` passed first. */
  enter(ms: number): Promise<(() => void) | false> {
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve(this.leaver());
    }
    return new Promise((resolve) => {
      const go = () => {
        clearTimeout(timer);
        this.running++;
        resolve(this.leaver());
      };
      const timer = setTimeout(() => {
        this.queue.splice(this.queue.indexOf(go), 1);
        resolve(false);
      }, ms);
      this.queue.push(go);
    });
  }

  private leaver(): () => void {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.running--;
      this.queue.shift()?.();
    };
  }
}

/** One start per core the event loop does not need. */
const starts = new StartGate(Math.max(1, availableParallelism() - 1));

/** dist/db/sqlite-worker.js next to this module, or (running from src under a test runner) the built one. */
export function sqliteWorkerPath(): string {
  const sibling = fileURLToPath(new URL('./sqlite-worker.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  const built = fileURLToPath(new URL('../../dist/db/sqlite-worker.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(`SQLite worker not found at ${sibling} or ${built}: run "npm run build"`);
}

/** As SQLite binds it (sqliteBindable), a bigint tagged: JSON cannot carry one. */
function toWorkerParam(p: SqlParam): WorkerParam {
  const v = sqliteBindable(p);
  return typeof v === 'bigint' ? { $bigint: v.toString() } : v;
}

/** Turns the tagged values of a reply's rows (see sqlite-protocol) back into Buffers and numbers. */
function untag(rows: Row[]): Row[] {
  for (const row of rows) {
    for (const key in row) {
      const v = row[key] as Partial<Record<'$blob' | '$number', string>> | null;
      if (v === null || typeof v !== 'object') continue;
      if (v.$blob !== undefined) row[key] = Buffer.from(v.$blob, 'base64');
      else if (v.$number !== undefined) row[key] = Number(v.$number);
    }
  }
  return rows;
}

/** Rebuilds a worker-side error so classify.ts sees its code and name. */
function workerError(info: { name: string; message: string; code?: string }): Error {
  return Object.assign(new Error(info.message), { name: info.name, code: info.code });
}

class WorkerGone extends DbDriverError {
  constructor(detail: string) {
    super(`SQLite worker exited: ${detail}`, { kind: 'broken', connectionUsable: false, driverCode: 'WT_WORKER_EXIT' });
  }
}

/** A connection's way to its worker, whichever it runs in. */
interface WorkerChannel {
  send(msg: WorkerRequest, onFailed: (err: Error) => void): void;
  /** Ends the worker, however busy: kills the process, terminates the thread. */
  end(): void;
  /** Whether the worker keeps this process alive: only while a request is in flight. */
  hold(busy: boolean): void;
}

interface ChannelEvents {
  reply(reply: WorkerReply): void;
  exit(reason: string): void;
}

function processChannel(child: ChildProcess, on: ChannelEvents): WorkerChannel {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  (child.stderr as { unref?: () => void } | null)?.unref?.(); // diagnostics only: never what keeps us alive
  child.on('message', (m) => on.reply(m as WorkerReply));
  child.once('exit', (code, signal) => on.exit(`code=${code} signal=${signal}${stderr ? ` ${stderr.trim()}` : ''}`));
  return {
    send: (msg, onFailed) =>
      child.send(msg, (err) => {
        if (err) onFailed(err);
      }),
    end: () => child.kill('SIGKILL'),
    hold: (busy) => {
      if (busy) {
        child.ref();
        child.channel?.ref();
      } else {
        child.unref();
        child.channel?.unref();
      }
    },
  };
}

function threadChannel(worker: Worker, on: ChannelEvents): WorkerChannel {
  let failure = '';
  // JSON text, or a batch of lines as an object (see the worker's send).
  worker.on('message', (m: string | WorkerReply) => on.reply(typeof m === 'string' ? (JSON.parse(m) as WorkerReply) : m));
  worker.on('error', (err) => (failure = ` ${err.message}`));
  worker.once('exit', (code) => on.exit(`thread code=${code}${failure}`));
  return {
    send: (msg) => worker.postMessage(JSON.stringify(msg)), // a port's send cannot fail while the thread lives
    end: () => void worker.terminate(),
    hold: (busy) => (busy ? worker.ref() : worker.unref()),
  };
}

/**
 * How long an interrupted statement may take to hand back its error before the thread is
 * terminated instead. SQLite checks the interrupt between steps of its program (microseconds); only
 * a wait for another writer's lock, bounded by the busy timeout, can hold it longer.
 */
const INTERRUPT_GRACE_MS = 1000;

type Waiter = { resolve: (r: WorkerReply) => void; reject: (e: Error) => void };

/** A worker started for a connection: how to talk to it, and when it has ended. */
interface StartedWorker {
  channel: WorkerChannel;
  exited: Promise<void>;
}

class SqliteConnection extends BaseConnection {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private exitReason: string | undefined;
  /** Set when the worker is started: at connect, or (reads on the event loop) when first needed. */
  private started: StartedWorker | undefined;
  /** The worker's start and open handshake, once begun; `opened` once it has succeeded. */
  private opening: Promise<void> | undefined;
  private opened = false;
  /** A thread's way to stop its statement; none for a process. */
  private readonly interrupter: Interrupter | undefined;
  /** A thread's connection in the interrupt extension's registry, once it is open. */
  private token: number | undefined;
  /** Where reads may run on the event loop (sqlite-inline.ts); none for a process, or when turned off. */
  private inline: { share: SharedInlineReads; reads: InlineReads } | undefined;
  /** Set once a statement left state on the worker's connection that the inline connection cannot see. */
  private stateful = false;

  constructor(
    resourceId: string,
    connId: number,
    private readonly path: string,
    private readonly workers: WorkerKind,
    /** How long starting and opening the worker may take (the connect timeout). */
    private readonly openMs: number,
  ) {
    super(resourceId, connId, 'sqlite');
    this.interrupter = workers.kind === 'threads' ? workers.interrupter : undefined;
  }

  /** Starts the worker (a thread or a process) and wires its replies and its exit to this connection. */
  private startWorker(): StartedWorker {
    let exit!: (reason: string) => void;
    const exited = new Promise<void>((resolve) => {
      exit = (reason) => {
        this.exitReason = reason;
        this.markUnusable();
        for (const w of this.waiters.values()) w.reject(new WorkerGone(reason));
        this.waiters.clear();
        channel.hold(false);
        resolve();
      };
    });
    const events: ChannelEvents = { reply: (r) => this.dispatch(r), exit: (reason) => exit(reason) };
    const channel = this.workers.kind === 'threads' ? threadChannel(startThread(), events) : processChannel(startProcess(), events);
    this.started = { channel, exited };
    return this.started;
  }

  /** The worker, started and open: once, whoever asks first; a failure leaves the connection unusable. */
  private openWorker(): Promise<void> {
    this.opening ??= this.startAndOpen().then(
      () => {
        this.opened = true;
      },
      (err: unknown) => {
        this.markUnusable();
        throw err;
      },
    );
    return this.opening;
  }

  /** Waits for a start slot, starts the worker and opens the database in it, all within openMs. */
  private async startAndOpen(): Promise<void> {
    const ms = this.openMs;
    const began = Date.now();
    const leave = await starts.enter(ms);
    if (!leave) throw new DbDriverError(`opening SQLite ${this.path} timed out after ${ms / 1000} s waiting for other connections to start`, { kind: 'timeout', connectionUsable: false });
    try {
      if (!this.usable) throw new DbDriverError(`connection ${this.connId} was closed while its worker waited to start`, { kind: 'broken', connectionUsable: false, driverCode: 'WT_CLOSED' });
      const { channel } = this.startWorker();
      const open: WorkerRequest = { type: 'open', path: this.path, busyTimeoutMs: BUSY_TIMEOUT_MS, interruptExtension: this.interrupter?.path };
      const ready = await withTimeout(
        new Promise<WorkerReply>((resolve, reject) => {
          this.waiters.set(0, { resolve, reject });
          channel.send(open, reject);
        }),
        Math.max(1, ms - (Date.now() - began)),
        () => new DbDriverError(`opening SQLite ${this.path} timed out after ${ms / 1000} s`, { kind: 'timeout', connectionUsable: false }),
      );
      if (ready.type === 'ready') this.token = ready.token;
    } catch (err) {
      await this.kill();
      throw connectError('sqlite', err);
    } finally {
      leave();
    }
  }

  private dispatch(reply: WorkerReply): void {
    const id = 'id' in reply ? reply.id : 0;
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.waiters.delete(id);
    this.started?.channel.hold(this.waiters.size > 0);
    if (reply.type === 'error') waiter.reject(workerError(reply.error));
    else waiter.resolve(reply);
  }

  /** Sends a request, the worker started first if need be, and waits for the reply carrying its id. */
  private request(msg: WorkerRequest & { id: number }): Promise<WorkerReply> {
    if (this.exitReason !== undefined) return Promise.reject(new WorkerGone(this.exitReason));
    if (!this.opened) return this.openWorker().then(() => this.request(msg));
    const { channel } = this.started as StartedWorker; // opened: it was started
    return new Promise((resolve, reject) => {
      this.waiters.set(msg.id, { resolve, reject });
      channel.hold(true);
      channel.send(msg, (err) => {
        if (this.waiters.delete(msg.id)) reject(new WorkerGone(err.message));
      });
    });
  }

  /**
   * Stops a running statement. In a thread: interrupts it, and the connection stays. In a process:
   * kills it, at once past a timeout; when its client left, after a short grace in which the
   * statement may end by itself (a kill costs a process start).
   */
  private stopStatement(running: Promise<unknown>): Promise<boolean> {
    if (this.interrupter !== undefined) return this.interrupt(running);
    if (!this.cancelling) return this.kill();
    return settledWithin(running, CANCEL_GRACE_MS).then((done) => (done && this.usable ? true : this.kill()));
  }

  /** Interrupts the thread's statement and waits for its answer; terminates the thread if none comes. */
  private async interrupt(running: Promise<unknown>): Promise<boolean> {
    if (this.token === undefined || !this.usable) return this.kill();
    this.interrupter?.interrupt(this.token);
    if ((await settledWithin(running, INTERRUPT_GRACE_MS)) && this.usable) return true;
    return this.kill();
  }

  /** Stops whatever the worker is doing the only sure way; the connection is done. */
  private async kill(): Promise<boolean> {
    this.markUnusable();
    const started = this.started;
    if (started === undefined) return false; // none started; a start under way sees the connection unusable
    if (this.exitReason === undefined) started.channel.end();
    await settledWithin(started.exited, HOUSEKEEPING_MS);
    return false;
  }

  /**
   * A read the event loop may run is done before this returns: it skips the claim and the async
   * steps a statement that waits goes through (a few promise turns and about 1 KB of garbage per
   * read). Anything else takes the usual way (a busy or closed connection is refused there).
   */
  override query(sql: string, params: SqlParam[], opts: QueryOptions): Promise<QueryResult> {
    const ms = toMs(opts.timeoutSeconds);
    const reads = (opts.setup?.length ?? 0) === 0 && this.usable && !this.busy ? this.inlineFor(ms) : undefined;
    if (reads === undefined) return super.query(sql, params, opts);
    const text = commented(sql, opts.comment);
    const done = reads.query(text, params);
    // Not a plain read, stopped at the budget, or failed: the worker runs it, with its whole timeout.
    return done !== undefined ? Promise.resolve(done) : this.exclusive(() => this.runInWorker(text, params, ms), opts.signal);
  }

  /** Statements query() did not read on the event loop, and EXPLAIN plans. */
  protected runQuery(sql: string, params: SqlParam[], ms: number, comment?: string): Promise<QueryResult> {
    return this.runInWorker(commented(sql, comment), params, ms);
  }

  /** The reads a statement with `ms` to run may first try on the event loop (see InlineReads), if any. */
  private inlineFor(ms: number): InlineReads | undefined {
    return this.inline !== undefined && !this.stateful && ms > this.inline.share.budgetMs ? this.inline.reads : undefined;
  }

  /**
   * A ping asks the worker, once there is one: it is what must be alive for the connection to be
   * worth keeping. Before that, the inline connection answers, so a ping never starts a worker.
   */
  override ping(timeoutSeconds: number): Promise<void> {
    return this.exclusive(async () => {
      if (this.started === undefined && this.inline?.reads.query('SELECT 1', []) !== undefined) return;
      await this.runInWorker('SELECT 1', [], toMs(timeoutSeconds));
    });
  }

  /** Notes a statement sent to the worker that leaves state the inline connection cannot see (checked only while reads may run inline). */
  private noteState(sql: string): void {
    if (this.inline !== undefined && !this.stateful && leavesConnectionState(sql)) this.stateful = true;
  }

  private async runInWorker(sql: string, params: SqlParam[], ms: number): Promise<QueryResult> {
    this.noteState(sql);
    const running = this.request({ type: 'query', id: this.nextId++, sql, params: params.map(toWorkerParam) });
    const reply = await this.stoppable(running, ms, () => this.stopStatement(running), 'query');
    if (reply.type !== 'result') throw new Error(`unexpected worker reply ${reply.type}`);
    return { rows: reply.tagged ? untag(reply.rows) : reply.rows, rowCount: reply.rowCount };
  }

  /** The statement prepared in the worker, never run: declared types and NOT NULL of table columns. */
  protected async runDescribe(sql: string, _params: SqlParam[], ms: number): Promise<ResultColumn[] | undefined> {
    const describing = this.request({ type: 'describe', id: this.nextId++, sql });
    const reply = await runStoppable(describing, ms, () => this.stopStatement(describing), 'query');
    if (reply.type !== 'columns') throw new Error(`unexpected worker reply ${reply.type}`);
    if (reply.columns === null) return undefined;
    const nullsAdded = mayAddNulls(sql);
    return reply.columns.map((c) => sqliteColumn(c.name, c.type, c.notNull && !nullsAdded));
  }

  /** Asks the worker to roll back whatever transaction is open; kills it when it does not answer in time. */
  private rollBack(): Promise<boolean> {
    const rolledBack = withTimeout(this.request({ type: 'rollback', id: this.nextId++ }), HOUSEKEEPING_MS, () => new Error('rollback timed out'));
    return rolledBack.then(
      () => true,
      () => this.kill(),
    );
  }

  /**
   * Two steps, so a stop can never undo a commit we then report as failed: the worker runs the
   * statements within the timeout (stopping them rolls them back) and waits; only then, our timer
   * stopped, do we ask it to COMMIT, and await that answer (see awaitCommit) instead of stopping it.
   */
  protected async runTransaction(statements: Statement[], ms: number): Promise<number[]> {
    const deadline = new Deadline(ms);
    for (const s of statements) this.noteState(s.sql);
    const msg: WorkerRequest & { id: number } = {
      type: 'tx',
      id: this.nextId++,
      statements: statements.map((s) => ({ sql: commented(s.sql, s.comment), params: s.params.map(toWorkerParam) })),
    };
    const preparing = this.request(msg);
    // An interrupted statement ends the transaction in the worker, but one interrupted just after its
    // last statement would leave it open and waiting: roll back whatever is open before going on.
    const stop = async () => (await this.stopStatement(preparing)) && this.rollBack();
    const ready = await this.stoppable(preparing, ms, stop, 'transaction');
    if (ready.type !== 'prepared') throw new Error(`unexpected worker reply ${ready.type}`);
    if (deadline.expired()) throw timeoutError('transaction', ms / 1000, await this.rollBack());
    let counts: number[] = [];
    const committing = this.request({ type: 'commit', id: this.nextId++ }).then((reply) => {
      if (reply.type !== 'counts') throw new Error(`unexpected worker reply ${reply.type}`);
      counts = reply.counts;
    });
    await awaitCommit('sqlite', committing, () => void this.kill());
    return counts;
  }

  /**
   * `lines`: the worker encodes each batch (the main thread then only writes the text). A stream
   * of at most INLINE_STREAM_ROWS rows is read on the event loop instead, where reads may run: its
   * rows go out as rows, encoded on the main thread to the same bytes as the worker's.
   */
  protected openStream(sql: string, params: SqlParam[], ms: number, lines?: LineEncoding, comment?: string): BatchSource<Row | EncodedRows> {
    sql = commented(sql, comment);
    const reads = this.inlineFor(ms);
    if (reads !== undefined) {
      // A stream cut at a max_rows this small ends there anyway.
      const cutAt = lines?.maxRows !== undefined && lines.maxRows <= INLINE_STREAM_ROWS ? lines.maxRows : undefined;
      const rows = reads.streamRows(sql, params, cutAt ?? INLINE_STREAM_ROWS, cutAt !== undefined);
      if (rows !== undefined) return onlyBatch(rows);
    }
    this.noteState(sql);
    const id = this.nextId++;
    let state: 'new' | 'open' | 'ended' = 'new';
    let inFlight: Promise<WorkerReply> | undefined;
    return {
      next: async (): Promise<(Row | EncodedRows)[] | null> => {
        if (state === 'ended') return null;
        const msg: WorkerRequest & { id: number } =
          state === 'new' ? { type: 'stream', id, sql, params: params.map(toWorkerParam), batchSize: BATCH_SIZE, lines } : { type: 'more', id };
        state = 'open';
        const request = this.request(msg);
        inFlight = request;
        try {
          const reply = await request;
          if (reply.type === 'lines') {
            if (reply.done) state = 'ended';
            if (reply.rows === 0) return null;
            const { text } = reply;
            return [new EncodedRows(typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength), reply.rows, reply.columns)];
          }
          if (reply.type !== 'batch') throw new Error(`unexpected worker reply ${reply.type}`);
          if (reply.done) state = 'ended';
          if (reply.rows.length === 0) return null;
          return reply.tagged ? untag(reply.rows) : reply.rows;
        } catch (err) {
          state = 'ended'; // the worker closed its cursor on error
          throw err;
        } finally {
          if (inFlight === request) inFlight = undefined;
        }
      },
      stop: async (overran?: boolean): Promise<boolean> => {
        if (state !== 'open') return this.usable;
        state = 'ended';
        // Busy inside SQLite: a thread is interrupted; a process is killed, at once past a timeout,
        // after a short grace for a consumer that left (the batch under way usually arrives first).
        // Idle, or interrupted: close the cursor.
        const running = inFlight;
        if (running && this.interrupter !== undefined) {
          if (!(await this.interrupt(running))) return false;
        } else if (running && (overran || !(await settledWithin(running, CANCEL_GRACE_MS)))) return this.kill();
        if (!this.usable) return false;
        const cancelled = this.request({ type: 'cancel', id });
        return withTimeout(cancelled, HOUSEKEEPING_MS, () => new Error('cancel timed out')).then(
          () => true,
          () => this.kill(),
        );
      },
    };
  }

  protected async doClose(): Promise<void> {
    this.inline?.share.release();
    this.inline = undefined;
    if (this.opening !== undefined && !this.opened) await settledWithin(this.opening, HOUSEKEEPING_MS);
    const started = this.started;
    if (started === undefined) return;
    if (this.exitReason === undefined) started.channel.send({ type: 'close' }, () => undefined);
    if (!(await settledWithin(started.exited, HOUSEKEEPING_MS))) await this.kill();
  }

  /**
   * A connection within `ms`. Where reads run on the event loop, it opens the resource's inline
   * connection (which proves the file opens) and starts its worker only when a statement first
   * needs it: a connection that only reads never costs a thread. Otherwise the worker starts now.
   */
  static async open(resourceId: string, connId: number, path: string, workers: WorkerKind, ms: number, inline?: SharedInlineReads): Promise<SqliteConnection> {
    const conn = new SqliteConnection(resourceId, connId, path, workers, ms);
    try {
      if (inline !== undefined) conn.inline = { share: inline, reads: inline.acquire() };
    } catch {
      // A missing file, a lock held elsewhere: the worker opens it, or reports why it cannot.
    }
    if (conn.inline === undefined) await conn.openWorker();
    return conn;
  }
}

/** A stream's rows read at once: one batch (none when empty), then the end. */
function onlyBatch(rows: Row[]): BatchSource<Row> {
  let left: Row[] | null = rows.length > 0 ? rows : null;
  return {
    next: () => {
      const batch = left;
      left = null;
      return Promise.resolve(batch);
    },
    stop: () => Promise.resolve(true), // nothing runs: the statement ended when it was read
  };
}

function startProcess(): ChildProcess {
  return fork(sqliteWorkerPath(), [], {
    execArgv: WORKER_NODE_FLAGS, // and not the parent's loaders/flags (e.g. a test runner's)
    serialization: 'json', // see sqlite-protocol: far cheaper than structured clone here
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
}

/**
 * A thread keeps little alive between statements: a small young generation (as a worker process's
 * flags give it) keeps its heap from growing to tens of MB before it collects.
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 3 };

function startThread(): Worker {
  // stdout: its own stream, never piped into the gateway's log (the worker writes nothing there).
  return new Worker(sqliteWorkerPath(), { execArgv: [], resourceLimits: THREAD_LIMITS, stdout: true });
}

export function sqliteConnector(resourceId: string, target: SecureResourceSettings, hooks: ConnectorHooks = {}): DbConnector {
  const workers = workerKind(target.sqlite_workers);
  // An in-memory database is each connection's own: another connection would read another database.
  const shared = target.db_path !== '' && target.db_path !== ':memory:';
  const inline =
    workers.kind === 'threads' && shared && target.sqlite_inline_read_ms > 0 ? new SharedInlineReads(target.db_path, workers.interrupter.path, target.sqlite_inline_read_ms, hooks.sqliteInlineOverrun) : undefined;
  return {
    dbType: 'sqlite',
    connect: (connId, timeoutSeconds) => SqliteConnection.open(resourceId, connId, target.db_path, workers, toMs(timeoutSeconds), inline),
  };
}

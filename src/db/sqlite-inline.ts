/**
 * Reads run on the event loop itself, each bounded by a budget of milliseconds. A short read (the
 * usual 10-row answer takes microseconds) costs far less here than the hop to a worker thread and
 * back, which was most of such a request's cost (bench/README.md, "The embedded database at its
 * limit"). The bound keeps the worker's promise that SQL never holds the event loop: the connection
 * loads the interrupt extension's watchdog (native/sqlite-interrupt.c), which interrupts any
 * statement past the budget; the read then runs again in the connection's worker, with its whole
 * timeout. Only what can run twice without a trace is tried here: a statement SQLite reports as
 * read-only that returns rows, on a connection that SQLite itself keeps from writing
 * (query_only) and that never waits for a lock (no busy timeout).
 */
import Database from 'better-sqlite3';
import { exactIntegers } from './exact-integer.js';
import { statementKind } from './result-columns.js';
import { loadExtensionEntry } from './sqlite-interrupt.js';
import type { QueryResult, Row, SqlParam } from './types.js';

/** Statements whose kind says they only read. SQLite's own read-only flag is true of BEGIN and ATTACH too. */
const READ_KINDS = new Set(['SELECT', 'WITH', 'VALUES']);
/** Statements run past the budget go to the worker this many times before the event loop tries them again. */
const OVERRUN_BACKOFF = 100;
/** Prepared statements kept, by SQL text, oldest out first (as the worker keeps its own). */
const MAX_STATEMENTS = 100;

interface Entry {
  /** Undefined: not a read this connection may run; it always goes to the worker. */
  stmt: Database.Statement | undefined;
  /** Runs left to send to the worker after an overrun. */
  backoff: number;
}

/** A parameter as SQLite binds it, here and in the worker (sqlite.ts toWorkerParam): booleans as 0/1, dates as ISO text. */
export function sqliteBindable(p: SqlParam): Exclude<SqlParam, boolean | Date> {
  if (typeof p === 'boolean') return p ? 1 : 0;
  if (p instanceof Date) return p.toISOString();
  return p;
}

/**
 * Whether rows read with doubles hold a number past 2^53, which an integer may have lost digits to.
 * Every row of a statement has the same columns: their names are read once, not enumerated per row
 * (a `for...in` over each row made about 1 KB of garbage per 10-row read).
 */
function hasUnsafeNumber(rows: Row[]): boolean {
  if (rows.length === 0) return false;
  const keys = Object.keys(rows[0]);
  for (const row of rows) {
    for (let i = 0; i < keys.length; i++) {
      const v = row[keys[i]];
      if (typeof v === 'number' && !(v <= Number.MAX_SAFE_INTEGER && v >= -Number.MAX_SAFE_INTEGER)) return true;
    }
  }
  return false;
}

export class InlineReads {
  private readonly statements = new Map<string, Entry>();
  /** Statements stopped at the budget, since open (for tests and diagnostics). */
  overruns = 0;

  private constructor(
    private readonly db: Database.Database,
    private readonly onOverrun: () => void,
  ) {}

  /** A read connection to `path` whose statements are interrupted past `budgetMs` (each calls `onOverrun`). */
  static open(path: string, extensionPath: string, budgetMs: number, onOverrun: () => void = () => undefined): InlineReads {
    const db = new Database(path, { fileMustExist: true, timeout: 0 });
    try {
      // As every worker's connection does. Switching a file into WAL takes it exclusively: done by a
      // worker while this connection reads, it failed with "database is locked". Here it fails
      // (a lock held elsewhere) without waiting, and the caller's worker then does it instead.
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('query_only = 1');
      loadExtensionEntry(db, extensionPath, 'sqlite3_wtwatchdog_init');
      db.prepare('SELECT wt_watchdog_budget(?)').get(Math.max(1, Math.round(budgetMs * 1000)));
      return new InlineReads(db, onOverrun);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * The statement's rows, or undefined when it must run in the worker instead: not a plain read,
   * stopped at the budget, a lock it would wait for, or any error (the worker then gives the
   * caller its own answer or error).
   */
  query(sql: string, params: SqlParam[]): QueryResult | undefined {
    const entry = this.runnable(sql);
    if (entry === undefined) return undefined;
    try {
      const args = params.map(sqliteBindable);
      // Doubles first: a BigInt for every integer cost more than the rest of a short read. An
      // integer past 2^53 reads as a double past it too; then the read runs again with BigInts.
      let rows = entry.stmt.safeIntegers(false).all(...args) as Row[];
      if (hasUnsafeNumber(rows)) rows = (entry.stmt.safeIntegers(true).all(...args) as Row[]).map(exactIntegers);
      return { rows, rowCount: rows.length };
    } catch (err) {
      this.failed(entry, err);
      return undefined;
    }
  }

  /** The entry of `sql` when it may run here now: a plain read, not in its backoff (which this run counts down). */
  private runnable(sql: string): (Entry & { stmt: Database.Statement }) | undefined {
    const entry = this.entry(sql);
    if (entry?.stmt === undefined) return undefined;
    if (entry.backoff > 0) {
      entry.backoff--;
      return undefined;
    }
    return entry as Entry & { stmt: Database.Statement };
  }

  /** A statement stopped at the budget is counted and goes to the worker for a while; other errors are the worker's to report. */
  private failed(entry: Entry, err: unknown): void {
    if ((err as { code?: unknown }).code !== 'SQLITE_INTERRUPT') return;
    this.overruns++;
    entry.backoff = OVERRUN_BACKOFF;
    this.onOverrun();
  }

  /**
   * Every row of a read that ends within `most` rows (or, `cut`, its first `most` rows: the stream
   * ends there anyway), read as the worker's stream would give them; undefined when it must stream
   * from the worker: more rows than that, or any reason query() gives. A stream that went on past
   * `most` goes to the worker for its next 100 runs, as an overrun does.
   */
  streamRows(sql: string, params: SqlParam[], most: number, cut: boolean): Row[] | undefined {
    const entry = this.runnable(sql);
    if (entry === undefined) return undefined;
    const rows: Row[] = [];
    try {
      for (const row of entry.stmt.safeIntegers(true).iterate(...params.map(sqliteBindable)) as IterableIterator<Row>) {
        if (rows.length === most) {
          if (cut) break;
          entry.backoff = OVERRUN_BACKOFF; // leaving the loop closes the cursor
          return undefined;
        }
        rows.push(exactIntegers(row));
      }
      return rows;
    } catch (err) {
      this.failed(entry, err);
      return undefined;
    }
  }

  close(): void {
    this.statements.clear();
    this.db.close(); // also ends the watchdog thread
  }

  /** The cached entry of `sql`; undefined when it does not prepare here (it is not cached then). */
  private entry(sql: string): Entry | undefined {
    const known = this.statements.get(sql);
    if (known !== undefined) return known;
    let stmt: Database.Statement | undefined;
    if (READ_KINDS.has(statementKind(sql))) {
      try {
        stmt = this.db.prepare(sql);
      } catch {
        // A table this connection cannot see (a worker's TEMP table, say) may exist later: not cached.
        return undefined;
      }
      if (!stmt.reader || !stmt.readonly) stmt = undefined;
    }
    const entry: Entry = { stmt, backoff: 0 };
    this.statements.set(sql, entry);
    if (this.statements.size > MAX_STATEMENTS) this.statements.delete(this.statements.keys().next().value as string);
    return entry;
  }
}

/**
 * One resource's inline read connection, open while any of the resource's connections is: the
 * connections take turns on the one event loop, so one is enough, and one page cache serves them.
 */
export class SharedInlineReads {
  private reads: InlineReads | undefined;
  private users = 0;

  constructor(
    private readonly path: string,
    private readonly extensionPath: string,
    readonly budgetMs: number,
    private readonly onOverrun?: () => void,
  ) {}

  /** The shared connection, opened by its first user; release() once for each acquire(). */
  acquire(): InlineReads {
    this.reads ??= InlineReads.open(this.path, this.extensionPath, this.budgetMs, this.onOverrun);
    this.users++;
    return this.reads;
  }

  release(): void {
    if (--this.users > 0) return;
    this.reads?.close();
    this.reads = undefined;
  }
}

/** Kinds of statement that leave state on their connection (TEMP objects, attached files, pragmas, an open transaction) that the inline connection would not see. */
const CONNECTION_STATE_KINDS = new Set(['CREATE', 'ATTACH', 'PRAGMA', 'BEGIN', 'SAVEPOINT']);

/** Whether, after `sql` ran on a worker's connection, that connection's reads must stay in the worker. */
export function leavesConnectionState(sql: string): boolean {
  return CONNECTION_STATE_KINDS.has(statementKind(sql));
}

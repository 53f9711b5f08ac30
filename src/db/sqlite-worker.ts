/**
 * One SQLite connection, in its own worker thread or process, so that SQL never runs on the
 * gateway's event loop and a statement past its timeout can really be stopped. A thread cannot be
 * terminated while it is inside a native sqlite3_step, and better-sqlite3 has no sqlite3_interrupt
 * binding: so a thread's connection loads native/sqlite-interrupt.c, through which the main thread
 * interrupts it, and a process (the fallback without that extension) is killed. Serves one request
 * at a time; a stream sends one batch per "more" message, so memory stays flat however many rows
 * the statement yields.
 */
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { exactInteger } from './exact-integer.js';
import { loadExtensionEntry } from './sqlite-interrupt.js';
import { indexedRowEncoder, rowEncoder } from '../endpoints/row-encoders.js';
import type { LineEncoding, Row } from './types.js';
import type { ColumnInfo, TaggedValue, WorkerErrorInfo, WorkerParam, WorkerReply, WorkerRequest } from './sqlite-protocol.js';

let db: Database.Database | undefined;
/** The open stream; `lines`: its rows go out encoded, by `encode` once the first row fixed the columns. */
let cursor:
  | { id: number; rows: IterableIterator<unknown>; batchSize: number; lines?: LineEncoding; encode?: (row: unknown) => string; columns?: string[]; sent: number }
  | undefined;

/** A thread talks through its port in JSON text (see sqlite-protocol); a process through its JSON IPC channel. */
const port = parentPort;
/**
 * A thread's replies go as JSON text (far cheaper than structured clone for rows of many small
 * values), except a batch of lines: its text encoded to UTF-8 here and the bytes' buffer
 * transferred, not copied, so the main thread neither copies nor converts them before writing
 * them to the socket (JSON would escape every quote and newline and be parsed back; a string
 * would be copied twice by structured clone and converted to UTF-8 on the main thread).
 */
const utf8 = new TextEncoder();
const send: (reply: WorkerReply) => void = port
  ? (reply) => {
      if (reply.type !== 'lines' || typeof reply.text !== 'string') port.postMessage(JSON.stringify(reply));
      else {
        const bytes = utf8.encode(reply.text); // a buffer of its own, which can be transferred
        port.postMessage({ ...reply, text: bytes }, [bytes.buffer]);
      }
    }
  : (reply) => process.send?.(reply);

/** Set when a row of the reply being built holds a tagged value. */
let tagged = false;

/**
 * Integers are read as bigint so none loses precision; safe ones go back as numbers, others as
 * strings. BLOBs and non-finite numbers, which JSON cannot carry, go tagged (see sqlite-protocol).
 */
function normalize(raw: unknown): Row {
  const row = raw as Row;
  for (const key in row) {
    const v = row[key];
    if (typeof v === 'bigint') row[key] = exactInteger(v);
    else if (v instanceof Uint8Array) {
      row[key] = { $blob: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') } satisfies TaggedValue;
      tagged = true;
    } else if (typeof v === 'number' && !Number.isFinite(v)) {
      row[key] = { $number: String(v) as 'Infinity' | '-Infinity' | 'NaN' } satisfies TaggedValue;
      tagged = true;
    }
  }
  return row;
}

/** Rows, and whether the receiver must decode tagged values in them. */
function normalizeAll(raw: unknown[]): { rows: Row[]; tagged?: true } {
  tagged = false;
  const rows = raw.map(normalize);
  return tagged ? { rows, tagged: true } : { rows };
}

function bindable(params: WorkerParam[]): unknown[] {
  return params.map((p) => (p !== null && typeof p === 'object' ? BigInt(p.$bigint) : p));
}

function errorInfo(err: unknown): WorkerErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, code: typeof code === 'string' ? code : undefined };
  }
  return { name: 'Error', message: String(err) };
}

function open(): Database.Database {
  if (!db) throw Object.assign(new Error('database is not open'), { code: 'SQLITE_MISUSE' });
  return db;
}

function prepare(sql: string): Database.Statement {
  const stmt = open().prepare(sql);
  if (stmt.reader) stmt.safeIntegers(true);
  return stmt;
}

/**
 * Prepared statements of run(), by SQL text: the routes run the same few statements over and
 * over, and preparing is most of a short query's cost. Streams prepare their own, since a
 * statement cannot run again while a cursor still iterates it. Oldest out first past the limit.
 */
const statements = new Map<string, Database.Statement>();
const MAX_STATEMENTS = 100;

function cached(sql: string): Database.Statement {
  let stmt = statements.get(sql);
  if (stmt === undefined) {
    stmt = prepare(sql);
    statements.set(sql, stmt);
    if (statements.size > MAX_STATEMENTS) statements.delete(statements.keys().next().value as string);
  }
  return stmt;
}

function run(sql: string, params: WorkerParam[]): { rows: Row[]; rowCount: number; tagged?: true } {
  const stmt = cached(sql);
  if (stmt.reader) {
    const result = normalizeAll(stmt.all(...bindable(params)));
    return { ...result, rowCount: result.rows.length };
  }
  return { rows: [], rowCount: stmt.run(...bindable(params)).changes };
}

/** The result columns of a statement, prepared and never run; null when it returns no rows. */
function describe(sql: string): ColumnInfo[] | null {
  const stmt = open().prepare(sql);
  if (!stmt.reader) return null;
  const tables = new Map<string, Set<string>>();
  return stmt.columns().map((c) => {
    let notNull = false;
    if (c.table !== null && c.column !== null) {
      const key = `${c.database ?? 'main'}.${c.table}`;
      let cols = tables.get(key);
      if (cols === undefined) {
        cols = notNullColumns(c.database ?? 'main', c.table);
        tables.set(key, cols);
      }
      notNull = cols.has(c.column);
    }
    return { name: c.name, type: c.type, notNull };
  });
}

/** Columns declared NOT NULL, and a lone INTEGER PRIMARY KEY (the rowid, never NULL). */
function notNullColumns(database: string, table: string): Set<string> {
  const quoted = (id: string) => `"${id.replace(/"/g, '""')}"`;
  const cols = open().prepare(`PRAGMA ${quoted(database)}.table_xinfo(${quoted(table)})`).all() as { name: string; type: string; notnull: number; pk: number }[];
  const key = cols.filter((c) => c.pk > 0);
  const rowid = key.length === 1 && key[0].type.toUpperCase() === 'INTEGER' ? key[0].name : undefined;
  return new Set(cols.filter((c) => c.notnull !== 0 || c.name === rowid).map((c) => c.name));
}

/**
 * The counts of the transaction left open by the last 'tx', waiting for the parent's word. The
 * parent kills this process when its timeout passes, and must know whether that can undo a commit:
 * so COMMIT runs only once the parent, its timer stopped, asks for it.
 */
let prepared: number[] | undefined;

function rollback(): void {
  prepared = undefined;
  if (db?.inTransaction) db.exec('ROLLBACK');
}

function transaction(statements: { sql: string; params: WorkerParam[] }[]): void {
  const conn = open();
  rollback(); // a transaction the parent abandoned (it kills us in that case, so this is a safety net)
  conn.exec('BEGIN IMMEDIATE'); // take the write lock up front: no deadlock upgrading a read lock later
  try {
    prepared = statements.map((s) => run(s.sql, s.params).rowCount);
  } catch (err) {
    rollback();
    throw err;
  }
}

function commit(): number[] {
  const counts = prepared;
  prepared = undefined;
  if (counts === undefined || !open().inTransaction) throw Object.assign(new Error('no transaction to commit'), { code: 'SQLITE_MISUSE' });
  try {
    open().exec('COMMIT');
    return counts;
  } catch (err) {
    rollback(); // a failed COMMIT may leave the transaction open: its outcome must be "not written"
    throw err;
  }
}

function sendBatch(): void {
  if (!cursor) return;
  const { id, rows, lines } = cursor;
  // A stream cut at its max_rows stops after them: the rest is never read.
  const batchSize = lines?.maxRows === undefined ? cursor.batchSize : Math.min(cursor.batchSize, lines.maxRows - cursor.sent);
  const batch: unknown[] = [];
  let done = false;
  while (batch.length < batchSize) {
    const r = rows.next();
    if (r.done) {
      done = true;
      break;
    }
    batch.push(r.value);
  }
  cursor.sent += batch.length;
  if (lines?.maxRows !== undefined && cursor.sent >= lines.maxRows) done = true;
  const encoded = lines === undefined ? undefined : encodeLines(cursor, lines, batch);
  if (done) closeCursor();
  if (encoded === undefined) send({ type: 'batch', id, done, ...normalizeAll(batch) });
  else send({ type: 'lines', id, done, ...encoded });
}

/**
 * A batch as the response's text, by the same encoders the main thread would use on the same
 * values (BLOBs as Buffers; integers as bigints, which they write exactly): the main thread then only writes it.
 */
function encodeLines(stream: NonNullable<typeof cursor>, lines: LineEncoding, batch: unknown[]): { text: string; rows: number; columns: string[] } {
  let text = '';
  for (let i = 0; i < batch.length; i++) {
    // Integers stay bigints: the encoders write them as exactInteger would (a pass making them
    // numbers first cost more than the encoding, about 0.35 µs a row).
    const row = batch[i];
    if (stream.encode === undefined) {
      stream.columns = Object.keys(row as Row);
      stream.encode = rowEncoder(lines.format, stream.columns, lines.eol) as (row: unknown) => string; // its rows are objects
    }
    text += i === 0 ? stream.encode(row) : lines.separator + stream.encode(row);
  }
  return { text, rows: batch.length, columns: stream.columns ?? [] };
}

/**
 * Lines are encoded from raw rows (arrays), which cost about a third less to read than objects, when
 * that writes the same bytes: the column names are distinct (an object keeps one of a repeated name)
 * and few enough to compile an encoder for. Then the statement is switched to raw rows (before it
 * runs) and the encoder is returned with its columns; otherwise nothing changes.
 */
function rawLines(stmt: Database.Statement, lines: LineEncoding): { columns: string[]; encode: (row: unknown) => string } | undefined {
  const columns = stmt.columns().map((c) => c.name);
  if (new Set(columns).size !== columns.length) return undefined;
  const encode = indexedRowEncoder(lines.format, columns, lines.eol);
  if (encode === undefined) return undefined;
  stmt.raw(true);
  return { columns, encode: encode as (row: unknown) => string }; // the rows it gets are arrays now
}

function closeCursor(): void {
  cursor?.rows.return?.();
  cursor = undefined;
}

function handle(msg: WorkerRequest): void {
  if (msg.type === 'close') {
    closeCursor();
    db?.close();
    process.exit(0);
  }
  if (msg.type === 'open') {
    try {
      db = new Database(msg.path, { fileMustExist: true, timeout: msg.busyTimeoutMs });
      // WAL: readers never block the writer, nor it them. synchronous FULL (SQLite's own default,
      // set so that no build's default can change it): a commit the gateway reports as done has
      // reached the disk, also if the machine loses power right after. See DESIGN.md, "Databases".
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      if (msg.interruptExtension === undefined) send({ type: 'ready' });
      else {
        loadExtensionEntry(db, msg.interruptExtension, 'sqlite3_wtinterrupt_init');
        // SQLite's busy handler sleeps through an interrupt; the extension's gives up when interrupted.
        db.prepare('SELECT wt_busy_timeout(?)').get(msg.busyTimeoutMs);
        send({ type: 'ready', token: db.prepare('SELECT wt_interrupt_token()').pluck().get() as number });
      }
    } catch (err) {
      send({ type: 'error', id: 0, error: errorInfo(err) });
    }
    return;
  }
  try {
    switch (msg.type) {
      case 'query':
        send({ type: 'result', id: msg.id, ...run(msg.sql, msg.params) });
        break;
      case 'describe':
        send({ type: 'columns', id: msg.id, columns: describe(msg.sql) });
        break;
      case 'tx':
        transaction(msg.statements);
        send({ type: 'prepared', id: msg.id });
        break;
      case 'commit':
        send({ type: 'counts', id: msg.id, counts: commit() });
        break;
      case 'rollback':
        rollback();
        send({ type: 'rolled-back', id: msg.id });
        break;
      case 'stream': {
        closeCursor();
        const stmt = prepare(msg.sql);
        if (!stmt.reader) throw new TypeError('only a statement that returns rows can be streamed');
        const raw = msg.lines === undefined ? undefined : rawLines(stmt, msg.lines);
        cursor = { id: msg.id, rows: stmt.iterate(...bindable(msg.params)), batchSize: msg.batchSize, lines: msg.lines, sent: 0, ...raw };
        sendBatch();
        break;
      }
      case 'more':
        if (cursor?.id === msg.id) sendBatch();
        break;
      case 'cancel':
        if (cursor?.id === msg.id) closeCursor();
        send({ type: 'cancelled', id: msg.id });
        break;
    }
  } catch (err) {
    if ('id' in msg && cursor?.id === msg.id) closeCursor();
    send({ type: 'error', id: 'id' in msg ? msg.id : 0, error: errorInfo(err) });
  }
}

if (port) port.on('message', (msg: string) => handle(JSON.parse(msg) as WorkerRequest));
else {
  process.on('message', (msg) => handle(msg as WorkerRequest));
  // The parent died or dropped us: never outlive it.
  process.on('disconnect', () => process.exit(0));
}

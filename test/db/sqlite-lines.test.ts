/**
 * SQLite streams encoded where the statement runs (QueryOptions.lines): the worker's lines, framed
 * by encodeRows, must be byte for byte what the main thread writes from the same rows, for every
 * format and every kind of value, across batches, and cut at max_rows wherever it falls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { EncodedRows, type DbConnection, type Row } from '../../src/db/types.js';
import type { Format } from '../../src/endpoints/declaration.js';
import { encodeRows, linesOf } from '../../src/endpoints/formats.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-sqlite-lines-'));
const path = join(dir, 'lines.db');
const FORMATS: Format[] = ['json', 'ndjson', 'csv', 'psv'];
/** More than two of the worker's 500-row batches. */
const ROWS = 1234;

beforeAll(() => {
  const db = new Database(path);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, r REAL, s TEXT, b BLOB, n INTEGER)');
  const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)');
  const tricky = ['plain', 'a,b', 'say "hi"', 'line\nbreak', 'cr\rlf', 'pipe|pipe', 'ünïcødé ✓', 'tab\there', 'ctl\u0001', '', 'back\\slash'];
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++) {
      insert.run(i, i % 7 === 0 ? 9007199254740993n + BigInt(i) : -i, i % 5 === 0 ? Infinity : i / 3, tricky[i % tricky.length], i % 4 === 0 ? Buffer.from([i & 255, 0, 255]) : null, i % 3 === 0 ? null : i);
    }
  })();
  db.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The answer's bytes as text (a thread's batches come as UTF-8 bytes, the framing as strings). */
async function text(chunks: AsyncIterable<string | Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(parts).toString('utf8');
}

describe.each(['threads', 'processes'] as const)('SQLite streams encoded in the worker (%s)', (workers) => {
  let conn: DbConnection;
  const o = { timeoutSeconds: 10 };
  beforeAll(async () => {
    // Every stream in the worker, small ones too (sqlite_inline_read_ms 0): its encoding is what is tested.
    conn = await createConnector('sqlite_lines', targetFromUrl(`sqlite:${path}`, { sqlite_workers: workers, sqlite_inline_read_ms: 0 })).connect(1, 10);
  });
  afterAll(async () => {
    await conn?.close();
  });

  const SQL = 'SELECT * FROM t ORDER BY id';
  /** A stream cut at max_rows is stopped without holding up its answer: wait for the connection. */
  const idle = () => waitFor('the connection to be free', () => !conn.busy, { timeout: 5000 });
  const expected = async (format: Format, sql: string, maxRows?: number) => {
    const out = await text(encodeRows(conn.stream(sql, [], o), format, maxRows));
    await idle();
    return out;
  };
  const viaWorker = async (format: Format, sql: string, maxRows?: number) => {
    const out = await text(encodeRows(conn.stream(sql, [], { ...o, lines: linesOf(format, maxRows) }), format, maxRows));
    // The worker stops at max_rows itself: its stream ends with the answer.
    expect(conn.busy).toBe(false);
    return out;
  };

  it.each(FORMATS)('%s: the same bytes as rows encoded on the main thread, across batches', async (format) => {
    const want = await expected(format, SQL);
    expect(want.length).toBeGreaterThan(ROWS * 10);
    expect(await viaWorker(format, SQL)).toBe(want);
    expect(conn.usable).toBe(true);
  });

  // Raw rows (arrays) are read only where they give the same bytes: a repeated name is one key of a row object.
  it.each(FORMATS)('%s: repeated and computed column names, the same bytes as the main thread', async (format) => {
    const sql = "SELECT id, s AS x, big AS x, r * 2, 'k\"ey' AS \"a,b\", b FROM t ORDER BY id";
    const want = await expected(format, sql);
    expect(want.length).toBeGreaterThan(ROWS * 5);
    expect(await viaWorker(format, sql)).toBe(want);
    expect(await viaWorker(format, 'SELECT id, s AS x, big AS y FROM t ORDER BY id', 700)).toBe(await expected(format, 'SELECT id, s AS x, big AS y FROM t ORDER BY id', 700));
  });

  it.each([1, 499, 500, 501, 1000, 1233, ROWS, 5000])('cut at max_rows %i, within a batch or at its edge: the same bytes, and the statement stopped', async (maxRows) => {
    for (const format of FORMATS) expect(await viaWorker(format, SQL, maxRows)).toBe(await expected(format, SQL, maxRows));
    expect(conn.busy).toBe(false);
    expect((await conn.query('SELECT count(*) AS n FROM t', [], o)).rows).toEqual([{ n: ROWS }]);
  });

  it('an empty result: the same framing (json [], csv without a header)', async () => {
    for (const format of FORMATS) expect(await viaWorker(format, 'SELECT * FROM t WHERE id < 0')).toBe(await expected(format, 'SELECT * FROM t WHERE id < 0'));
  });

  it('yields text for whole batches, counted by their rows, so the main thread only writes it', async () => {
    const items: (Row | EncodedRows)[] = [];
    for await (const item of conn.stream(SQL, [], { ...o, lines: linesOf('psv') })) items.push(item);
    expect(items.every((i) => i instanceof EncodedRows)).toBe(true);
    // A thread hands over UTF-8 bytes (its buffer transferred: nothing to copy or convert here); a process, text.
    expect(items.every((i) => (workers === 'threads' ? Buffer.isBuffer((i as EncodedRows).text) : typeof (i as EncodedRows).text === 'string'))).toBe(true);
    expect(items.map((i) => (i as EncodedRows).rows)).toEqual([500, 500, ROWS - 1000]);
    expect((items[0] as EncodedRows).columns).toEqual(['id', 'big', 'r', 's', 'b', 'n']);
  });

  it('leaving mid-stream stops the statement and keeps the connection', async () => {
    let seen = 0;
    for await (const item of conn.stream(SQL, [], { ...o, lines: linesOf('ndjson') })) {
      seen += (item as EncodedRows).rows;
      break;
    }
    expect(seen).toBe(500);
    expect(conn.busy).toBe(false);
    expect(conn.usable).toBe(true);
    expect((await conn.query('SELECT 1 AS one', [], o)).rows).toEqual([{ one: 1 }]);
  });
});

/**
 * Behaviour every driver must show, run against a real server per driver. Each driver's test file
 * supplies the dialect (how to sleep, make many rows, find and kill its session) and calls
 * driverSuite(); driver-specific checks live in that file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Format } from '../../src/endpoints/declaration.js';
import { encodeRows, linesOf } from '../../src/endpoints/formats.js';
import type { DbConnection, DbConnector } from '../../src/db/types.js';
import { DbDriverError, EncodedRows } from '../../src/db/types.js';
import { blackholeServer, closedPort, uniqueName } from '../helpers/databases.js';
import { waitFor } from '../helpers/wait.js';

export interface Dialect {
  name: string;
  connector: () => DbConnector;
  /** A connector to the same server with another port (for unreachable / blackhole checks); none for SQLite. */
  connectorAtPort?: (port: number) => DbConnector;
  /** SQL that runs for about 5 seconds unless stopped. */
  sleepSql: string;
  /** SQL yielding `n` rows, one column `n`. */
  manyRowsSql: (n: number) => string;
  textType: string;
  /** Rows the streaming test reads (default 200k; fewer where the driver fetches row by row). */
  streamRows?: number;
  /** Whether a timed-out connection is proven clean and kept (network drivers), or replaced (SQLite). */
  keepsConnectionAfterTimeout: boolean;
  /** Server-side session id of a connection, and whether that session still runs a statement. */
  sessionId?: (conn: DbConnection) => Promise<number>;
  isBusy?: (session: number) => Promise<boolean>;
  kill?: (session: number) => Promise<void>;
  /** Drops a table through some connection (cleanup). */
  dropTable: (conn: DbConnection, table: string) => Promise<void>;
}

const T = { timeoutSeconds: 10 };

/** Runs `fn`, returns the DbDriverError it must throw. */
async function driverError(fn: () => Promise<unknown>): Promise<DbDriverError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DbDriverError);
    return err as DbDriverError;
  }
  throw new Error('expected a DbDriverError');
}

export function driverSuite(d: Dialect): void {
  describe(`${d.name} driver`, () => {
    const table = uniqueName();
    let conn: DbConnection;
    let connId = 1;
    const open = () => d.connector().connect(connId++, 5);

    beforeAll(async () => {
      conn = await open();
      await conn.query(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, name ${d.textType})`, [], T);
    });
    afterAll(async () => {
      const c = await open();
      await d.dropTable(c, table);
      await c.close();
      await conn?.close();
    });

    it('returns rows with their columns', async () => {
      const res = await conn.query("SELECT 1 AS a, 'x' AS b", [], T);
      expect(res.rows).toEqual([{ a: 1, b: 'x' }]);
      expect(res.rowCount).toBe(1);
      expect(conn.dbType).toBe(d.connector().dbType);
    });

    it('binds ? parameters, a quote in a value included, and leaves a quoted ? alone', async () => {
      const tricky = `it's "quoted" ? -- not a comment`;
      const ins = await conn.query(`INSERT INTO ${table} (id, name) VALUES (?, ?)`, [1, tricky], T);
      expect(ins.rowCount).toBe(1);
      const res = await conn.query(`SELECT id, name, '?' AS q FROM ${table} WHERE name = ? AND id = ?`, [tricky, 1], T);
      expect(res.rows).toEqual([{ id: 1, name: tricky, q: '?' }]);
    });

    it('streams many rows in batches and counts them', async () => {
      const n = d.streamRows ?? 200_000;
      let count = 0;
      let last = 0;
      for await (const row of conn.stream(d.manyRowsSql(n), [], T)) {
        count++;
        last = Number(row.n);
      }
      expect(count).toBe(n);
      expect(last).toBe(n);
      await conn.ping(5);
    });

    it('stops a stream the reader leaves early, leaving the connection clean', async () => {
      let seen = 0;
      for await (const _row of conn.stream(d.manyRowsSql(100_000), [], T)) {
        if (++seen === 10) break;
      }
      expect(seen).toBe(10);
      expect(conn.usable).toBe(true);
      expect((await conn.query('SELECT 3 AS three', [], T)).rows).toEqual([{ three: 3 }]);
    });

    /** A stream's answer as `format`, the rows asked for as lines (encoded batch by batch) or not. */
    const answer = async (sql: string, format: Format, asLines: boolean) => {
      const rows = conn.stream(sql, [], asLines ? { ...T, lines: linesOf(format) } : T);
      let text = '';
      for await (const chunk of encodeRows(rows, format)) text += chunk.toString();
      return text;
    };

    it('yields a stream asked for lines as EncodedRows, a batch at a time, the same answer as its rows give', async () => {
      const sql = d.manyRowsSql(1200);
      const items: unknown[] = [];
      for await (const item of conn.stream(sql, [], { ...T, lines: linesOf('ndjson') })) items.push(item);
      expect(items.every((i) => i instanceof EncodedRows)).toBe(true);
      // A batch holds what the driver had fetched (up to its batch size): far fewer items than rows.
      expect(items.length).toBeLessThan(120);
      expect((items as EncodedRows[]).reduce((n, i) => n + i.rows, 0)).toBe(1200);
      for (const format of ['json', 'csv', 'psv'] as const) expect(await answer(sql, format, true)).toBe(await answer(sql, format, false));
      expect(conn.usable).toBe(true);
    });

    it('cuts a stream of lines at max_rows inside a batch and stops the statement, leaving the connection clean', async () => {
      // As encodeRows reads them, leaving at max_rows; here the leaving is awaited, as a request's end awaits it.
      let text = '';
      let rows = 0;
      for await (const item of conn.stream(d.manyRowsSql(100_000), [], { ...T, lines: linesOf('psv', 700) })) {
        const lines = item as EncodedRows;
        text += lines.text.toString();
        if ((rows += lines.rows) >= 700) break;
      }
      expect(text.split('\n').slice(0, -1).map(Number)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
      expect(conn.usable).toBe(true);
      expect((await conn.query('SELECT 3 AS three', [], T)).rows).toEqual([{ three: 3 }]);
    });

    it('ends a stream of lines at max_rows by itself when its reader reads on, leaving the connection clean', async () => {
      let rows = 0;
      for await (const item of conn.stream(d.manyRowsSql(100_000), [], { ...T, lines: linesOf('psv', 700) })) rows += (item as EncodedRows).rows;
      expect(rows).toBe(700);
      expect(conn.usable).toBe(true);
      expect((await conn.query('SELECT 3 AS three', [], T)).rows).toEqual([{ three: 3 }]);
    });

    it('classifies a syntax error as query, connection still usable', async () => {
      const err = await driverError(() => conn.query('SELEC nonsense FROM', [], T));
      expect(err.kind).toBe('query');
      expect(err.connectionUsable).toBe(true);
      expect(conn.usable).toBe(true);
      await conn.ping(5);
    });

    it('classifies a duplicate key as constraint + duplicate', async () => {
      await conn.query(`INSERT INTO ${table} (id, name) VALUES (?, ?)`, [2, 'two'], T);
      const err = await driverError(() => conn.query(`INSERT INTO ${table} (id, name) VALUES (?, ?)`, [2, 'again'], T));
      expect(err.kind).toBe('constraint');
      expect(err.duplicate).toBe(true);
      expect(err.connectionUsable).toBe(true);
      await conn.ping(5);
    });

    it('runs a transaction all-or-nothing', async () => {
      const ok = await conn.transaction(
        [
          { sql: `INSERT INTO ${table} (id, name) VALUES (?, ?)`, params: [10, 'ten'] },
          { sql: `UPDATE ${table} SET name = ? WHERE id = ?`, params: ['TEN', 10] },
        ],
        T,
      );
      expect(ok).toEqual([1, 1]);
      const err = await driverError(() =>
        conn.transaction(
          [
            { sql: `INSERT INTO ${table} (id, name) VALUES (?, ?)`, params: [11, 'eleven'] },
            { sql: `INSERT INTO ${table} (id, name) VALUES (?, ?)`, params: [10, 'duplicate'] },
          ],
          T,
        ),
      );
      expect(err.duplicate).toBe(true);
      const { rows } = await conn.query(`SELECT COUNT(*) AS c FROM ${table} WHERE id IN (10, 11)`, [], T);
      expect(Number(rows[0].c)).toBe(1);
    });

    it('stops a statement past its timeout, on the server too', async () => {
      const c = await open();
      const session = await d.sessionId?.(c);
      const started = Date.now();
      const err = await driverError(() => c.query(d.sleepSql, [], { timeoutSeconds: 0.5 }));
      expect(err.kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(4000);
      expect(err.connectionUsable).toBe(c.usable);
      expect(c.usable).toBe(d.keepsConnectionAfterTimeout);
      if (session !== undefined && d.isBusy) await expect.poll(() => d.isBusy!(session), { timeout: 3000, message: 'the statement still runs on the server' }).toBe(false);
      if (c.usable) {
        await c.ping(5);
        expect((await c.query('SELECT 2 AS two', [], T)).rows).toEqual([{ two: 2 }]);
      }
      await c.close();
    });

    // Only drivers with a server session (not the embedded SQLite) have this case.
    const { sessionId, kill, connectorAtPort } = d;
    if (sessionId && kill) {
      it('reports a connection killed mid-query as broken/unreachable and unusable', async () => {
        const c = await open();
        const session = await sessionId(c);
        const running = driverError(() => c.query(d.sleepSql, [], T));
        if (d.isBusy) await waitFor('the statement to run on the server', () => d.isBusy!(session), { timeout: 3000 });
        await kill(session);
        const err = await running;
        expect(['broken', 'unreachable']).toContain(err.kind);
        expect(err.connectionUsable).toBe(false);
        expect(c.usable).toBe(false);
        await c.close();
      });
    }

    it('close() is idempotent and a closed connection refuses work', async () => {
      const c = await open();
      await Promise.all([c.close(), c.close()]);
      await c.close();
      expect(c.usable).toBe(false);
      const err = await driverError(() => c.query('SELECT 1', [], T));
      expect(err.connectionUsable).toBe(false);
    });

    // Only drivers that connect over the network have these cases.
    if (connectorAtPort) {
      it('reports a closed port as unreachable', async () => {
        const port = await closedPort();
        const err = await driverError(() => connectorAtPort(port).connect(99, 3));
        expect(err.kind).toBe('unreachable');
        expect(err.connectionUsable).toBe(false);
      });

      it('times out connecting to a server that never answers', async () => {
        const hole = await blackholeServer();
        try {
          const started = Date.now();
          const err = await driverError(() => connectorAtPort(hole.port).connect(98, 0.5));
          expect(err.kind).toBe('timeout');
          expect(Date.now() - started).toBeLessThan(3000);
        } finally {
          await hole.close();
        }
      });
    }
  });
}

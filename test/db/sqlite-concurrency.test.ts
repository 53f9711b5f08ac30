/**
 * The embedded database under several connections at once (one worker thread each): writes from
 * every connection at the same time all land, exactly once; a long read on one connection holds up
 * neither the reads nor the writes of another (WAL); and the settings that make this so are the
 * ones DESIGN.md documents. Ordering, not timing, is asserted: B must finish while A still runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import type { DbConnection } from '../../src/db/types.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-sqlite-conc-'));
const path = join(dir, 'conc.db');
const setup = new Database(path);
setup.exec('CREATE TABLE wt_conc (id INTEGER PRIMARY KEY, conn INTEGER NOT NULL, n INTEGER NOT NULL)');
setup.close();

const T = { timeoutSeconds: 30 };
/**
 * A read of wt_conc that keeps one core busy for a second or more: it holds its read transaction
 * (in a rollback journal, the SHARED lock a writer's commit must wait for) until it ends.
 */
const LONG_READ =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 15000000) SELECT count(*) AS n FROM c WHERE x > (SELECT count(*) FROM wt_conc)';

const open: DbConnection[] = [];
async function connect(n: number): Promise<DbConnection[]> {
  const connector = createConnector('sqlite_conc', targetFromUrl(`sqlite:${path}`));
  const conns = await Promise.all(Array.from({ length: n }, (_, i) => connector.connect(i + 1, 10)));
  open.push(...conns);
  return conns;
}

/** Runs `first` and `second` at once; resolves with the order in which they finished. */
async function finishOrder(first: Promise<unknown>, second: Promise<unknown>): Promise<string[]> {
  const order: string[] = [];
  await Promise.all([first.then(() => order.push('first')), second.then(() => order.push('second'))]);
  return order;
}

describe('sqlite: several connections at once', () => {
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is set for durable concurrent use: WAL, synchronous FULL, a 5 s busy timeout', async () => {
    const [c] = await connect(1);
    const one = async (sql: string) => (await c.query(sql, [], T)).rows[0];
    expect(await one('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
    expect(await one('PRAGMA synchronous')).toEqual({ synchronous: 2 });
    // The busy timeout, by what it does (a thread's is the interrupt extension's, which PRAGMA busy_timeout
    // does not show): a write waits for another connection's write lock, up to 5 s, then fails.
    const holder = new Database(path);
    try {
      const heldFor = async (ms: number) => {
        holder.exec('BEGIN IMMEDIATE');
        const release = setTimeout(() => holder.exec('ROLLBACK'), ms);
        const began = Date.now();
        try {
          await c.query('INSERT INTO wt_conc (conn, n) VALUES (?, ?)', [7, 7], T);
          return { waited: Date.now() - began, error: undefined };
        } catch (err) {
          return { waited: Date.now() - began, error: err as Error };
        } finally {
          // Released by its timer when the write succeeded; after a write that gave up, release it now.
          clearTimeout(release);
          if (holder.inTransaction) holder.exec('ROLLBACK');
        }
      };
      const short = await heldFor(800);
      expect(short.error).toBeUndefined();
      expect(short.waited).toBeGreaterThanOrEqual(700);
      const long = await heldFor(7000);
      expect(long.error?.message).toMatch(/database is locked/);
      expect(long.waited).toBeGreaterThanOrEqual(4500);
      expect(long.waited).toBeLessThan(6900);
      await c.query('DELETE FROM wt_conc', [], T);
    } finally {
      holder.close();
    }
  });

  it('writes from four connections at once all land exactly once, single statements and transactions alike', async () => {
    const conns = await connect(4);
    const SINGLE = 60;
    const TXS = 15;
    const PER_TX = 4;
    await Promise.all(
      conns.map(async (c, k) => {
        for (let i = 0; i < SINGLE; i++) await c.query('INSERT INTO wt_conc (conn, n) VALUES (?, ?)', [k, i], T);
        for (let t = 0; t < TXS; t++) {
          const statements = Array.from({ length: PER_TX }, (_, j) => ({ sql: 'INSERT INTO wt_conc (conn, n) VALUES (?, ?)', params: [k, 1000 + t * PER_TX + j] }));
          expect(await c.transaction(statements, T)).toEqual(Array(PER_TX).fill(1));
        }
      }),
    );
    const { rows } = await conns[0].query('SELECT conn, count(*) AS rows, count(DISTINCT n) AS distinct_n FROM wt_conc GROUP BY conn ORDER BY conn', [], T);
    const each = SINGLE + TXS * PER_TX;
    expect(rows).toEqual([0, 1, 2, 3].map((k) => ({ conn: k, rows: each, distinct_n: each })));
    await conns[0].query('DELETE FROM wt_conc', [], T);
  });

  it('a long read on one connection holds up neither a read nor a committed write on another', async () => {
    const [a, b] = await connect(2);
    const longRead = a.query(LONG_READ, [], T);
    const readOrder = await finishOrder(longRead, b.query('SELECT count(*) AS n FROM wt_conc', [], T));
    expect(readOrder).toEqual(['second', 'first']);

    const longRead2 = a.query(LONG_READ, [], T);
    const write = b.transaction([{ sql: 'INSERT INTO wt_conc (conn, n) VALUES (?, ?)', params: [9, 9] }], T);
    expect(await finishOrder(longRead2, write)).toEqual(['second', 'first']);
    expect((await b.query('SELECT count(*) AS n FROM wt_conc WHERE conn = 9', [], T)).rows).toEqual([{ n: 1 }]);
    await b.query('DELETE FROM wt_conc', [], T);
  });
});

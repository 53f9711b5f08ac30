import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { SqliteWorkers } from '../../src/config/schema.js';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { loadInterrupter, openInterrupter, workerKind } from '../../src/db/sqlite-interrupt.js';
import { driverSuite } from './driver-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-sqlite-'));
const path = join(dir, 'test.db');
new Database(path).close();
// These tests watch each connection's own worker, so its reads stay there too (sqlite_inline_read_ms
// 0; reads on the event loop, whose workers start only when needed, are sqlite-inline.test.ts's).
const connectorOf = (workers: SqliteWorkers) => (p = path) =>
  createConnector('sqlite_test', targetFromUrl(`sqlite:${p}`, { sqlite_workers: workers, sqlite_inline_read_ms: 0 }));

/** Our SQLite worker processes (children of this test process). */
function workerPids(): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('sqlite-worker'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}
const known = new Set<number>();
/** The worker of the connection opened last: the newest child not seen before (pids grow). */
function newestWorker(): number {
  const fresh = workerPids().filter((p) => !known.has(p));
  for (const p of fresh) known.add(p);
  if (fresh.length === 0) throw new Error('no new SQLite worker');
  return Math.max(...fresh);
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** This process's threads (Linux), and the CPU time each has used, in clock ticks. */
function threadTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks.set(Number(tid), Number(fields[11]) + Number(fields[12])); // utime + stime
    } catch {
      // the thread ended meanwhile
    }
  }
  return ticks;
}
/** Threads started since the last call: a new connection's worker thread among them. */
const seenThreads = new Set<number>(threadTicks().keys());
const threadSessions = new Map<number, number[]>();
function newThreads(): number {
  const fresh = [...threadTicks().keys()].filter((t) => !seenThreads.has(t));
  for (const t of fresh) seenThreads.add(t);
  if (fresh.length === 0) throw new Error('no new thread');
  threadSessions.set(threadSessions.size + 1, fresh);
  return threadSessions.size;
}
/** Whether one of a session's threads used most of a core over 300 ms: a statement still running. */
async function threadsBusy(session: number): Promise<boolean> {
  const tids = threadSessions.get(session) ?? [];
  const before = threadTicks();
  await new Promise((r) => setTimeout(r, 300));
  const after = threadTicks();
  const clockTicksPerSecond = 100;
  return tids.some((t) => (((after.get(t) ?? 0) - (before.get(t) ?? 0)) * 1000) / clockTicksPerSecond >= 150);
}

const count = (n: number) => `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ${n}) SELECT n FROM c`;
/** Minutes of work in one sqlite3_step. */
const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT count(*) AS n FROM c';

describe('sqlite', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe.each(['processes', 'threads'] as const)('connections in worker %s', (workers) => {
    const connector = connectorOf(workers);
    const threads = workers === 'threads';

    driverSuite({
      name: `sqlite (${workers})`,
      connector: () => connector(),
      sleepSql: RUNAWAY,
      manyRowsSql: count,
      textType: 'TEXT',
      // A thread's statement is interrupted and its connection kept; a process is killed.
      keepsConnectionAfterTimeout: threads,
      sessionId: async () => (threads ? newThreads() : newestWorker()),
      isBusy: async (session) => (threads ? threadsBusy(session) : alive(session)),
      // A thread cannot be killed from outside without its process.
      kill: threads
        ? undefined
        : async (pid) => {
            process.kill(pid, 'SIGKILL');
          },
      dropTable: async (c, table) => {
        await c.query(`DROP TABLE IF EXISTS ${table}`, [], { timeoutSeconds: 5 });
      },
    });

    describe('sqlite specifics', () => {
      it('opens in WAL mode and keeps integers exact', async () => {
        const c = await connector().connect(1, 5);
        try {
          expect((await c.query('PRAGMA journal_mode', [], { timeoutSeconds: 5 })).rows).toEqual([{ journal_mode: 'wal' }]);
          const { rows } = await c.query('SELECT 9007199254740993 AS big, ? AS t, ? AS d', [true, new Date(0)], { timeoutSeconds: 5 });
          expect(rows).toEqual([{ big: '9007199254740993', t: 1, d: '1970-01-01T00:00:00.000Z' }]);
        } finally {
          await c.close();
        }
      });

      it('carries what JSON cannot over its worker channel: bigint parameters, BLOBs and infinities, in queries and streams', async () => {
        const c = await connector().connect(6, 5);
        const o = { timeoutSeconds: 5 };
        try {
          const sql = "SELECT ? AS big, x'00ff10' AS blob, 9e999 AS inf, -9e999 AS ninf, 'a\nb' AS text, 1.5 AS real";
          const expected = { big: '9007199254740993', blob: Buffer.from([0, 255, 16]), inf: Infinity, ninf: -Infinity, text: 'a\nb', real: 1.5 };
          expect((await c.query(sql, [9007199254740993n], o)).rows).toEqual([expected]);
          const streamed: unknown[] = [];
          for await (const row of c.stream(sql, [9007199254740993n], o)) streamed.push(row);
          expect(streamed).toEqual([expected]);
          expect((await c.query('SELECT ? + 1 AS n', [41n], o)).rows).toEqual([{ n: 42 }]);
        } finally {
          await c.close();
        }
      });

      it('reports a missing database file as unreachable', async () => {
        await expect(connector(join(dir, 'missing.db')).connect(2, 5)).rejects.toMatchObject({ kind: 'unreachable', connectionUsable: false });
      });

      it('times out a stream mid-statement: a thread is interrupted and kept, a process killed', async () => {
        const c = await connector().connect(3, 5);
        const session = threads ? newThreads() : newestWorker();
        const slow = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT x FROM c ORDER BY x DESC';
        await expect(
          (async () => {
            for await (const _ of c.stream(slow, [], { timeoutSeconds: 0.5 })) void _;
          })(),
        ).rejects.toMatchObject({ kind: 'timeout', connectionUsable: threads });
        expect(c.usable).toBe(threads);
        if (threads) {
          expect(await threadsBusy(session)).toBe(false);
          expect((await c.query('SELECT 8 AS s', [], { timeoutSeconds: 5 })).rows).toEqual([{ s: 8 }]);
        } else expect(alive(session)).toBe(false);
        await c.close();
      });

      it('reuses prepared statements across queries and streams of the same SQL, and sees schema changes', async () => {
        const c = await connector().connect(5, 5);
        const o = { timeoutSeconds: 5 };
        try {
          await c.query('CREATE TABLE IF NOT EXISTS prep_t (n INTEGER)', [], o);
          await c.query('DELETE FROM prep_t', [], o);
          for (let i = 1; i <= 3; i++) await c.query('INSERT INTO prep_t (n) VALUES (?)', [i], o);
          const sql = 'SELECT * FROM prep_t ORDER BY n';
          expect((await c.query(sql, [], o)).rows).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
          const streamed: unknown[] = [];
          for await (const row of c.stream(sql, [], o)) streamed.push(row);
          expect(streamed).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
          expect((await c.query(sql, [], o)).rowCount).toBe(3);
          // The cached statement is prepared again by SQLite after a schema change.
          await c.query('ALTER TABLE prep_t ADD COLUMN m INTEGER DEFAULT 7', [], o);
          expect((await c.query(sql, [], o)).rows[0]).toEqual({ n: 1, m: 7 });
          await c.query('DROP TABLE prep_t', [], o);
        } finally {
          await c.close();
        }
      });

      it('cancel() between batches keeps the connection usable', async () => {
        const c = await connector().connect(4, 5);
        try {
          const rows = c.stream(count(10_000), [], { timeoutSeconds: 5 });
          const it = rows[Symbol.asyncIterator]();
          expect((await it.next()).value).toEqual({ n: 1 });
          await rows.cancel();
          await rows.cancel();
          expect(c.usable).toBe(true);
          expect((await c.query('SELECT 7 AS s', [], { timeoutSeconds: 5 })).rows).toEqual([{ s: 7 }]);
        } finally {
          await c.close();
        }
      });
    });
  });

  describe('worker threads stopped through sqlite3_interrupt', () => {
    const connector = connectorOf('threads');
    const o = { timeoutSeconds: 5 };
    const timeTaken = async (p: Promise<unknown>) => {
      const began = Date.now();
      await p.catch(() => undefined);
      return Date.now() - began;
    };

    it('interrupts only the connection whose statement is past its timeout', async () => {
      const [short, long] = await Promise.all([connector().connect(11, 5), connector().connect(12, 5)]);
      try {
        const longRun = long.query(RUNAWAY, [], { timeoutSeconds: 2.5 });
        const longTime = timeTaken(longRun);
        await expect(short.query(RUNAWAY, [], { timeoutSeconds: 0.5 })).rejects.toMatchObject({ kind: 'timeout', connectionUsable: true });
        await expect(longRun).rejects.toMatchObject({ kind: 'timeout', connectionUsable: true });
        expect(await longTime).toBeGreaterThanOrEqual(2400);
        expect((await short.query('SELECT 1 AS a', [], o)).rows).toEqual([{ a: 1 }]);
        expect((await long.query('SELECT 2 AS a', [], o)).rows).toEqual([{ a: 2 }]);
      } finally {
        await Promise.all([short.close(), long.close()]);
      }
    });

    it('stops the statement of a caller who left at once, and keeps the connection', async () => {
      const c = await connector().connect(13, 5);
      try {
        const left = new AbortController();
        const running = c.query(RUNAWAY, [], { timeoutSeconds: 30, signal: left.signal });
        setTimeout(() => left.abort(), 200);
        const took = timeTaken(running);
        await expect(running).rejects.toMatchObject({ kind: 'cancelled', connectionUsable: true });
        expect(await took).toBeLessThan(1500);
        expect((await c.query('SELECT 3 AS a', [], o)).rows).toEqual([{ a: 3 }]);
      } finally {
        await c.close();
      }
    });

    it('rolls back a transaction past its timeout and leaves none open', async () => {
      const [c, other] = await Promise.all([connector().connect(14, 5), connector().connect(15, 5)]);
      try {
        await c.query('CREATE TABLE IF NOT EXISTS tx_t (n INTEGER)', [], o);
        await c.query('DELETE FROM tx_t', [], o);
        const statements = [
          { sql: 'INSERT INTO tx_t (n) VALUES (?)', params: [1] },
          { sql: `INSERT INTO tx_t (n) SELECT n FROM (${RUNAWAY})`, params: [] },
        ];
        await expect(c.transaction(statements, { timeoutSeconds: 0.5 })).rejects.toMatchObject({ kind: 'timeout', connectionUsable: true });
        expect((await other.query('SELECT count(*) AS n FROM tx_t', [], o)).rows).toEqual([{ n: 0 }]);
        // Were a transaction still open on c, this insert would stay invisible to the other connection.
        await c.query('INSERT INTO tx_t (n) VALUES (5)', [], o);
        expect((await other.query('SELECT n FROM tx_t', [], o)).rows).toEqual([{ n: 5 }]);
        await c.query('DROP TABLE tx_t', [], o);
      } finally {
        await Promise.all([c.close(), other.close()]);
      }
    });

    it("interrupts a statement waiting for another connection's write lock (SQLite's own busy wait would sleep through it)", async () => {
      const holder = new Database(path);
      holder.exec('CREATE TABLE IF NOT EXISTS lock_t (n INTEGER)');
      const c = await connector().connect(16, 5);
      try {
        holder.exec('BEGIN IMMEDIATE');
        const blocked = c.query('INSERT INTO lock_t (n) VALUES (1)', [], { timeoutSeconds: 0.5 });
        const took = timeTaken(blocked);
        await expect(blocked).rejects.toMatchObject({ kind: 'timeout', connectionUsable: true });
        expect(await took).toBeLessThan(1500); // the busy timeout is 5 s
        holder.exec('ROLLBACK');
        expect((await c.query('SELECT count(*) AS n FROM lock_t', [], o)).rows).toEqual([{ n: 0 }]);
        await c.query('DROP TABLE lock_t', [], o);
      } finally {
        if (holder.inTransaction) holder.exec('ROLLBACK');
        holder.close();
        await c.close();
      }
    });

    it("gives callers' SQL no way to interrupt another connection", async () => {
      const c = await connector().connect(17, 5);
      try {
        await expect(c.query('SELECT wt_interrupt(1) AS found', [], o)).rejects.toThrow(/no such function: wt_interrupt/);
      } finally {
        await c.close();
      }
    });

    it('sqlite_workers: threads need the extension, auto falls back to processes without it, processes never load it', () => {
      const missing = () => openInterrupter(join(dir, 'no-such-extension.so'));
      expect(missing()).toBeInstanceOf(Error);
      expect(() => workerKind('threads', missing)).toThrow(/sqlite_workers is threads, but the SQLite interrupt extension .* is not built/);
      expect(workerKind('auto', missing)).toMatchObject({ kind: 'processes', why: expect.stringMatching(/not built/) });
      expect(workerKind('processes', () => expect.unreachable('processes must not load the extension'))).toMatchObject({ kind: 'processes' });
      expect(workerKind('auto')).toMatchObject({ kind: 'threads' });
    });

    it.runIf(process.env.CI === 'true')('is built by npm install on CI, so the thread path is what CI tests', () => {
      expect(loadInterrupter()).not.toBeInstanceOf(Error);
    });
  });
});

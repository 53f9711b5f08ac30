import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { driverSuite } from './driver-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-sqlite-'));
const path = join(dir, 'test.db');
new Database(path).close();
const connector = (p = path) => createConnector('sqlite_test', targetFromUrl(`sqlite:${p}`));

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

const count = (n: number) => `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ${n}) SELECT n FROM c`;

describe('sqlite', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  driverSuite({
    name: 'sqlite',
    connector: () => connector(),
    // Minutes of work in one sqlite3_step: only killing the worker stops it.
    sleepSql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT count(*) AS n FROM c',
    manyRowsSql: count,
    textType: 'TEXT',
    keepsConnectionAfterTimeout: false,
    sessionId: async () => newestWorker(),
    isBusy: async (pid) => alive(pid),
    kill: async (pid) => {
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

    it('times out a stream mid-statement and kills its worker', async () => {
      const c = await connector().connect(3, 5);
      const pid = newestWorker();
      const slow = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT x FROM c ORDER BY x DESC';
      await expect(
        (async () => {
          for await (const _ of c.stream(slow, [], { timeoutSeconds: 0.5 })) void _;
        })(),
      ).rejects.toMatchObject({ kind: 'timeout', connectionUsable: false });
      expect(c.usable).toBe(false);
      expect(alive(pid)).toBe(false);
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

/**
 * Reads run on the event loop (sqlite-inline.ts), bounded by the interrupt extension's watchdog:
 * what runs there, that a statement past its budget is stopped there and answered by the worker,
 * and that a connection's own state (a TEMP table) is never read past.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { InlineReads } from '../../src/db/sqlite-inline.js';
import { interruptExtensionPath } from '../../src/db/sqlite-interrupt.js';
import { EncodedRows, type DbConnection, type LineEncoding } from '../../src/db/types.js';
import { startGateway } from '../helpers/gateway-process.js';
import { loopStallWhile } from '../helpers/loop-stall.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-sqlite-inline-'));
const path = join(dir, 'inline.db');
{
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (n INTEGER, big INTEGER)');
  db.prepare('INSERT INTO t VALUES (1, 9007199254740993)').run();
  db.close();
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c';
const o = { timeoutSeconds: 5 };

/** Ids of this process's Node worker threads (Node names their threads WorkerThread; its helpers libuv-worker, V8Worker...). */
function workerThreadIds(): Set<string> {
  return new Set(
    readdirSync('/proc/self/task').filter((t) => {
      try {
        return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'WorkerThread';
      } catch {
        return false; // ended meanwhile
      }
    }),
  );
}

/** Worker threads started since `before`, by id: an earlier test's thread still ending cannot move the count. */
function startedSince(before: Set<string>): number {
  return [...workerThreadIds()].filter((t) => !before.has(t)).length;
}

/** Ids of this process's statement watchdogs (native/sqlite-interrupt.c names its thread). */
function watchdogThreadIds(): Set<string> {
  return new Set(readdirSync('/proc/self/task').filter((t) => threadFile(t, 'comm')?.trim() === 'wt-watchdog'));
}

function threadFile(tid: string, name: string): string | undefined {
  try {
    return readFileSync(`/proc/self/task/${tid}/${name}`, 'utf8');
  } catch {
    return undefined; // ended meanwhile
  }
}

/** How often these threads have woken from a wait so far (each wake-up is a voluntary context switch). */
function wakeups(tids: string[]): number {
  return tids.reduce((sum, t) => sum + Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(threadFile(t, 'status') ?? '')?.[1] ?? 0), 0);
}

describe('InlineReads: reads on the event loop within a budget', () => {
  it('stops a read past its budget at once and hands it back; answers a short one with exact integers', () => {
    const reads = InlineReads.open(path, interruptExtensionPath(), 2);
    try {
      const began = performance.now();
      expect(reads.query(RUNAWAY, [])).toBeUndefined();
      // Without the watchdog this statement never ends; 2 ms of budget and a margin for a busy machine.
      expect(performance.now() - began).toBeLessThan(250);
      expect(reads.overruns).toBe(1);
      // It goes to the worker for a while now, without being tried here again.
      expect(reads.query(RUNAWAY, [])).toBeUndefined();
      expect(reads.overruns).toBe(1);
      expect(reads.query('SELECT n, big, ? AS flag, ? AS at FROM t', [true, new Date(0)])).toEqual({
        rows: [{ n: 1, big: '9007199254740993', flag: 1, at: '1970-01-01T00:00:00.000Z' }],
        rowCount: 1,
      });
    } finally {
      reads.close();
    }
  });

  it('runs nothing but reads, and its budget cannot be lifted by SQL', () => {
    const reads = InlineReads.open(path, interruptExtensionPath(), 1);
    try {
      for (const sql of ['INSERT INTO t VALUES (2, 2)', 'WITH x AS (SELECT 1) DELETE FROM t', 'BEGIN', 'PRAGMA user_version = 5', 'SELECT wt_watchdog_budget(3600000000)', 'SELECT * FROM no_such_table']) {
        expect(reads.query(sql, []), sql).toBeUndefined();
      }
      // One step over a huge value cannot be interrupted: past a megabyte it is the worker's.
      expect(reads.query('SELECT length(zeroblob(?)) AS n', [2_000_000])).toBeUndefined();
      expect(reads.query('SELECT length(zeroblob(?)) AS n', [1000])?.rows).toEqual([{ n: 1000 }]);
      expect(reads.query('SELECT count(*) AS c FROM t', [])?.rows).toEqual([{ c: 1 }]);
      const began = performance.now();
      expect(reads.query(RUNAWAY, [])).toBeUndefined();
      expect(performance.now() - began).toBeLessThan(250);
    } finally {
      reads.close();
    }
  });
});

describe('the watchdog of reads on the event loop', () => {
  // Signalling a sleeping watchdog costs the read a system call and wakes a thread on another core:
  // at one client that was about 0.7 wake-ups and several µs per request.
  it.runIf(process.platform === 'linux')('wakes about once per budget under closely spaced reads, not once per read', async () => {
    const before = watchdogThreadIds();
    const reads = InlineReads.open(path, interruptExtensionPath(), 20);
    try {
      const mine = [...watchdogThreadIds()].filter((t) => !before.has(t));
      expect(mine).toHaveLength(1);
      const woken = wakeups(mine);
      const began = performance.now();
      let n = 0;
      while (performance.now() - began < 400) {
        expect(reads.query('SELECT n FROM t', [])?.rows).toEqual([{ n: 1 }]);
        n++;
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(n).toBeGreaterThan(60);
      // Woken at each read: about n. Looking again once per budget of 20 ms: about 20, and one more at the start.
      expect(wakeups(mine) - woken).toBeLessThan(n / 3);
      // And a read that starts while it waits out a budget is still stopped (within two budgets).
      const stopAt = performance.now();
      expect(reads.query(RUNAWAY, [])).toBeUndefined();
      expect(performance.now() - stopAt).toBeLessThan(500);
    } finally {
      reads.close();
    }
  });
});

describe('SQLite connections with reads on the event loop', () => {
  const connector = (inlineMs: number) => createConnector('sqlite_inline', targetFromUrl(`sqlite:${path}`, { sqlite_workers: 'threads', sqlite_inline_read_ms: inlineMs }));
  // The inline connection is query_only; a worker's connection is not: the answer says where a read ran.
  const WHERE = 'SELECT query_only AS inline FROM pragma_query_only';

  async function withConnections<T>(inlineMs: number, n: number, fn: (...c: DbConnection[]) => Promise<T>): Promise<T> {
    const c = connector(inlineMs);
    const conns = await Promise.all(Array.from({ length: n }, (_, i) => c.connect(i + 1, 5)));
    try {
      return await fn(...conns);
    } finally {
      await Promise.all(conns.map((x) => x.close()));
    }
  }

  it('runs a read on the event loop by default, and in the worker when sqlite_inline_read_ms is 0', async () => {
    await withConnections(1, 1, async (c) => {
      expect((await c.query(WHERE, [], o)).rows).toEqual([{ inline: 1 }]);
      // Too large a value for the event loop: answered by the worker all the same.
      expect((await c.query('SELECT length(zeroblob(?)) AS n', [2_000_000], o)).rows).toEqual([{ n: 2_000_000 }]);
    });
    await withConnections(0, 1, async (c) => expect((await c.query(WHERE, [], o)).rows).toEqual([{ inline: 0 }]));
  });

  it('starts no worker thread for a connection that only reads; its first write starts one', async () => {
    // Node names a worker's thread WorkerThread (its helpers are libuv-worker, V8Worker...).
    const before = workerThreadIds();
    const started = () => startedSince(before);
    await withConnections(1, 3, async (a, b, c) => {
      for (let i = 0; i < 20; i++) for (const conn of [a, b, c]) expect((await conn.query('SELECT n FROM t', [], o)).rows).toEqual([{ n: 1 }]);
      await a.ping(5);
      expect(started()).toBe(0);
      expect((await a.query('UPDATE t SET n = n WHERE n = 1', [], o)).rowCount).toBe(1);
      expect(started()).toBe(1);
    });
  }, 15_000);

  it('answers with the same rows as the worker, for every kind of value', async () => {
    const sql = "SELECT ? AS big, ? AS small, x'00ff10' AS blob, 9e999 AS inf, -9e999 AS ninf, 'a\nb' AS text, 1.5 AS real, NULL AS empty, ? AS flag, ? AS at, n, big AS stored, 9007199254740992 AS edge, -9007199254740991 AS lowest, 1e300 AS huge FROM t";
    const params = [9007199254740993n, 42n, false, new Date(86_400_000)];
    const inline = await withConnections(1, 1, async (c) => {
      expect((await c.query(WHERE, [], o)).rows).toEqual([{ inline: 1 }]);
      return (await c.query(sql, params, o)).rows;
    });
    const worker = await withConnections(0, 1, async (c) => (await c.query(sql, params, o)).rows);
    expect(inline).toEqual(worker);
    expect(inline[0]).toMatchObject({ edge: '9007199254740992', lowest: -9007199254740991, huge: 1e300, big: '9007199254740993', small: 42, blob: Buffer.from([0, 255, 16]), inf: Infinity, flag: 0, stored: '9007199254740993' });
  });

  it('reads integers past 2^53 exactly also where nothing else in the answer needs it', async () => {
    await withConnections(1, 1, async (c) => {
      expect((await c.query(WHERE, [], o)).rows).toEqual([{ inline: 1 }]);
      expect((await c.query('SELECT 9007199254740992 AS edge, 9007199254740991 AS safe', [], o)).rows).toEqual([{ edge: '9007199254740992', safe: 9007199254740991 }]);
      expect((await c.query('SELECT big FROM t', [], o)).rows).toEqual([{ big: '9007199254740993' }]);
    });
  });

  it('reads a stream of at most 100 rows on the event loop, the same rows as the worker; a longer one streams from the worker', async () => {
    const collect = async (c: DbConnection, sql: string, lines?: LineEncoding) => {
      const items: unknown[] = [];
      for await (const item of c.stream(sql, [], { ...o, lines })) items.push(item);
      return items;
    };
    const small = 'SELECT n, big, x\'0a\' AS blob, 9e999 AS inf FROM t';
    const worker = await withConnections(0, 1, (c) => collect(c, small));
    const before = workerThreadIds();
    const started = () => startedSince(before);
    const count = (n: number) => `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT x FROM c`;
    await withConnections(1, 1, async (c) => {
      expect(await collect(c, WHERE)).toEqual([{ inline: 1 }]);
      expect(await collect(c, small)).toEqual(worker);
      // Cut at max_rows, at most 100: read here, only those rows, as one batch of lines.
      expect(await collect(c, count(2000), { format: 'psv', eol: '\n', separator: '', maxRows: 3 })).toEqual([new EncodedRows('1\n2\n3\n', 3, ['x'])]);
      expect(started()).toBe(0);
      // Past 100 rows: the worker streams all of it, in order.
      const long = (await collect(c, count(150))) as { x: number }[];
      expect(long.length).toBe(150);
      expect(long.every((r, i) => r.x === i + 1)).toBe(true);
      expect(started()).toBe(1);
    });
  });

  it("reads a connection's own TEMP table, which shadows the shared one, in its worker; other connections read the shared one", async () => {
    await withConnections(1, 2, async (a, b) => {
      await a.query('CREATE TEMP TABLE t AS SELECT 2 AS n', [], o);
      expect((await a.query('SELECT n FROM t', [], o)).rows).toEqual([{ n: 2 }]);
      expect((await a.query(WHERE, [], o)).rows).toEqual([{ inline: 0 }]);
      expect((await b.query('SELECT n FROM t', [], o)).rows).toEqual([{ n: 1 }]);
      expect((await b.query(WHERE, [], o)).rows).toEqual([{ inline: 1 }]);
    });
  });

  it('keeps the reads of an in-memory database, which is each connection\'s own, in its worker', async () => {
    const c = await createConnector('sqlite_memory', targetFromUrl('sqlite::memory:', { sqlite_workers: 'threads', sqlite_inline_read_ms: 1 })).connect(1, 5);
    try {
      expect((await c.query(WHERE, [], o)).rows).toEqual([{ inline: 0 }]);
      await c.query('CREATE TABLE mine (n INTEGER)', [], o);
      expect((await c.query("SELECT count(*) AS tables FROM sqlite_master WHERE name = 'mine'", [], o)).rows).toEqual([{ tables: 1 }]);
    } finally {
      await c.close();
    }
  });

  it('reads at once what another connection has committed', async () => {
    await withConnections(1, 2, async (a, b) => {
      await a.query('CREATE TABLE IF NOT EXISTS seen (n INTEGER)', [], o);
      for (let i = 1; i <= 20; i++) {
        await a.query('INSERT INTO seen VALUES (?)', [i], o);
        expect((await b.query('SELECT max(n) AS m FROM seen', [], o)).rows).toEqual([{ m: i }]);
      }
      await a.transaction([{ sql: 'INSERT INTO seen VALUES (?)', params: [100] }], o);
      expect((await b.query('SELECT max(n) AS m FROM seen', [], o)).rows).toEqual([{ m: 100 }]);
      await a.query('DROP TABLE seen', [], o);
    });
  });

  it('stops a runaway read at its timeout, in the worker, while the event loop keeps turning; the stop on the event loop is reported', async () => {
    let overruns = 0;
    const c = await createConnector('sqlite_inline', targetFromUrl(`sqlite:${path}`, { sqlite_workers: 'threads' }), { sqliteInlineOverrun: () => overruns++ }).connect(1, 5);
    try {
      const { stallMs: stall, error } = await loopStallWhile(() => c.query(RUNAWAY, [], { timeoutSeconds: 0.5 }), 5);
      expect(error).toMatchObject({ kind: 'timeout', connectionUsable: true });
      // Without the watchdog the read would never leave the event loop; 400 ms leaves room for a busy machine.
      expect(stall).toBeLessThan(400);
      expect(overruns).toBe(1);
      expect((await c.query('SELECT 5 AS n', [], o)).rows).toEqual([{ n: 5 }]);
    } finally {
      await c.close();
    }
  });
});

describe('a gateway with reads on the event loop', () => {
  it('answers a short read, counts a read stopped at the budget in wt_sqlite_inline_overruns_total, and answers it from the worker', async () => {
    const endpoints = join(dir, 'inline-endpoints.yaml');
    writeFileSync(
      endpoints,
      [
        'endpoints:',
        '  - { method: GET, path: /short, resources: [lite], statements: [{ sql: "SELECT n FROM t" }], result: rows }',
        // Long enough to pass 1 ms of CPU on any machine, short enough to end in its worker.
        '  - { method: GET, path: /long, resources: [lite], statements: [{ sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) AS n FROM c" }], result: one }',
        '',
      ].join('\n'),
    );
    const gw = await startGateway({
      config: { log_level: 'INFO', resource_ids: ['lite'], secure: { lite: { db_type: 'sqlite', db_path: path } }, endpoints: [endpoints] },
    });
    try {
      const overruns = async () => /wt_sqlite_inline_overruns_total\{resource_id="lite"\} (\d+)/.exec(await (await fetch(`${gw.url}/metrics`)).text())?.[1];
      expect(await overruns()).toBe('0');
      expect(await (await fetch(`${gw.url}/short`)).json()).toEqual([{ n: 1 }]);
      expect(await overruns()).toBe('0');
      expect(await (await fetch(`${gw.url}/long`)).json()).toEqual({ n: 3000000 });
      expect(await overruns()).toBe('1');
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  }, 60_000);
});

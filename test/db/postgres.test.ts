import { describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import type { DbConnection } from '../../src/db/types.js';
import { pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';
import { admin, postgresDialect } from './postgres-dialect.js';

const skip = requireOrSkip('PostgreSQL', await pgAvailable());
const connector = (port?: number) => createConnector('pg_test', pgTarget(port ? { db_port: port } : {}));

describe.skipIf(skip)('postgres', () => {
  driverSuite({
    name: 'postgres',
    connector: () => connector(),
    connectorAtPort: (port) => connector(port),
    ...postgresDialect,
  });

  describe('postgres types', () => {
    it('returns int8 as a number when safe and as exact text otherwise; timestamps as UTC Dates', async () => {
      const c = await connector().connect(1, 5);
      try {
        const { rows } = await c.query(
          "SELECT count(*) AS c, 9007199254740993::int8 AS big, TIMESTAMP '2025-01-06 01:00:00' AS ts, ?::timestamp AS p",
          [new Date(Date.UTC(2025, 0, 6, 2))],
          { timeoutSeconds: 5 },
        );
        expect(rows[0].c).toBe(1);
        expect(rows[0].big).toBe('9007199254740993');
        expect((rows[0].ts as Date).toISOString()).toBe('2025-01-06T01:00:00.000Z');
        expect((rows[0].p as Date).toISOString()).toBe('2025-01-06T02:00:00.000Z');
      } finally {
        await c.close();
      }
    });

    it('times out a stream waiting on a slow statement and stops it on the server', async () => {
      const c = await connector().connect(2, 5);
      const pid = Number((await c.query('SELECT pg_backend_pid() AS pid', [], { timeoutSeconds: 5 })).rows[0].pid);
      const rows = c.stream('SELECT pg_sleep(5) AS s', [], { timeoutSeconds: 0.5 });
      await expect(
        (async () => {
          for await (const _ of rows) void _;
        })(),
      ).rejects.toMatchObject({ kind: 'timeout' });
      expect((await admin(`SELECT 1 FROM pg_stat_activity WHERE pid = ? AND state = 'active'`, [pid])).length).toBe(0);
      // The statement was stopped, so the connection is proven clean and kept.
      expect(c.usable).toBe(true);
      expect((await c.query('SELECT 2 AS two', [], { timeoutSeconds: 5 })).rows).toEqual([{ two: 2 }]);
      await c.close();
    });

    /**
     * Runs `body` on a connection whose streams can write a row to a table with a deferred trigger
     * (`wt_deferred_mark()` inserts one), so the commit at the stream's Sync runs `triggerBody`.
     */
    async function withDeferredTrigger(triggerBody: string, body: (c: DbConnection) => Promise<void>): Promise<void> {
      const c = await connector().connect(3, 5);
      const run = (sql: string) => c.query(sql, [], { timeoutSeconds: 5 });
      const drop = ['DROP TABLE IF EXISTS wt_deferred', 'DROP FUNCTION IF EXISTS wt_deferred_mark()', 'DROP FUNCTION IF EXISTS wt_deferred_fire()'];
      try {
        for (const sql of drop) await run(sql);
        await run('CREATE TABLE wt_deferred (x int)');
        await run(`CREATE FUNCTION wt_deferred_fire() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${triggerBody}; RETURN NULL; END $$`);
        await run('CREATE CONSTRAINT TRIGGER wt_deferred_t AFTER INSERT ON wt_deferred DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wt_deferred_fire()');
        await run('CREATE FUNCTION wt_deferred_mark() RETURNS int LANGUAGE sql AS $$ INSERT INTO wt_deferred VALUES (1) RETURNING 1 $$');
        // A stream first sets the streams' statement_timeout, so the next one is sent at once.
        for await (const _ of c.stream('SELECT 1 AS one', [], { timeoutSeconds: 5 })) void _;
        await body(c);
        // Kept, so it must answer each statement with that statement's own rows.
        expect(c.usable).toBe(true);
        for (const n of [2, 3, 4]) expect((await run(`SELECT ${n} AS n`)).rows).toEqual([{ n }]);
        expect(c.usable).toBe(true);
      } finally {
        const cleanup = await connector().connect(4, 5);
        for (const sql of drop) await cleanup.query(sql, [], { timeoutSeconds: 5 }).catch(() => undefined);
        await cleanup.close();
        await c.close();
      }
    }
    /**
     * More rows than one batch, so a fetch ends suspended (the portal stays open); row 1 writes; the
     * first and second batches each take a moment longer (`pause` s) to make, so the stop below
     * finds its batch still on the way.
     */
    const markingStream = (pause: number) =>
      `SELECT n, CASE WHEN n = 1 THEN wt_deferred_mark() END AS m, CASE WHEN n IN (2, 502) THEN pg_sleep(${pause}) END AS p FROM generate_series(1, 2000) AS n`;
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

    // Cancelled on the server before the portal is closed: a cancel landing on the Sync's commit
    // (which the trigger makes last 1 s) would be answered by pg-cursor with a second Sync.
    it('a stream left while its first batch is on the way keeps its connection in step', async () => {
      await withDeferredTrigger('PERFORM pg_sleep(1)', async (c) => {
        const rows = c.stream(markingStream(0.01), [], { timeoutSeconds: 5 });
        const first = rows[Symbol.asyncIterator]().next();
        await nextTurn(); // the statement is sent; its rows are not back yet
        await rows.cancel();
        await first.catch(() => undefined);
      });
    });

    // Left between batches while the next one is on the way, and the commit fails: the error
    // after Close + Sync must not be answered with another Sync.
    it('a stream left while a read-ahead batch is on the way keeps its connection in step when its commit fails', async () => {
      await withDeferredTrigger(`RAISE EXCEPTION 'deferred check failed'`, async (c) => {
        const rows = c.stream(markingStream(0.2), [], { timeoutSeconds: 5 });
        await rows[Symbol.asyncIterator]().next(); // the first batch is here
        await nextTurn(); // the next batch is asked for
        await rows.cancel();
      });
    });
  });
});

/**
 * A client that disconnects while its (not streamed) statement runs gets that statement stopped on
 * the server, on every driver, through a real gateway process: a 30-second statement is seen
 * running (pg_stat_activity, SHOW FULL PROCESSLIST), the client leaves, and within a couple of
 * seconds the statement is gone, a query-cancel record names it and the gateway answers the next
 * request on the same pool. SQLite's statement runs in a worker process, which nothing can ask to
 * stop: there the proof is that the pool's only connection serves the next request at once.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import type { DbConnection } from '../../src/db/types.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const RID = 'db_cancel';
const marker = `slept_${randomBytes(4).toString('hex')}`;

interface Case {
  name: string;
  skip: boolean;
  target: () => SecureResourceSettings;
  /** The long statement, its alias naming this run. */
  slow: string;
  /** How many sessions run the long statement now, seen from a connection of the test's own. */
  running?: (observer: DbConnection) => Promise<number>;
}

const mariaRunning = async (observer: DbConnection) =>
  (await observer.query('SHOW FULL PROCESSLIST', [], { timeoutSeconds: 5 })).rows.filter((r) => String(r.Info ?? r.INFO ?? '').includes(marker) && !String(r.Info ?? r.INFO).includes('PROCESSLIST')).length;

const cases: Case[] = [
  {
    name: 'PostgreSQL',
    skip: requireOrSkip('PostgreSQL', await pgAvailable()),
    target: () => pgTarget(),
    slow: `SELECT pg_sleep(30) AS ${marker}`,
    running: async (observer) =>
      Number((await observer.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30) AS slept%' AND query LIKE ?`, [`%${marker}%`], { timeoutSeconds: 5 })).rows[0].n),
  },
  { name: 'MariaDB', skip: requireOrSkip('MariaDB', await mysqlAvailable()), target: () => mysqlTarget(), slow: `SELECT SLEEP(30) AS ${marker}`, running: mariaRunning },
  { name: 'MariaDB through ODBC', skip: requireOrSkip('ODBC', await odbcAvailable()), target: () => odbcTarget(), slow: `SELECT SLEEP(30) AS ${marker}`, running: mariaRunning },
  {
    name: 'SQLite',
    skip: false,
    target: () => ({ db_type: 'sqlite', db_path: '', db_sample: true }) as unknown as SecureResourceSettings,
    // Counts to a billion: minutes of work in the worker process.
    slow: `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) AS ${marker} FROM c`,
  },
];

for (const c of cases) {
  describe.skipIf(c.skip)(`cancel on disconnect, ${c.name}`, () => {
    let gw: GatewayProcess;
    let observer: DbConnection | undefined;

    beforeAll(async () => {
      const target = c.target();
      const { db_password: _password, ...secure } = target;
      gw = await startGateway({
        config: {
          resource_ids: [RID],
          // One connection: the next request gets it only once the slow statement let go of it.
          resources: { [RID]: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1, db_default_query_timeout: 120 } },
          secure: { [RID]: secure },
        },
        env: target.db_password ? { [`${RID}__db_password`]: target.db_password } : {},
        configPatch: (doc, dir) => {
          const file = join(dir, 'cancel.yaml');
          const sqlite = target.db_type === 'sqlite';
          if (sqlite) (doc.secure as Record<string, Record<string, unknown>>)[RID].db_path = join(dir, 'cancel.db');
          writeFileSync(
            file,
            [
              'endpoints:',
              `  - { method: GET, path: /slow, resources: [${RID}], statements: [{ sql: ${JSON.stringify(c.slow)} }], result: one, columns: { ${marker}: { type: integer } } }`,
              `  - { method: GET, path: /fast, resources: [${RID}], statements: [{ sql: 'SELECT 1 AS one' }], result: one, columns: { one: { type: integer } } }`,
              '',
            ].join('\n'),
          );
          doc.endpoints = [file];
        },
      });
      if (c.running) observer = await createConnector('observer', target).connect(0, 10);
    }, 60_000);

    afterAll(async () => {
      await observer?.close();
      expect(await gw?.stop()).toBe(0);
    });

    it('stops the statement on the server within a couple of seconds of the client leaving', { timeout: 60_000 }, async () => {
      expect((await fetch(`${gw.url}/fast`)).status).toBe(200);
      const from = gw.lines.length;
      const client = new AbortController();
      const call = fetch(`${gw.url}/slow`, { signal: client.signal }).catch((err: unknown) => err);
      if (c.running) {
        const seen = Date.now();
        while ((await c.running(observer!)) === 0) {
          if (Date.now() - seen > 10_000) throw new Error('the slow statement never showed up on the server');
          await sleep(50);
        }
      } else await gw.waitForLine((l) => l.fields.tag === 'request' && l.fields.msg === 'GET /slow', 10_000, from);
      await sleep(300); // well into the statement
      client.abort();
      await call;
      const left = Date.now();

      if (c.running) {
        while ((await c.running(observer!)) > 0) {
          expect(Date.now() - left, 'the statement still runs on the server').toBeLessThan(3000);
          await sleep(50);
        }
      }
      // The pool's only connection is free again (or replaced): the next request is answered at once.
      const next = await fetch(`${gw.url}/fast`, { signal: AbortSignal.timeout(5000) });
      expect(next.status).toBe(200);
      expect(Date.now() - left).toBeLessThan(3000);

      const cancel = await gw.waitForLine((l) => l.fields.tag === 'query-cancel', 5000, from);
      expect(cancel.fields).toMatchObject({ resource_id: RID, driver_code: 'WT_CANCELLED' });
      const stats = await gw.waitForLine((l) => l.fields.tag === 'request-stats' && l.fields.msg === 'GET /slow results', 5000, from);
      expect(stats.fields).toMatchObject({ status_code: '499', aborted: 'true' });
    });
  });
}

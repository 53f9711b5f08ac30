/**
 * The circuit breaker against real databases that go down and come back, through a real gateway
 * process: a TCP proxy in front of PostgreSQL or MariaDB (test/helpers/outage-proxy.ts) first stops
 * answering (connect attempts hang until db_conn_timeout), then refuses connections, then relays
 * again. After breaker_failures failed attempts every request is answered 503 at once, naming the
 * resource, with Retry-After the probe interval; a single probe connection at a time tries the
 * database; readiness, wt_breaker_state and the records say so; and once the database is back the
 * first 200 comes within one probe interval. bench/breaker.mjs measures the same figures.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { mysqlAvailable, mysqlTarget, pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { outageProxy, type OutageProxy } from '../helpers/outage-proxy.js';

const RID = 'db_out';
const PROBE_INTERVAL = 2;
const CONN_TIMEOUT = 1;
const cases: { name: string; target: () => SecureResourceSettings; skip: boolean }[] = [
  { name: 'PostgreSQL', target: () => pgTarget(), skip: requireOrSkip('PostgreSQL', await pgAvailable()) },
  { name: 'MariaDB', target: () => mysqlTarget(), skip: requireOrSkip('MariaDB', await mysqlAvailable()) },
];

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{resource_id="${RID}"}`));
  if (line === undefined) throw new Error(`${name} of ${RID} not exposed`);
  return Number(line.split(' ').pop());
}

interface Answer {
  status: number;
  ms: number;
  retryAfter: string | null;
  detail?: string;
}

async function call(gw: GatewayProcess): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(`${gw.url}/out`, { signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as { detail?: string };
  return { status: res.status, ms: performance.now() - started, retryAfter: res.headers.get('retry-after'), detail: body.detail };
}

for (const c of cases) {
  describe.skipIf(c.skip)(`circuit breaker, ${c.name} going down and coming back`, () => {
    let proxy: OutageProxy;
    let gw: GatewayProcess;

    beforeAll(async () => {
      const target = c.target();
      proxy = await outageProxy(target.db_host, target.db_port);
      const { db_password: _password, ...secure } = { ...target, db_port: proxy.port };
      gw = await startGateway({
        config: {
          log_level: 'DEBUG',
          resource_ids: [RID],
          resources: {
            [RID]: {
              db_min_conn_pool_size: 1,
              db_max_conn_pool_size: 4,
              db_conn_timeout: CONN_TIMEOUT,
              db_conn_retry_wait_period: 0.2,
              db_conn_pool_acquire_timeout: 5,
              breaker_failures: 3,
              breaker_probe_interval: PROBE_INTERVAL,
            },
          },
          secure: { [RID]: secure },
          pool_check_interval: 0.5,
        },
        configPatch: (doc, dir) => {
          const file = join(dir, 'out.yaml');
          writeFileSync(file, `endpoints:\n  - { method: GET, path: /out, resources: [${RID}], statements: [{ sql: 'SELECT 1 AS one' }], result: one, columns: { one: { type: integer } } }\n`);
          doc.endpoints = [file];
        },
      });
    }, 60_000);

    afterAll(async () => {
      expect(await gw?.stop()).toBe(0);
      await proxy?.close();
    });

    it('opens after the threshold, answers 503 at once with one probe at a time, and serves within a probe interval of the database coming back', { timeout: 90_000 }, async () => {
      expect((await call(gw)).status).toBe(200);
      expect(await metric(gw, 'wt_breaker_state')).toBe(0);
      const from = gw.lines.length;

      // The network stops answering: connect attempts hang until db_conn_timeout.
      await proxy.down('silent');
      const opened = gw.waitForLine((l) => l.fields.tag === 'breaker-open', 30_000, from);
      const before: Answer[] = [];
      await Promise.race([
        opened,
        (async () => {
          for (let i = 0; i < 40 && !gw.lines.slice(from).some((l) => l.includes('tag=breaker-open')); i++) before.push(await call(gw));
        })(),
      ]);
      const open = await opened;
      expect(open.fields).toMatchObject({ resource_id: RID, failures: '3', probe_interval: String(PROBE_INTERVAL) });
      expect(before.every((a) => a.status >= 500)).toBe(true);

      // Open: for three probe intervals, every request is answered 503 at once, and one probe at a time tries the database.
      proxy.resetCounts();
      const during: Answer[] = [];
      const until = performance.now() + 3 * PROBE_INTERVAL * 1000;
      await Promise.all(
        Array.from({ length: 5 }, async () => {
          while (performance.now() < until) {
            during.push(await call(gw));
            await sleep(20);
          }
        }),
      );
      expect(during.length).toBeGreaterThan(50);
      for (const a of during) {
        expect(a.status).toBe(503);
        expect(a.retryAfter).toBe(String(PROBE_INTERVAL));
        expect(a.detail).toContain(`circuit breaker open for resource ${RID}`);
      }
      // No request waited for the database: each was answered well inside one probe interval.
      expect(Math.max(...during.map((a) => a.ms))).toBeLessThan(PROBE_INTERVAL * 1000);
      expect(proxy.maxSilentAtOnce).toBe(1);
      // A probe every interval plus its connect timeout: 2 in 6 s here, never one per request.
      expect(proxy.accepted).toBeGreaterThanOrEqual(1);
      expect(proxy.accepted).toBeLessThanOrEqual(3);

      const ready = await fetch(`${gw.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'unavailable', unavailable: [RID] });
      expect([1, 2]).toContain(await metric(gw, 'wt_breaker_state'));
      expect(gw.parsed().slice(from).some((l) => l.fields.tag === 'breaker-refused' && l.fields.resource_id === RID)).toBe(true);

      // The server process is gone: connections refused at once.
      await proxy.down('refused');
      await sleep(PROBE_INTERVAL * 1000);
      expect((await call(gw)).status).toBe(503);

      // Back: the first 200 within one probe interval (plus the probe's own connect and this loop's step).
      const closedFrom = gw.lines.length;
      await proxy.up();
      const back = performance.now();
      let first: Answer;
      for (;;) {
        first = await call(gw);
        if (first.status === 200 || performance.now() - back > 3 * PROBE_INTERVAL * 1000) break;
        expect(first.status).toBe(503);
        await sleep(25);
      }
      expect(first.status).toBe(200);
      expect(performance.now() - back).toBeLessThan(PROBE_INTERVAL * 1000 + 500);
      const closed = await gw.waitForLine((l) => l.fields.tag === 'breaker-close', 5000, closedFrom);
      expect(closed.fields.resource_id).toBe(RID);
      expect(await metric(gw, 'wt_breaker_state')).toBe(0);
      expect((await fetch(`${gw.url}/health/ready`)).status).toBe(200);
    });
  });
}

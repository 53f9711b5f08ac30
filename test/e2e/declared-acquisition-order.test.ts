/**
 * Deadlock freedom of declared endpoints, in a real gateway process over real SQLite connections.
 *
 * Two declared endpoints hold the same two resources, listed in opposite orders, and each resource
 * lets two requests in at a time (a pool of 2). Taken in the order each endpoint lists them, requests
 * of one would hold both slots of A and wait for B while requests of the other hold both slots of B
 * and wait for A, until the slot waits ran out (504). The resource manager takes every request's
 * resources in one global order, so each of 500 concurrent requests must answer 200: a single 504
 * fails the test (as does a slot-timeout record). test/e2e/acquisition-order.test.ts proves the same
 * for code routes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const A = 'order_a';
const B = 'order_b';
const REQUESTS = 500;

/** Two slots and two connections per resource; waits long enough that only a deadlock runs out. */
const LIMITS = {
  max_active_requests: 2,
  db_min_conn_pool_size: 2,
  db_max_conn_pool_size: 2,
  max_pending_requests: REQUESTS * 2,
  request_slot_timeout: 10,
  db_conn_pool_acquire_timeout: 10,
  db_conn_max_uses: 1_000_000,
};

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await startGateway({
    configPatch: (doc, dir) => {
      const file = join(dir, 'order.yaml');
      // Each endpoint holds both resources and runs its statement on the one it lists first.
      const endpoint = (path: string, rids: string[]) => ({
        method: 'GET',
        path,
        resources: rids,
        statements: [{ resource: rids[0], sql: `SELECT '${rids[0]}' AS ran, 1 AS one` }],
        result: 'one',
      });
      writeFileSync(file, stringify({ endpoints: [endpoint('/order/a-then-b', [A, B]), endpoint('/order/b-then-a', [B, A])] }));
      Object.assign(doc, {
        log_level: 'INFO',
        resource_ids: [A, B],
        resources: { [A]: LIMITS, [B]: LIMITS },
        // Reads stay in the workers (sqlite_inline_read_ms 0): on the event loop they end before the
        // next request is even parsed, and the requests would not compete for the slots at all.
        secure: {
          [A]: { db_type: 'sqlite', db_sample: true, db_path: join(dir, 'a.db'), sqlite_inline_read_ms: 0 },
          [B]: { db_type: 'sqlite', db_sample: true, db_path: join(dir, 'b.db'), sqlite_inline_read_ms: 0 },
        },
        endpoints: [file],
        pool_check_interval: 60,
      });
    },
  });
}, 60_000);

afterAll(async () => {
  expect(await gw?.stop()).toBe(0);
}, 30_000);

/** Requests waiting for a slot now, both resources together, from /metrics. */
async function pendingNow(): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const m of text.matchAll(/^wt_pending_requests\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

describe('declared endpoints taking two resources in opposite declared orders', () => {
  it(`${REQUESTS} concurrent requests, a pool of 2 on each resource: all 200, no slot wait times out`, async () => {
    const from = gw.lines.length;
    // Proof that the requests really competed: many were queued for a slot at once.
    let maxPending = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxPending = Math.max(maxPending, await pendingNow().catch(() => 0));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    let answers: { status: number; body: string }[];
    try {
      answers = await Promise.all(
        Array.from({ length: REQUESTS }, async (_, i) => {
          const res = await fetch(`${gw.url}${i % 2 === 0 ? '/order/a-then-b' : '/order/b-then-a'}`, { signal: AbortSignal.timeout(45_000) });
          return { status: res.status, body: await res.text() };
        }),
      );
    } finally {
      sampling = false;
      await sampler;
    }
    const byStatus: Record<number, number> = {};
    for (const a of answers) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    const failure = answers.find((a) => a.status !== 200);
    expect(byStatus, failure?.body).toEqual({ 200: REQUESTS });
    expect(answers.filter((a) => a.body === `{"ran":"${A}","one":1}`)).toHaveLength(REQUESTS / 2);
    expect(answers.filter((a) => a.body === `{"ran":"${B}","one":1}`)).toHaveLength(REQUESTS / 2);
    expect(maxPending).toBeGreaterThan(10);
    expect(gw.lines.slice(from).filter((l) => l.includes('slot-timeout') || l.includes('dbconn-timeout'))).toEqual([]);
    // Everything given back.
    expect(await pendingNow()).toBe(0);
  }, 60_000);
});

/**
 * Deadlock freedom of requests that need two resources, over real HTTP and real SQLite connections.
 *
 * Two routes declare the same two resources in opposite orders, and each resource lets one request
 * in at a time. Taken in declaration order, a request of one route would hold A and wait for B while
 * a request of the other holds B and waits for A, until a slot wait timed out (504). The resource
 * manager takes every request's resources in one global order, so each of many concurrent requests
 * must get both and answer 200: a single 504 (or 429) fails the test.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { buildSettings } from '../../src/config/index.js';
import { createConnector } from '../../src/db/index.js';
import { RequestQueries } from '../../src/query/query.js';
import { ResourceManager } from '../../src/resources/resource-manager.js';
import { closeInProcess, serveInProcess } from '../helpers/in-process.js';

const A = 'order_a';
const B = 'order_b';
const REQUESTS = 300;

/** One slot and one connection per resource; waits long enough that only a deadlock can run out. */
const LIMITS = {
  max_active_requests: 1,
  db_min_conn_pool_size: 1,
  db_max_conn_pool_size: 1,
  max_pending_requests: REQUESTS * 2,
  request_slot_timeout: 15,
  db_conn_pool_acquire_timeout: 15,
  db_conn_max_uses: 100_000,
};

let app: FastifyInstance;
let resources: ResourceManager;
let url: string;

beforeAll(async () => {
  const settings = buildSettings(
    {
      resource_ids: [A, B],
      pool_check_interval: 60,
      resources: { [A]: LIMITS, [B]: LIMITS },
      secure: { [A]: { db_type: 'sqlite', db_path: ':memory:' }, [B]: { db_type: 'sqlite', db_path: ':memory:' } },
    },
    {},
    { env: {} },
  );
  resources = new ResourceManager({ connectorFor: (rid) => createConnector(rid, settings.secure[rid]), settings: () => settings });
  app = await buildApp({
    settings: () => settings,
    acquirer: resources,
    readiness: () => resources.readiness(),
    observer: { requestDone: () => undefined },
    onQuery: () => undefined,
    metricsPlugin: () => undefined,
    isShuttingDown: () => false,
    docs: false,
    version: 'test',
  });
  // Test-only routes: the same two resources, declared in opposite orders.
  for (const [path, rids] of [
    ['/a-then-b', [A, B]],
    ['/b-then-a', [B, A]],
  ] as const) {
    app.get(path, { config: { resources: [...rids] } }, async (req) => {
      const q = new RequestQueries(req.wt, () => undefined, () => settings);
      const seen: unknown[] = [];
      for (const rid of rids) seen.push((await q.rows(rid, 'SELECT 1 AS one', []))[0].one);
      await q.release();
      return { seen };
    });
  }
  url = await serveInProcess(app, resources);
}, 60_000);

afterAll(async () => {
  await closeInProcess(app, resources);
});

describe('multi-resource acquisition order', () => {
  it(`${REQUESTS} concurrent requests taking two resources in opposite declared orders, one slot each: all 200, none times out`, async () => {
    // Proof that the requests really competed: many were queued for a slot at once.
    let maxPending = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, resources.stats(A).pending + resources.stats(B).pending);
    }, 2);
    let answers: { status: number; body: string }[];
    try {
      answers = await Promise.all(
        Array.from({ length: REQUESTS }, async (_, i) => {
          const res = await fetch(`${url}${i % 2 === 0 ? '/a-then-b' : '/b-then-a'}`);
          return { status: res.status, body: await res.text() };
        }),
      );
    } finally {
      clearInterval(sampler);
    }
    const byStatus: Record<number, number> = {};
    for (const a of answers) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    const failure = answers.find((a) => a.status !== 200);
    expect(byStatus, failure?.body).toEqual({ 200: REQUESTS });
    expect(new Set(answers.map((a) => a.body))).toEqual(new Set(['{"seen":[1,1]}']));
    expect(maxPending).toBeGreaterThan(10);
    for (const rid of [A, B]) expect(resources.stats(rid)).toMatchObject({ active: 0, pending: 0, inUse: 0 });
  }, 60_000);
});

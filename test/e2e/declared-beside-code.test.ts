/**
 * Declared endpoints and code routes side by side in one gateway app, over real HTTP and a real
 * SQLite connection: a route written in TypeScript (config.resources, RequestQueries) and a declared
 * endpoint running the same SQL answer the same rows, share the resource's one slot and connection
 * (each waits for the other), queue together under concurrent load, and both appear in the OpenAPI
 * document and the request metrics.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildApp } from '../../src/app.js';
import { buildSettings } from '../../src/config/index.js';
import { createConnector } from '../../src/db/index.js';
import { setLogDestination } from '../../src/log/index.js';
import { RequestQueries } from '../../src/query/query.js';
import { ResourceManager } from '../../src/resources/resource-manager.js';
import { waitFor } from '../helpers/wait.js';
import { closeInProcess, serveInProcess } from '../helpers/in-process.js';

const RID = 'shared';
const work = mkdtempSync(join(tmpdir(), 'wt-beside-'));
/** Counts to :n in SQLite: about 0.25 s of work per million. */
const COUNT_SQL = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT count(*) AS n FROM c';
const SLOW_N = 3_000_000;

let app: FastifyInstance;
let resources: ResourceManager;
let url: string;
const served: string[] = [];

beforeAll(async () => {
  // Three records per request, in the test's own output otherwise.
  setLogDestination(new Writable({ write: (_c, _e, cb) => cb() }));
  const file = join(work, 'count.yaml');
  writeFileSync(
    file,
    stringify({
      endpoints: [
        {
          method: 'GET',
          path: '/declared/count',
          summary: 'Counts to n (declared)',
          resources: [RID],
          params: { n: { type: 'integer', minimum: 1, maximum: 10_000_000 } },
          statements: [{ sql: COUNT_SQL }],
          result: 'rows',
        },
      ],
    }),
  );
  const settings = buildSettings(
    {
      resource_ids: [RID],
      pool_check_interval: 60,
      // One request at a time on one connection: the two kinds of route must take turns.
      resources: { [RID]: { max_active_requests: 1, db_min_conn_pool_size: 1, db_max_conn_pool_size: 1, max_pending_requests: 500, request_slot_timeout: 20 } },
      secure: { [RID]: { db_type: 'sqlite', db_path: ':memory:' } },
      endpoints: [file],
    },
    {},
    { env: {} },
  );
  resources = new ResourceManager({ connectorFor: (rid) => createConnector(rid, settings.secure[rid]), settings: () => settings });
  app = await buildApp({
    settings: () => settings,
    acquirer: resources,
    readiness: () => resources.readiness(),
    observer: { requestDone: (endpoint) => served.push(endpoint) },
    onQuery: () => undefined,
    metricsPlugin: () => undefined,
    isShuttingDown: () => false,
    docs: true,
    version: 'test',
  });
  // The code route: the same SQL, written by hand as a route of one's own would be.
  app.get<{ Querystring: { n: number } }>(
    '/code/count',
    {
      config: { resources: [RID] },
      schema: { summary: 'Counts to n (code)', querystring: { type: 'object', additionalProperties: false, required: ['n'], properties: { n: { type: 'integer', minimum: 1, maximum: 10_000_000 } } } },
    },
    async (req) => {
      const q = new RequestQueries(req.wt, () => undefined, () => settings);
      const rows = await q.rows(RID, COUNT_SQL.replace(':n', '?'), [req.query.n]);
      await q.release();
      return rows;
    },
  );
  url = await serveInProcess(app, resources);
}, 60_000);

afterAll(async () => {
  await closeInProcess(app, resources);
  setLogDestination(process.stdout);
  rmSync(work, { recursive: true, force: true });
});

async function get(path: string): Promise<{ status: number; body: string; at: number }> {
  const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(30_000) });
  const body = await res.text();
  return { status: res.status, body, at: performance.now() };
}

describe('a declared endpoint beside a code route on the same resource', () => {
  it('both answer the same rows', async () => {
    for (const n of [1, 10, 12345]) {
      const code = await get(`/code/count?n=${n}`);
      expect(code).toMatchObject({ status: 200, body: `[{"n":${n}}]` });
      expect((await get(`/declared/count?n=${n}`)).body).toBe(code.body);
    }
  });

  it.each([
    ['/code/count', '/declared/count'],
    ['/declared/count', '/code/count'],
  ])('a request to %s holding the one slot makes one to %s wait for it', async (slowPath, fastPath) => {
    const slow = get(`${slowPath}?n=${SLOW_N}`);
    await waitFor('the slow request to hold the slot', () => resources.stats(RID).active === 1);
    const fast = get(`${fastPath}?n=1`);
    await waitFor('the fast request to queue behind it', () => resources.stats(RID).pending === 1, { timeout: 5000 });
    const [s, f] = await Promise.all([slow, fast]);
    expect(s).toMatchObject({ status: 200, body: `[{"n":${SLOW_N}}]` });
    expect(f).toMatchObject({ status: 200, body: '[{"n":1}]' });
    expect(f.at).toBeGreaterThan(s.at);
  }, 30_000);

  it('300 concurrent requests to both queue for the one slot together and are all answered', async () => {
    served.length = 0;
    let maxPending = 0;
    const sampler = setInterval(() => (maxPending = Math.max(maxPending, resources.stats(RID).pending)), 2);
    let answers: { status: number; body: string }[];
    try {
      answers = await Promise.all(Array.from({ length: 300 }, (_, i) => get(`${i % 2 === 0 ? '/code' : '/declared'}/count?n=${(i % 50) + 1}`)));
    } finally {
      clearInterval(sampler);
    }
    answers.forEach((a, i) => expect(a, String(i)).toMatchObject({ status: 200, body: `[{"n":${(i % 50) + 1}}]` }));
    expect(maxPending).toBeGreaterThan(10);
    expect(served.filter((e) => e === '/code/count')).toHaveLength(150);
    expect(served.filter((e) => e === '/declared/count')).toHaveLength(150);
    expect(resources.stats(RID)).toMatchObject({ active: 0, pending: 0, inUse: 0 });
  }, 60_000);

  it('the OpenAPI document has both', async () => {
    const doc = JSON.parse((await get('/docs/json')).body) as { paths: Record<string, { get: { summary: string; parameters: { name: string }[] } }> };
    expect(doc.paths['/code/count'].get).toMatchObject({ summary: 'Counts to n (code)', parameters: [{ name: 'n' }] });
    expect(doc.paths['/declared/count'].get).toMatchObject({ summary: 'Counts to n (declared)' });
    expect(doc.paths['/declared/count'].get.parameters.map((p) => p.name)).toContain('n');
  });
});

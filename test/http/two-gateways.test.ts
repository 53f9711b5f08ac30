/**
 * Two gateways in one process, each reading its own settings: limits, timeouts and the cid length
 * of one never reach the other, nor does the process config.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSettings, setConfig, type Settings } from '../../src/config/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { setLogDestination } from '../../src/log/index.js';
import type { RequestResources } from '../../src/resources/request-resources.js';
import { sampleEndpointFiles } from '../helpers/sample-endpoints.js';

const RID = 'sqlite_traffic';
const dir = mkdtempSync(join(tmpdir(), 'wt-two-gateways-'));

function settings(name: string, cidLen: number, limits: Record<string, unknown>): Settings {
  return buildSettings(
    {
      resource_ids: [RID],
      port: 0,
      cid_len: cidLen,
      docs_enabled: false,
      resources: { [RID]: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2, ...limits } },
      secure: { [RID]: { db_type: 'sqlite', db_sample: true, db_path: join(dir, `${name}.db`) } },
      endpoints: sampleEndpointFiles({ [RID]: {} }),
    },
    {},
    { env: {} },
  );
}

// The process config would let every request below through at once: neither gateway may read it.
const processConfig = settings('process', 16, { max_active_requests: 2, max_pending_requests: 10, request_slot_timeout: 5 });
// A: one request at a time, nobody may queue.
const configA = settings('a', 8, { max_active_requests: 1, max_pending_requests: 0, request_slot_timeout: 7 });
// B: one request at a time, others queue for 0.3 s.
const configB = settings('b', 20, { max_active_requests: 1, max_pending_requests: 5, request_slot_timeout: 0.3 });

let a: Gateway;
let b: Gateway;
const held: RequestResources[] = [];

beforeAll(async () => {
  setLogDestination(new Writable({ write: (_c, _e, cb) => cb() }));
  setConfig(processConfig);
  a = await createGateway({ settings: () => configA });
  b = await createGateway({ settings: () => configB });
  await Promise.all([a.listen(), b.listen()]);
  // Each gateway's only slot is taken.
  held.push(await a.resources.acquire([RID]), await b.resources.acquire([RID]));
}, 30_000);

afterAll(async () => {
  for (const r of held) r.releaseNow();
  await Promise.all([a?.shutdown(), b?.shutdown()]);
  setLogDestination(process.stdout);
  rmSync(dir, { recursive: true, force: true });
});

describe('two gateways in one process', () => {
  it('each refuses, queues and times out by its own limits', async () => {
    const url = '/sqlite-json?limit=1';
    const started = Date.now();
    const [fromA, fromB] = await Promise.all([a.app.inject({ url }), b.app.inject({ url })]);
    // A: max_pending_requests 0, so 429 at once, Retry-After its own request_slot_timeout.
    expect(fromA.statusCode).toBe(429);
    expect(fromA.headers['retry-after']).toBe('7');
    // B: queued, then its own 0.3 s slot timeout.
    expect(fromB.statusCode).toBe(504);
    expect(fromB.json()).toMatchObject({ detail: expect.stringContaining('0.3-sec timeout waiting for a request slot') });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(a.resources.stats(RID)).toMatchObject({ active: 1, pending: 0 });
  });

  it('each gives correlation ids of its own length', async () => {
    const [fromA, fromB] = await Promise.all([a.app.inject({ url: '/health/live' }), b.app.inject({ url: '/health/live' })]);
    expect(String(fromA.headers['x-correlation-id'])).toHaveLength(8);
    expect(String(fromB.headers['x-correlation-id'])).toHaveLength(20);
  });

  it('each serves once its own slot is free', async () => {
    held.shift()?.releaseNow();
    const fromA = await a.app.inject({ url: '/sqlite-json?limit=1' });
    expect(fromA.statusCode).toBe(200);
    expect(b.resources.stats(RID)).toMatchObject({ active: 1 });
  });
});

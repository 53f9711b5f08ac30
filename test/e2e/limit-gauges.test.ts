/**
 * wt_max_active_requests and wt_max_connections on a running gateway: they read the configured
 * maxima (max_active_requests, empty meaning db_max_conn_pool_size; db_max_conn_pool_size), follow
 * a SIGUSR1 reload on the next scrape, and a 2-worker cluster reports their sum over the workers,
 * since each worker applies the limits to its own limiter and pool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { waitFor } from '../helpers/wait.js';

const RID = 'sqlite_traffic';

/** The value of a resource's gauge on the gateway's /metrics (undefined when the series is missing). */
async function gauge(gw: GatewayProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const m = new RegExp(`^${name}\\{resource_id="${RID}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

const limits = async (gw: GatewayProcess) => ({ slots: await gauge(gw, 'wt_max_active_requests'), connections: await gauge(gw, 'wt_max_connections') });

/** Waits until the gauges read `want` (every worker of a cluster reloads on its own). */
const limitsBecome = (gw: GatewayProcess, want: { slots: number; connections: number }) =>
  waitFor(`limits ${JSON.stringify(want)}`, async () => {
    const got = await limits(gw);
    return got.slots === want.slots && got.connections === want.connections && got;
  });

describe('configured maxima as gauges', () => {
  let single: GatewayProcess;
  let cluster: GatewayProcess;

  beforeAll(async () => {
    // sqliteConfig: db_max_conn_pool_size 4, max_active_requests empty (so 4 slots).
    [single, cluster] = await Promise.all([startGateway(), startGateway({ env: { WT_WORKERS: '2' } })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([single?.stop(), cluster?.stop()]);
  });

  it('read the configured limits, summed over the workers of a cluster', async () => {
    expect(await limits(single)).toEqual({ slots: 4, connections: 4 });
    await limitsBecome(cluster, { slots: 8, connections: 8 });
  });

  it('follow a reload that changes max_active_requests and db_max_conn_pool_size, and one that undoes it', async () => {
    const changed = { resources: { [RID]: { max_active_requests: 2, db_max_conn_pool_size: 6 } } };
    for (const gw of [single, cluster]) expect((await gw.reload(changed)).fields.tag).toBe('config-reload');
    expect(await limits(single)).toEqual({ slots: 2, connections: 6 });
    await limitsBecome(cluster, { slots: 4, connections: 12 });

    // Back to the config file: max_active_requests empty again follows the pool size.
    for (const gw of [single, cluster]) expect((await gw.reload({})).fields.tag).toBe('config-reload');
    expect(await limits(single)).toEqual({ slots: 4, connections: 4 });
    await limitsBecome(cluster, { slots: 8, connections: 8 });
  }, 30_000);

  it('keep a resource with max_active_requests below its pool apart from the pool size', async () => {
    const gw = await startGateway({
      configPatch: (doc, dir) => {
        Object.assign(doc, sqliteConfig(dir));
        doc.resources = { [RID]: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 5, max_active_requests: 3 } };
      },
    });
    try {
      expect(await limits(gw)).toEqual({ slots: 3, connections: 5 });
    } finally {
      await gw.stop();
    }
  }, 30_000);
});

/**
 * max_active_requests_global across replicas: three gateways on one machine (the first a cluster of
 * two workers, each worker with its own Redis connection and leases) share a limit of 4 on one
 * PostgreSQL database through a Redis of the test's own. Under load from every
 * replica, the statements of the gateways running on the server (sampled from pg_stat_activity)
 * never exceed 4 and reach 4. A replica killed with SIGKILL while it holds leases loses them
 * within global_lease_seconds and the other two reach 4 again. Redis killed: each replica falls
 * back to global_local_share per process (a record per process, wt_global_limit_fallback counting
 * them) and keeps answering; Redis started again: the records say so and the limit of 4 holds
 * across replicas again. (The test helper reports the SIGKILL as a gateway that exited by itself.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ensureDatabase } from '../../src/db/sample-data.js';
import { leaseKey } from '../../src/resources/global-limiter.js';
import { pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { fiveXx, runLoad, type LoadResult } from '../helpers/load-client.js';
import { ownRedis, type OwnRedis } from '../helpers/redis-server.js';
import { dropDatabase, fileTarget } from '../helpers/test-data.js';
import { waitFor } from '../helpers/wait.js';
import { parseExposition, sumOf } from '../metrics/exposition.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());

const RID = 'pg_global';
const LIMIT = 4;
const LEASE_SECONDS = 2;
const SHARE = 1;
/** Worker processes of each gateway: the first runs in cluster mode. */
const WORKERS = [2, 1, 1];
/** The column alias that finds the gateways' statements in pg_stat_activity. */
const MARK = 'wt_global_probe';
const SLEEP_SQL = `SELECT pg_sleep(0.2) IS NULL AS ${MARK}`;

interface Sample {
  at: number;
  running: number;
}

/** Counts the marked statements running on the server, about every 10 ms, until stopped. */
function sampleStatements(db: string): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  const t = pgTarget({ db_name: 'postgres' });
  const client = new pg.Client({ host: t.db_host, port: t.db_port, user: t.db_user, password: t.db_password || undefined, database: 'postgres' });
  let stopping = false;
  const loop = (async () => {
    await client.connect();
    try {
      while (!stopping) {
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = $1 AND state = 'active' AND query LIKE $2 AND pid <> pg_backend_pid()`,
          [db, `%${MARK}%`],
        );
        samples.push({ at: Date.now(), running: rows[0].n });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    samples,
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}

/** The most statements seen running between `from` and `to` (ms since the epoch), and how many samples that took. */
function peak(samples: Sample[], from: number, to = Infinity): { max: number; count: number } {
  const window = samples.filter((s) => s.at >= from && s.at <= to);
  return { max: Math.max(0, ...window.map((s) => s.running)), count: window.length };
}

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const res = await fetch(`${gw.url}/metrics`);
  return sumOf(parseExposition(await res.text()), name, { resource_id: RID });
}

function load(gws: GatewayProcess[], durationMs: number): Promise<LoadResult[]> {
  return Promise.all(gws.map((gw) => runLoad({ url: gw.url, paths: ['/global/sleep'], clients: 6, durationMs })));
}

function statuses(results: LoadResult[]): Record<number, number> {
  const all: Record<number, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.statuses)) all[Number(code)] = (all[Number(code)] ?? 0) + n;
  return all;
}

describe.skipIf(skipPg)('max_active_requests_global across three gateway processes', () => {
  const db = uniqueName('wt_global');
  let redis: OwnRedis;
  let inspector: Redis;
  let gws: GatewayProcess[] = [];
  let sampler: ReturnType<typeof sampleStatements>;

  beforeAll(async () => {
    redis = await ownRedis();
    inspector = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    inspector.on('error', () => undefined); // down in the middle of the test, on purpose
    await ensureDatabase(pgTarget({ db_name: db }));
    const replica = (workers: number) =>
      startGateway({
        env: { WT_WORKERS: String(workers) },
        config: {
          log_level: 'INFO',
          queries_log_type: 'none',
          resource_ids: [RID],
          resources: {
            [RID]: {
              db_min_conn_pool_size: 1,
              db_max_conn_pool_size: LIMIT,
              max_pending_requests: 200,
              request_slot_timeout: 30,
              db_default_query_timeout: 30,
              max_active_requests_global: LIMIT,
              global_lease_seconds: LEASE_SECONDS,
              global_local_share: SHARE,
            },
          },
          secure: { [RID]: fileTarget(pgTarget({ db_name: db })) },
          global_limits_redis: redis.url,
          pool_check_interval: 1,
          shutdown_timeout: 5,
        },
        configPatch: (config, dir) => {
          const file = join(dir, 'global.yaml');
          writeFileSync(file, stringify({ endpoints: [{ method: 'GET', path: '/global/sleep', resources: [RID], statements: [{ sql: SLEEP_SQL }], result: 'one' }] }));
          config.endpoints = [file];
        },
      });
    gws = await Promise.all(WORKERS.map(replica));
    // A cluster serves once its first worker listens; the load's kept-alive connections must reach every worker.
    await waitFor('every worker listening', () => gws.every((gw, i) => gw.parsed().filter((l) => l.fields.tag === 'listening').length === WORKERS[i]), { timeout: 60_000 });
    sampler = sampleStatements(db);
  }, 120_000);

  afterAll(async () => {
    await sampler?.stop();
    await Promise.all(gws.map((gw) => gw.stop()));
    inspector?.disconnect();
    await redis?.stop();
    await dropDatabase(pgTarget({ db_name: db }));
  }, 60_000);

  it('holds 4 across the replicas, frees a killed replica\'s share within the lease time, and falls back to the local share while Redis is gone', async () => {
    // 1. Every replica loaded: 18 clients, each replica free to run 4 itself.
    let from = Date.now();
    // The processes holding leases, from the lease ids (<host>:<pid>:<uuid>): both workers of the cluster have their own.
    const holders = new Set<string>();
    const watching = setInterval(() => {
      inspector.zrange(leaseKey(RID), 0, -1).then((ids) => ids.forEach((id) => holders.add(id.split(':')[1])), () => undefined);
    }, 20);
    const steady = await load(gws, 4000).finally(() => clearInterval(watching));
    // Leases are held by the gateways' workers, never by the cluster's primary. Which process wins a
    // freed lease is a race (there is no queue across processes): no share per process is asserted,
    // since one process has been seen to win every lease of a 4 s run.
    expect(holders.size).toBeGreaterThan(0);
    expect(holders.has(String(gws[0].child.pid))).toBe(false);
    let seen = peak(sampler.samples, from);
    expect(seen.count).toBeGreaterThan(50);
    expect(seen.max).toBe(LIMIT);
    expect(fiveXx({ statuses: statuses(steady), dropped: 0, errors: [], completed: 0 })).toBe(0);
    expect(statuses(steady)[200]).toBeGreaterThan(20);

    // 2. A replica killed while it holds leases: they are gone from Redis within the lease time.
    // The replica killed is whichever of the two single-process ones holds a lease first (which
    // process wins a lease is a race); the cluster is kept for the Redis part below.
    const leasesOf = async (gw: GatewayProcess) => (await inspector.zrange(leaseKey(RID), 0, -1)).filter((id) => id.includes(`:${gw.child.pid}:`)).length;
    from = Date.now();
    const running = load(gws, 6000 + LEASE_SECONDS * 1000);
    let victim: GatewayProcess | undefined;
    await waitFor(
      'a replica to be killed holding leases',
      async () => {
        for (const gw of gws.slice(1)) if ((await leasesOf(gw)) > 0) victim = gw;
        return victim !== undefined;
      },
      { interval: 10, timeout: 6000 },
    );
    const killed = victim!;
    const left = gws.filter((gw) => gw !== killed);
    killed.signal('SIGKILL');
    const killedAt = Date.now();
    await killed.exited;
    await killed.stop(); // exited already: removes its directory
    await waitFor('its leases gone', async () => (await leasesOf(killed)) === 0, { timeout: (LEASE_SECONDS + 5) * 1000, interval: 20 });
    const freedAfterMs = Date.now() - killedAt;
    expect(freedAfterMs).toBeLessThanOrEqual(LEASE_SECONDS * 1000 + 1000);
    const afterKill = await running;
    seen = peak(sampler.samples, from);
    expect(seen.max).toBeLessThanOrEqual(LIMIT);
    expect(fiveXx({ statuses: statuses(afterKill.filter((_, i) => gws[i] !== killed)), dropped: 0, errors: [], completed: 0 })).toBe(0);
    // The two left reach the limit again once the share is free: a load of their own from then on.
    const refilled = Date.now();
    const refill = await load(left, 3000);
    expect(peak(sampler.samples, refilled).max).toBe(LIMIT);
    expect(fiveXx({ statuses: statuses(refill), dropped: 0, errors: [], completed: 0 })).toBe(0);
    gws = left;

    // 3. Redis killed under load: each process (each worker of the cluster) on its own share, said
    // in a record and counted in the metric.
    const processes = WORKERS.slice(0, 2);
    const marks = gws.map((gw) => gw.lines.length);
    const fallbacks = (gw: GatewayProcess, i: number) => gw.parsed().slice(marks[i]).filter((l) => l.fields.tag === 'global-limit-fallback');
    const outage = load(gws, 6000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await redis.stop();
    await waitFor('a fallback record from every process', () => gws.every((gw, i) => fallbacks(gw, i).length === processes[i]));
    for (const [i, gw] of gws.entries()) {
      for (const r of fallbacks(gw, i)) {
        expect(r.level).toBe('WARNING');
        expect(r.fields).toMatchObject({ resource_id: RID, global_local_share: String(SHARE) });
      }
      expect(new Set(fallbacks(gw, i).map((r) => r.pid)).size).toBe(processes[i]);
      expect(await metric(gw, 'wt_global_limit_fallback')).toBe(processes[i]);
    }
    // What was admitted through Redis before has ended by now (0.2 s statements).
    from = Date.now() + 500;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    for (const [i, gw] of gws.entries()) expect(await metric(gw, 'wt_global_leases')).toBeLessThanOrEqual(SHARE * processes[i]);
    seen = peak(sampler.samples, from);
    expect(seen.max).toBe(SHARE * (processes[0] + processes[1]));

    // 4. Redis back: the records say so, and 4 hold across the replicas again.
    await redis.start();
    const restoredOf = (gw: GatewayProcess, i: number) => gw.parsed().slice(marks[i]).filter((l) => l.fields.tag === 'global-limit-restored');
    await waitFor('a restored record from every process', () => gws.every((gw, i) => restoredOf(gw, i).length === processes[i]), { timeout: 15_000 });
    const backAt = Date.now();
    for (const [i, gw] of gws.entries()) {
      for (const r of restoredOf(gw, i)) expect(r.fields.resource_id).toBe(RID);
      expect(await metric(gw, 'wt_global_limit_fallback')).toBe(0);
    }
    expect(fiveXx({ statuses: statuses(await outage), dropped: 0, errors: [], completed: 0 })).toBe(0);
    // Only one record of each per process and outage.
    for (const [i, gw] of gws.entries()) {
      expect(fallbacks(gw, i)).toHaveLength(processes[i]);
      expect(restoredOf(gw, i)).toHaveLength(processes[i]);
    }
    from = Date.now();
    const after = await load(gws, 3000);
    seen = peak(sampler.samples, Math.max(from, backAt));
    expect(seen.max).toBe(LIMIT);
    expect(fiveXx({ statuses: statuses(after), dropped: 0, errors: [], completed: 0 })).toBe(0);
  }, 180_000);
});

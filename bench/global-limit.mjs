// What a lease of max_active_requests_global costs a request: the same gateway on the SQLite sample
// (/sqlite-json, 10 rows) without a global limit, and with one through Redis (BENCH_REDIS_URL,
// default the local one) set so high it never makes a request wait: with that much room a lease
// given back passes to the next request (a spare), and goes through Redis (one EVALSHA and a ZCARD to
// take it, one ZREM to give it back) only about every 100 ms. Rounds alternate between the two
// (compareRounds); the ratio is the median of the per-round ratios.
// Then the lease alone, in this process: CPU time per acquire + release (the gateway's limiter over
// redis-semaphore and ioredis, 10 at a time), and the wall time of one when nothing else runs; each
// with that much room (spares) and with 600 leases of other processes in a limit of 1,000 (more
// than half of it in use: every lease through Redis, as near a full limit, without waiting).
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { GlobalLimiter, leaseKey } from '../dist/resources/global-limiter.js';
import { GlobalRedis } from '../dist/resources/global-redis.js';
import { sqliteDb } from './lib/databases.mjs';
import { fixedPool, startGateway } from './lib/gateway.mjs';
import { CONNECTIONS, DURATION, ROUNDS, WARMUP, compareRounds, pairedRatio, pairedSummary } from './lib/load.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function redisAnswers() {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG' ? undefined : 'no PONG';
  } catch (err) {
    return err.message;
  } finally {
    probe.disconnect();
  }
}

/** CPU µs per acquire + release with `concurrency` at a time, and wall µs per one when alone. */
async function leaseAlone(label, others) {
  const settings = { max_active_requests_global: 1000, global_lease_seconds: 10, global_local_share: 1, request_slot_timeout: 20 };
  const redis = new GlobalRedis(REDIS_URL);
  await redis.ready(5000);
  const rid = `bench_${process.pid}_${others}`;
  // Leases of other processes, as fresh as a refresh keeps them for the few seconds measured.
  if (others > 0) await redis.client.zadd(leaseKey(rid), ...Array.from({ length: others }, (_, i) => [Date.now(), `other:${i}`]).flat());
  const limiter = new GlobalLimiter(rid, redis, new EventEmitter(), () => settings);
  // A request's RequestResources is its cancel signal; this one never aborts.
  const signal = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
  const loop = async (limiter, n) => {
    for (let i = 0; i < n; i++) (await limiter.acquire(signal, 0)).release();
  };
  const cpuPerLease = async (concurrency, total) => {
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: concurrency }, () => loop(limiter, total / concurrency)));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / total;
  };
  try {
    await cpuPerLease(10, 5000); // warm-up
    const cpu = [];
    for (let r = 0; r < 5; r++) cpu.push(await cpuPerLease(10, 5000));
    const started = performance.now();
    await loop(limiter, 2000);
    const wall = ((performance.now() - started) * 1000) / 2000;
    cpu.sort((a, b) => a - b);
    return {
      [`CPU µs per lease (acquire + release, 10 at a time, median of 5), ${label}`]: Number(cpu[2].toFixed(1)),
      [`wall µs per lease, one at a time, ${label}`]: Number(wall.toFixed(1)),
    };
  } finally {
    limiter.releaseAll();
    await redis.client.del(leaseKey(rid));
    await redis.close();
  }
}

export async function run() {
  const down = await redisAnswers();
  if (down !== undefined) return { name: 'global-limit', rows: [], notes: [`skipped: Redis at ${REDIS_URL} does not answer (${down})`] };
  const dir = tempDir('wt-bench-global-');
  try {
    const db = sqliteDb(join(dir, 'traffic.db'));
    const c = (server, opts) => ({ label: { server }, path: db.route, start: () => startGateway(db, { label: `gateway (${server})`, ...opts }) });
    const [none, leased] = await compareRounds([
      c('no global limit', {}),
      c('global limit, a lease per request', {
        resource: fixedPool({ max_active_requests_global: 10_000, global_lease_seconds: 10 }),
        config: { global_limits_redis: REDIS_URL },
      }),
    ]);
    const ratio = pairedRatio(leased, none);
    const cpu = pairedSummary(leased, none, (x, y) => x['CPU ms/req'] - y['CPU ms/req'], 3);
    const p50 = pairedSummary(leased, none, (x, y) => x['p50 ms'] - y['p50 ms'], 2);
    const alone = { ...(await leaseAlone('spares', 0)), ...(await leaseAlone('through Redis', 600)) };
    return {
      name: 'global-limit',
      rows: [none, leased],
      ratio: {
        'with lease / without (median of rounds)': ratio.median,
        'with lease / without, lowest-highest round': `${ratio.min}-${ratio.max}`,
        'gateway CPU ms/req added by the lease (median)': cpu.median,
        'p50 ms added by the lease (median)': p50.median,
        ...alone,
      },
      notes: [
        `GET ${db.route}, ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${DURATION} s per round, ${ROUNDS} rounds alternating; Redis at ${REDIS_URL}`,
        'CPU ms/req counts the gateway process tree only, not Redis',
        'with this much room nearly every request takes a spare lease, given back by the one before; through Redis (near a full limit) each request waits for a round trip before its statement, and req/s falls by that latency',
      ],
    };
  } finally {
    removeTempDir(dir);
  }
}

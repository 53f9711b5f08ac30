// A burst of 50 clients on a freshly started gateway (SQLite, the shipped sqlite_traffic settings of
// config/watchtower.yaml), against the same burst on the same gateway once it is warm. Target: the cold
// burst's slowest answer within 300 ms (the original's worst was 250-320 ms), and no timeout.
import { join } from 'node:path';
import { shippedSqliteResource, sqliteDb } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const CLIENTS = 50;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_MAX_MS = 300;

async function burst(url) {
  const lat = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const started = performance.now();
      const res = await fetch(`${url}/sqlite-json`, { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`burst answer ${res.status}`);
      return performance.now() - started;
    }),
  );
  lat.sort((a, b) => a - b);
  return { p50: lat[Math.floor(CLIENTS / 2)], max: lat[CLIENTS - 1] };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const dir = tempDir('wt-bench-burst-');
  try {
    const db = sqliteDb(join(dir, 'traffic.db'));
    const cold = [];
    const warm = [];
    for (let round = 0; round < ROUNDS; round++) {
      const gw = await startGateway(db, { label: 'gateway', resource: shippedSqliteResource() });
      try {
        cold.push(await burst(gw.url));
        await new Promise((r) => setTimeout(r, 2000)); // the pool has grown; the JIT has seen the route
        warm.push(await burst(gw.url));
      } finally {
        await gw.stop();
      }
    }
    const row = (label, xs) => ({ case: label, 'p50 ms': Math.round(median(xs.map((x) => x.p50))), 'max ms (median of rounds)': Math.round(median(xs.map((x) => x.max))), 'max ms (worst round)': Math.round(Math.max(...xs.map((x) => x.max))) });
    const coldMax = Math.round(Math.max(...cold.map((x) => x.max)));
    return {
      name: 'cold-burst',
      rows: [row('cold: right after /health/ready', cold), row('warm: same gateway 2 s later', warm)],
      ratio: { 'cold/warm max latency (medians)': Number((median(cold.map((x) => x.max)) / median(warm.map((x) => x.max))).toFixed(2)) },
      target: { 'cold max ms <=': TARGET_MAX_MS, 'cold max ms': coldMax, met: coldMax <= TARGET_MAX_MS },
      notes: [`${ROUNDS} fresh gateways, ${CLIENTS} concurrent GET /sqlite-json each time`],
    };
  } finally {
    removeTempDir(dir);
  }
}

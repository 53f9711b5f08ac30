// /metrics scrape time with 10 resources x 20 routes (target: < 50 ms per scrape).
// Cases: a single process rendering its registry; and the cluster path, where two workers'
// registries are serialised to JSON (as over IPC) and merged by the primary. Runs over dist/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { createMetrics } from '../dist/metrics/catalogue.js';
import { bindResourceMetrics, initChildren, recordQuery, recordRequest } from '../dist/metrics/bind.js';
import { processSampler } from '../dist/metrics/process.js';
import { ClusterMetrics } from '../dist/cluster/merge.js';

const RESOURCES = 10;
const ROUTES = 20;
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 200);
const TARGET_MS = 50;

/** A registry that looks like a busy gateway: every series populated. */
async function populated() {
  const metrics = createMetrics();
  const rids = Array.from({ length: RESOURCES }, (_, i) => `resource_${i}`);
  const routes = Array.from({ length: ROUTES }, (_, i) => `/route-${i}`);
  const source = Object.assign(new EventEmitter(), { stats: () => ({ active: 2, pending: 1, open: 5, pooled: 3, inUse: 2 }) });
  bindResourceMetrics(metrics, source, rids);
  initChildren(metrics, routes, rids);
  for (let i = 0; i < 20_000; i++) {
    const rid = rids[i % RESOURCES];
    recordRequest(metrics, routes[i % ROUTES], [200, 200, 200, 404, 503][i % 5], (i % 997) / 1000);
    recordQuery(metrics, { resourceId: rid, seconds: (i % 101) / 1000, rows: i % 2000, error: i % 50 === 0 ? 'timeout' : undefined });
    source.emit('slot-requested', { resourceId: rid });
    source.emit('slot-acquired', { resourceId: rid, waitSeconds: (i % 13) / 1000 });
    source.emit('conn-acquired', { resourceId: rid, connId: 1, waitSeconds: (i % 7) / 1000 });
    source.emit('conn-released', { resourceId: rid, connId: 1, usageSeconds: (i % 17) / 1000 });
  }
  await processSampler(metrics).sample();
  return metrics;
}

async function time(fn) {
  for (let i = 0; i < 10; i++) await fn(); // warm-up
  const ms = [];
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    const start = process.hrtime.bigint();
    bytes = (await fn()).length;
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => Number(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(2));
  return { 'p50 ms': q(0.5), 'p95 ms': q(0.95), 'max ms': q(1), bytes };
}

export async function run() {
  const single = await populated();
  const workers = [await populated(), await populated()];
  const series = (await single.registry.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

  const local = await time(() => single.registry.metrics());
  // Cluster: each worker's JSON crosses IPC (JSON round trip), the primary merges and renders.
  const cluster = await time(async () => {
    const merged = new ClusterMetrics();
    const snaps = await Promise.all(workers.map(async (w) => JSON.parse(JSON.stringify(await w.registry.getMetricsAsJSON()))));
    snaps.forEach((s, i) => {
      merged.add(i);
      merged.update(i, s);
    });
    return merged.text();
  });
  const rows = [
    { case: `single process, ${RESOURCES} resources x ${ROUTES} routes`, series, ...local },
    { case: '2-worker aggregate (JSON + merge + render)', series, ...cluster },
  ];
  const worst = Math.max(local['p95 ms'], cluster['p95 ms']);
  return { name: 'metrics-scrape', scrapes: SCRAPES, rows, target: { 'p95 ms <': TARGET_MS, met: worst < TARGET_MS } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run();
  console.table(result.rows);
  console.log(result.target);
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('metrics-scrape.json', dir), JSON.stringify({ at: new Date().toISOString(), node: process.version, ...result }, null, 2) + '\n');
}

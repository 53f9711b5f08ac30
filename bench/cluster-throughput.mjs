// Cluster throughput on /sqlite-json: the built gateway (dist/main.js) with 1 worker (single
// process) vs 2 workers, each loaded by autocannon over loopback for a few seconds. On a 2-core
// machine the load generator competes with the workers, so read the ratio, not absolute numbers.
// Logging stays at INFO (the default, as in production): its cost is part of what is measured.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { stringify } from 'yaml';
import { freePort } from './lib/processes.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);


/** Starts the gateway with `workers` workers; resolves once that many have logged tag=listening. */
async function startGateway(workers) {
  const dir = mkdtempSync(join(tmpdir(), 'wt-bench-'));
  const port = await freePort();
  const configFile = join(dir, 'watchtower.yaml');
  writeFileSync(
    configFile,
    stringify({
      workers,
      resource_ids: ['sqlite_traffic'],
      secure: { sqlite_traffic: { db_type: 'sqlite', db_sample: true, db_path: join(dir, 't.db') } },
      endpoints: [join(ROOT, 'config', 'endpoints', 'traffic-sqlite.yaml')],
    }),
  );
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', WT_CONFIG: configFile, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'INFO' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let listening = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start within 30 s')), 30_000);
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      listening += chunk.split('\n').filter((l) => l.includes('tag=listening')).length;
      if (listening >= workers) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code} during start-up`)));
  });
  // Keep draining stdout so the gateway never blocks on a full pipe.
  child.stdout.resume();
  const stop = async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: `http://127.0.0.1:${port}`, stop };
}

async function measure(workers) {
  const gw = await startGateway(workers);
  try {
    await autocannon({ url: `${gw.url}/sqlite-json`, connections: CONNECTIONS, duration: 1 }); // warm-up
    const r = await autocannon({ url: `${gw.url}/sqlite-json`, connections: CONNECTIONS, duration: DURATION });
    return { workers, 'req/s': Math.round(r.requests.average), 'p50 ms': r.latency.p50, 'p99 ms': r.latency.p99, non2xx: r.non2xx, errors: r.errors };
  } finally {
    await gw.stop();
  }
}

export async function run() {
  const rows = [await measure(1), await measure(2)];
  const ratio = Number((rows[1]['req/s'] / rows[0]['req/s']).toFixed(2));
  return { name: 'cluster-throughput', seconds: DURATION, connections: CONNECTIONS, rows, ratio: { '2 workers / 1': ratio } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run();
  console.table(result.rows);
  console.log(result.ratio);
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('cluster-throughput.json', dir), JSON.stringify({ at: new Date().toISOString(), node: process.version, ...result }, null, 2) + '\n');
}

// The embedded SQLite resource against the limit of the machine: the gateway with the shipped
// configuration (config/watchtower.yaml's sqlite_traffic pool) against a bare Fastify route calling
// better-sqlite3 on its own main thread, on the same file and query, in the same run:
//   /sqlite-json (10 rows) at 50 connections and at 1, and /sqlite-psv streaming 1,000 rows;
//   PSS of each server's whole process tree, idle after start-up and at its peak under load.
// Targets: gateway >= 0.8x the bare route in each case; PSS under load < 150 MB; idle PSS <= 90 MB.
// The cold start of the same configuration is the cold-burst module.
import { join } from 'node:path';
import { startBare } from './lib/bare.mjs';
import { shippedSqliteResource, sqliteDb } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { DURATION, ROUNDS, WARMUP, compareRounds, pairedRatio } from './lib/load.mjs';
import { processTree, pssBytes, removeTempDir, tempDir } from './lib/processes.mjs';

const TARGET_RATIO = 0.8;
const TARGET_LOADED_PSS_MB = 150;
const TARGET_IDLE_PSS_MB = 90;
const STREAM_ROWS = 1000;

const LOADS = [
  { name: 'json, 50 connections', path: '/sqlite-json', load: { connections: 50, pss: true } },
  { name: 'json, 1 connection', path: '/sqlite-json', load: { connections: 1, pss: true } },
  { name: `psv stream of ${STREAM_ROWS} rows, 50 connections`, path: `/sqlite-psv?limit=${STREAM_ROWS}`, load: { connections: 50, pss: true } },
];

/** Tree PSS of a freshly started server, after a short settle with no traffic. */
async function idlePssMb(start) {
  const server = await start();
  try {
    await new Promise((r) => setTimeout(r, 2000));
    return Math.round(pssBytes(processTree(server.pid)) / 1048576);
  } finally {
    await server.stop();
  }
}

export async function run() {
  const dir = tempDir('wt-bench-sqlite-limit-');
  try {
    const db = sqliteDb(join(dir, 'traffic.db'));
    const resource = shippedSqliteResource();
    const gateway = () => startGateway(db, { label: 'gateway (shipped SQLite pool)', resource });
    const bare = () => startBare(db, 'raw');
    // For information: the fallback without the interrupt extension, a worker process per connection.
    const processes = () => startGateway(db, { label: 'gateway (worker processes)', resource, secure: { sqlite_workers: 'processes' } });
    const rows = [];
    const ratios = {};
    const met = [];
    let loadedPss = 0;
    for (const l of LOADS) {
      const [gw, raw, ...info] = await compareRounds([
        { label: { load: l.name, server: 'gateway' }, path: l.path, load: l.load, start: gateway },
        { label: { load: l.name, server: 'bare Fastify + better-sqlite3 in-process' }, path: l.path, load: l.load, start: bare },
        { label: { load: l.name, server: 'gateway, sqlite_workers: processes (info)' }, path: l.path, load: l.load, start: processes },
      ]);
      rows.push(gw, raw, ...info);
      for (const i of info) ratios[`${l.name}: ${i.server} / bare`] = pairedRatio(i, raw).median;
      const paired = pairedRatio(gw, raw);
      ratios[`${l.name}: gateway / bare (median of rounds)`] = paired.median;
      ratios[`${l.name}: lowest-highest round`] = `${paired.min}-${paired.max}`;
      met.push(paired.median >= TARGET_RATIO);
      loadedPss = Math.max(loadedPss, ...gw.byRound.map((r) => r['peak PSS MB']));
    }
    const idle = { gateway: await idlePssMb(gateway), bare: await idlePssMb(bare), processes: await idlePssMb(processes) };
    ratios['idle PSS MB, gateway / bare'] = `${idle.gateway} / ${idle.bare}`;
    ratios['idle PSS MB, gateway with sqlite_workers: processes (info)'] = idle.processes;
    return {
      name: 'sqlite-limit',
      seconds: DURATION,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      notes: [
        `gateway: the shipped sqlite_traffic settings (${JSON.stringify(resource)}); bare: better-sqlite3 on the main thread, no pool, no hooks, no records`,
        'peak PSS MB: the process tree (one process, with a worker thread for each SQLite connection a statement has needed one for; with sqlite_workers: processes, a child process per connection), sampled every 200 ms of the measured phase',
        `each case ${ROUNDS} round(s), gateway and bare alternating, each freshly started and loaded for ${WARMUP} s first`,
      ],
      rows,
      ratio: ratios,
      target: {
        'gateway / bare >=': TARGET_RATIO,
        'peak PSS under load MB <': TARGET_LOADED_PSS_MB,
        'peak PSS under load MB': loadedPss,
        'idle PSS MB <=': TARGET_IDLE_PSS_MB,
        'idle PSS MB': idle.gateway,
        met: met.every(Boolean) && loadedPss < TARGET_LOADED_PSS_MB && idle.gateway <= TARGET_IDLE_PSS_MB,
      },
    };
  } finally {
    removeTempDir(dir);
  }
}

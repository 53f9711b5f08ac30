// Instructions per request, gateway against the bare server with the same driver layer, counted by
// valgrind's callgrind on each server's main thread. Throughput on a shared, noisy machine moves by
// tens of per cent between identical runs; an instruction count repeats to within a few per cent, so
// this shows whether a change to the request path made it cheaper when req/s cannot. It is not the target
// (that is throughput, in http.mjs): instructions ignore cache misses, system calls and the other
// processes, and under valgrind a server runs ~50 times slower, so its timers (the log flush every
// 200 ms) fire more often per request than at full speed.
//
// Each server starts under callgrind with instrumentation off, gets BENCH_CG_WARMUP requests so V8
// has optimised its request path, then exactly BENCH_CG_REQUESTS counted ones (callgrind_control
// switches counting on and off around them). The warm-up runs in two loads: the end of a load
// closes its connections, which sends V8 back to unoptimised code for parts of the socket and stream
// path, and a counted load right after that measured both servers ~30,000 instructions per request
// high while V8 optimised them again. Skipped, with the reason, when valgrind is missing.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startBare } from './lib/bare.mjs';
import { serverDbs, sqliteDb } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const WARMUP_REQUESTS = Number(process.env.BENCH_CG_WARMUP ?? 16_000);
const COUNTED_REQUESTS = Number(process.env.BENCH_CG_REQUESTS ?? 3_000);
const CONNECTIONS = 4;
export const MAIN = 'instructions/req, main thread';
/** vgdb finds a valgrind process by user and host name: both sides get the same ones. */
const VGDB_ENV = { USER: 'wt-bench', LOGNAME: 'wt-bench', HOST: '127.0.0.1' };

export function missingTool() {
  for (const tool of ['valgrind', 'callgrind_control']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${tool} not found (Debian: apt-get install valgrind)`;
    }
  }
  return undefined;
}

function callgrindControl(pid, ...args) {
  execFileSync('callgrind_control', [...args, String(pid)], { env: { ...process.env, ...VGDB_ENV }, stdio: 'ignore', timeout: 60_000 });
}

/** Instructions in the dump of each thread: files <prefix>.<part>-<thread>; thread 1 is the main thread. */
function instructionsByThread(dir, pid) {
  const byThread = new Map();
  for (const f of readdirSync(dir)) {
    const m = f.match(new RegExp(`^cg\\.${pid}(?:\\.\\d+)?-(\\d+)$`));
    if (!m) continue;
    const total = readFileSync(join(dir, f), 'utf8').match(/^totals: (\d+)/m);
    if (total) byThread.set(Number(m[1]), (byThread.get(Number(m[1])) ?? 0) + Number(total[1]));
  }
  return byThread;
}

/** A load phase whose answers were not all 2xx measured something else than the route. */
function expectAllOk(result, what) {
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${what}: ${result.non2xx} non-2xx answers and ${result.errors} errors`);
}

/**
 * Starts one server under callgrind, counts COUNTED_REQUESTS requests and returns its row.
 * `opts.headers`: sent with every request; `opts.warmup`: requests before counting (default BENCH_CG_WARMUP).
 */
export async function count(label, start, path, dir, opts = {}) {
  const { headers, warmup = WARMUP_REQUESTS } = opts;
  const name = `${label.db} ${label.server}`;
  const wrapper = ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--smc-check=all-non-file', `--callgrind-out-file=${join(dir, 'cg.%p')}`];
  const server = await start({ wrapper, env: VGDB_ENV, readyTimeoutMs: 300_000 });
  try {
    const url = `${server.url}${path}`;
    const second = Math.round(warmup / 4);
    for (const amount of [warmup - second, second]) {
      expectAllOk(await autocannon({ url, connections: CONNECTIONS, amount, timeout: 60, headers }), `${name}, warm-up`);
    }
    callgrindControl(server.pid, '--zero');
    callgrindControl(server.pid, '--instr=on');
    const counted = await autocannon({ url, connections: CONNECTIONS, amount: COUNTED_REQUESTS, timeout: 60, headers });
    callgrindControl(server.pid, '--instr=off');
    callgrindControl(server.pid, '--dump');
    expectAllOk(counted, name);
  } finally {
    await server.stop();
  }
  const threads = instructionsByThread(dir, server.pid);
  const main = threads.get(1);
  if (!main) throw new Error(`${name}: callgrind wrote no counts for the main thread (did callgrind_control reach pid ${server.pid}?)`);
  let others = 0;
  for (const [thread, n] of threads) if (thread !== 1) others += n;
  return {
    ...label,
    [MAIN]: Math.round(main / COUNTED_REQUESTS),
    'instructions/req, other threads': Math.round(others / COUNTED_REQUESTS),
  };
}

export async function run() {
  const notes = [
    `callgrind instruction counts over ${COUNTED_REQUESTS} requests after ${WARMUP_REQUESTS} warm-up requests in two loads, ${CONNECTIONS} connections`,
    'main thread: where the request path runs; other threads: V8 compilation and GC helpers',
    'for comparing code changes on a noisy machine; the throughput target is judged in http',
  ];
  const missing = missingTool();
  if (missing) return { name: 'instructions', notes: [`skipped: ${missing}`, ...notes], rows: [] };
  const dir = tempDir('wt-bench-cg-');
  try {
    const { ready, skipped } = await serverDbs();
    for (const s of skipped) notes.push(`skipped ${s.key}: ${s.reason}`);
    const rows = [];
    const ratio = {};
    for (const db of [sqliteDb(join(dir, 'traffic.db')), ...ready]) {
      const gw = await count({ db: db.key, server: 'gateway' }, (o) => startGateway(db, { label: `gateway (${db.key}, callgrind)`, ...o }), db.route, dir);
      const bare = await count({ db: db.key, server: 'bare, same driver layer' }, (o) => startBare(db, 'layer', o), db.route, dir);
      rows.push(gw, bare);
      ratio[`${db.key}: bare / gateway instructions per request, main thread`] = Number((bare[MAIN] / gw[MAIN]).toFixed(3));
    }
    return { name: 'instructions', warmupRequests: WARMUP_REQUESTS, countedRequests: COUNTED_REQUESTS, connections: CONNECTIONS, notes, rows, ratio };
  } finally {
    removeTempDir(dir);
  }
}

// One load phase: autocannon (in this process) against a server over loopback, after a short
// warm-up, while the server's process tree is sampled for memory (VmRSS summed over the server
// and its child processes) and CPU time.
import autocannon from 'autocannon';
import { cpuSeconds, mainThreadCpu, processTree, pssBytes, rssBytes } from './processes.mjs';

/** Seconds per measured phase (env BENCH_DURATION). */
export const DURATION = Number(process.env.BENCH_DURATION ?? 5);
/** Concurrent HTTP connections (env BENCH_CONNECTIONS). */
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
/** Rounds per comparison, alternating between the servers compared (env BENCH_ROUNDS). */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/**
 * Seconds of load before each measured phase (env BENCH_WARMUP). A freshly started server needs
 * several seconds of traffic before V8 has optimised its request path: on a 2-core machine the
 * gateway took about 5 s to reach its steady rate and the bare server about 3 s (bench/README.md),
 * so a shorter warm-up measures compilation, and the server with more code the more.
 */
export const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
const SAMPLE_MS = 200;

/**
 * @typedef {{ 'req/s': number, 'p50 ms': number, 'p99 ms': number, 'peak RSS MB': number,
 *   'CPU ms/req': number, processes: number, non2xx: number, errors: number }} LoadRow
 */

/** Fails early (and clearly) when the route does not answer 200 with rows (a JSON array, or lines of text). */
async function checkRoute(url, headers = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${body.slice(0, 300)}`);
  if (!/json/.test(res.headers.get('content-type') ?? '')) {
    const lines = body.split('\n').filter((l) => l !== '').length;
    if (lines === 0) throw new Error(`GET ${url} returned no lines`);
    return lines;
  }
  const rows = JSON.parse(body);
  if (!Array.isArray(rows) || rows.length === 0) throw new Error(`GET ${url} did not return rows: ${body.slice(0, 300)}`);
  return rows.length;
}

/**
 * @param {{ pid: number }} server
 * @param {string} url
 * @param {{ connections?: number, headers?: Record<string, string>, pss?: boolean }} [opts] headers: sent with every request (credentials);
 *   pss: also sample the tree's PSS (reading smaps_rollup costs more than VmRSS, so only where asked)
 * @returns {Promise<LoadRow & { rows: number }>}
 */
export async function measure(server, url, opts = {}) {
  const connections = opts.connections ?? CONNECTIONS;
  const headers = opts.headers ?? {};
  const rowsPerResponse = await checkRoute(url, headers);
  await autocannon({ url, connections, headers, duration: WARMUP });

  let peak = 0;
  let peakPss = 0;
  let pids = processTree(server.pid);
  const sample = () => {
    pids = processTree(server.pid);
    peak = Math.max(peak, rssBytes(pids));
    if (opts.pss) peakPss = Math.max(peakPss, pssBytes(pids));
  };
  sample();
  const cpuBefore = cpuSeconds(pids);
  const mainBefore = mainThreadCpu(server.pid);
  const timer = setInterval(sample, SAMPLE_MS);
  let result;
  try {
    result = await autocannon({ url, connections, headers, duration: DURATION });
  } finally {
    clearInterval(timer);
  }
  sample();
  const mainAfter = mainThreadCpu(server.pid);
  // CPU of processes alive at both ends (none are replaced while a phase runs in these configs).
  let cpu = 0;
  for (const [pid, after] of cpuSeconds(pids)) cpu += after - (cpuBefore.get(pid) ?? 0);
  const requests = result.requests.total || 1;
  return {
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'peak RSS MB': Math.round(peak / 1048576),
    ...(opts.pss ? { 'peak PSS MB': Math.round(peakPss / 1048576) } : {}),
    'CPU ms/req': Number(((cpu * 1000) / requests).toFixed(3)),
    // The server's own code runs here; the rest is V8's helper threads and driver child processes.
    'main thread µs/req user+sys': `${Math.round(((mainAfter.user - mainBefore.user) * 1e6) / requests)}+${Math.round(((mainAfter.system - mainBefore.system) * 1e6) / requests)}`,
    processes: pids.length,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    rows: rowsPerResponse,
  };
}

/**
 * Measures each case ROUNDS times, alternating between cases (a, b, c, a, b, c, ...) so that other
 * load on the machine hits every case alike. Other work can only slow a server down, so each row
 * reports its best round (latencies from that round) and lists every round's req/s.
 * @param {{ label: Record<string, unknown>, start: () => Promise<{ pid: number, url: string, stop: () => Promise<void> }>, path: string, load?: { connections?: number, pss?: boolean } }[]} cases
 *   load: options of measure() for that case
 */
export async function compareRounds(cases) {
  const rounds = cases.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of cases.entries()) {
      const server = await c.start();
      try {
        rounds[i].push(await measure(server, `${server.url}${c.path}`, c.load));
      } finally {
        await server.stop();
      }
    }
  }
  return cases.map((c, i) => {
    const best = rounds[i].reduce((a, b) => (b['req/s'] > a['req/s'] ? b : a));
    const row = { ...c.label, ...best, 'req/s by round': rounds[i].map((r) => r['req/s']).join(' / ') };
    // Every round's measurements, kept out of the printed table and the JSON row.
    Object.defineProperty(row, 'byRound', { value: rounds[i], enumerable: false });
    return row;
  });
}

/**
 * Throughput of `a` over `b`, round by round (the two were measured one after the other in each
 * round, so slow drift in the machine's speed hits both alike), summarised by the median, with the
 * lowest and highest round. Sturdier than best-of-a over best-of-b, where the server with the
 * larger spread gets the larger lucky draw.
 * @returns {{ median: number, min: number, max: number }}
 */
export function pairedRatio(a, b) {
  return pairedSummary(a, b, (x, y) => x['req/s'] / y['req/s'], 2);
}

/**
 * `diff(roundOfA, roundOfB)` for each round, summarised like pairedRatio.
 * @returns {{ median: number, min: number, max: number }}
 */
export function pairedSummary(a, b, diff, digits) {
  const values = a.byRound.map((x, i) => diff(x, b.byRound[i])).sort((x, y) => x - y);
  const mid = Math.floor(values.length / 2);
  const median = values.length % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  const round = (x) => Number(x.toFixed(digits));
  return { median: round(median), min: round(values[0]), max: round(values[values.length - 1]) };
}

/**
 * One load phase on `path` with the given request headers: req/s, p99, and the server's CPU per
 * request (its process tree, and its main thread alone). Throws on any non-2xx, error or timeout.
 */
export async function cpuPhase(server, path, duration, headers = {}) {
  const pids = processTree(server.pid);
  const cpuBefore = cpuSeconds(pids);
  const mainBefore = mainThreadCpu(server.pid);
  const r = await autocannon({ url: `${server.url}${path}`, connections: CONNECTIONS, duration, headers });
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) throw new Error(`${path}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  const mainAfter = mainThreadCpu(server.pid);
  let cpu = 0;
  for (const [pid, after] of cpuSeconds(pids)) cpu += after - (cpuBefore.get(pid) ?? 0);
  const requests = r.requests.total || 1;
  return {
    reqPerSecond: r.requests.average,
    p99: r.latency.p99,
    cpuUsPerReq: (cpu * 1e6) / requests,
    mainUsPerReq: ((mainAfter.user - mainBefore.user + mainAfter.system - mainBefore.system) * 1e6) / requests,
  };
}

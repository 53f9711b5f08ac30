// A database that goes down and comes back, behind a TCP proxy (bench/lib/outage-proxy.mjs), with
// the circuit breaker at its defaults but breaker_failures 3 (probe every 2 s) and db_conn_timeout
// 1 s. During the outage 10 clients call a declared endpoint in a loop: how many requests were
// answered, and the longest any of them waited, before and after the breaker opened. Then the
// proxy relays again: the time from then to the first 200. Targets: no request waits longer than
// the probe interval once the breaker is open, and the first 200 comes within one probe interval
// (plus the probe's own connect, allowed 250 ms).
// Outages: 'refused' (the server process is gone: connects fail at once) and 'silent' (the network
// drops packets: each connect attempt waits out db_conn_timeout).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverDbs } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { outageProxy } from './lib/outage-proxy.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const PROBE_INTERVAL_S = 2;
/** The probe's own connect (a TCP and database handshake on loopback) on top of the interval. */
const PROBE_CONNECT_ALLOWANCE_MS = 250;
const OUTAGE_S = Number(process.env.BENCH_DURATION ?? 5) + 3;
const CLIENTS = 10;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(url) {
  const started = performance.now();
  try {
    const res = await fetch(`${url}/out`, { signal: AbortSignal.timeout(30_000) });
    const body = await res.text();
    return { status: res.status, ms: performance.now() - started, breaker: body.includes('circuit breaker open'), at: started };
  } catch {
    return { status: 0, ms: performance.now() - started, breaker: false, at: started };
  }
}

/** One outage: load during it, then the recovery. */
async function outage(gw, proxy, how) {
  for (let i = 0; i < 50 && (await call(gw.url)).status !== 200; i++) await sleep(100);
  await proxy.down(how);
  const answers = [];
  const until = performance.now() + OUTAGE_S * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) answers.push(await call(gw.url));
    }),
  );
  // Open from the first breaker answer on: requests sent before it may still have waited on a connect.
  const firstBreaker = Math.min(...answers.filter((a) => a.breaker).map((a) => a.at + a.ms));
  const after = answers.filter((a) => a.at >= firstBreaker);
  const before = answers.filter((a) => a.at < firstBreaker);
  await proxy.up();
  const back = performance.now();
  let recoveryMs;
  while (performance.now() - back < 10 * PROBE_INTERVAL_S * 1000) {
    const a = await call(gw.url);
    if (a.status === 200) {
      recoveryMs = performance.now() - back;
      break;
    }
    await sleep(5);
  }
  const max = (xs) => (xs.length === 0 ? 0 : Math.max(...xs.map((a) => a.ms)));
  return {
    answered: answers.length,
    perSecond: answers.length / OUTAGE_S,
    openAfterMs: Number.isFinite(firstBreaker) ? firstBreaker - (until - OUTAGE_S * 1000) : undefined,
    maxBeforeMs: max(before),
    maxAfterMs: max(after),
    non503After: after.filter((a) => a.status !== 503).length,
    recoveryMs,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const { ready, skipped } = await serverDbs();
  if (ready.length === 0) throw new Error(`no database server to take down: ${skipped.map((s) => s.reason).join('; ')}`);
  const rows = [];
  let worstAfter = 0;
  let worstRecovery = 0;
  for (const db of ready) {
    const proxy = await outageProxy(db.target.db_host, db.target.db_port || (db.dialect === 'postgres' ? 5432 : 3306));
    const dir = tempDir('wt-bench-breaker-');
    const file = join(dir, 'out.yaml');
    writeFileSync(file, `endpoints:\n  - { method: GET, path: /out, resources: [${db.resourceId}], statements: [{ sql: 'SELECT 1 AS one' }], result: one, columns: { one: { type: integer } } }\n`);
    const gw = await startGateway({ ...db, target: { ...db.target, db_port: proxy.port } }, {
      label: `gateway ${db.key}`,
      config: { endpoints: [file], pool_check_interval: 0.5 },
      resource: { db_min_conn_pool_size: 2, db_max_conn_pool_size: 4, db_conn_timeout: 1, db_conn_retry_wait_period: 0.2, breaker_failures: 3, breaker_probe_interval: PROBE_INTERVAL_S },
    });
    try {
      for (const how of ['refused', 'silent']) {
        const runs = [];
        for (let r = 0; r < ROUNDS; r++) runs.push(await outage(gw, proxy, how));
        const after = Math.max(...runs.map((x) => x.maxAfterMs));
        const recoveries = runs.map((x) => x.recoveryMs ?? Infinity);
        worstAfter = Math.max(worstAfter, after);
        worstRecovery = Math.max(worstRecovery, ...recoveries);
        rows.push({
          database: db.key,
          outage: how,
          'answered/s': Math.round(median(runs.map((x) => x.perSecond))),
          'breaker open after ms': Math.round(median(runs.map((x) => x.openAfterMs ?? NaN))),
          'max wait before open ms': Math.round(Math.max(...runs.map((x) => x.maxBeforeMs))),
          'max wait once open ms': Math.round(after),
          'not 503 once open': runs.reduce((n, x) => n + x.non503After, 0),
          'first 200 after back ms (median)': Math.round(median(recoveries)),
          'first 200 after back ms (worst)': Math.round(Math.max(...recoveries)),
        });
      }
    } finally {
      await gw.stop();
      await proxy.close();
      removeTempDir(dir);
    }
  }
  const limit = PROBE_INTERVAL_S * 1000;
  // The next probe starts at most one interval after the database is back; it then has to connect.
  const recoveryLimit = limit + PROBE_CONNECT_ALLOWANCE_MS;
  return {
    name: 'breaker',
    rows,
    target: {
      'max wait once open ms <=': limit,
      'first 200 after back ms <=': recoveryLimit,
      'max wait once open ms': Math.round(worstAfter),
      'first 200 after back ms': Math.round(worstRecovery),
      met: worstAfter <= limit && worstRecovery <= recoveryLimit,
    },
    notes: [
      `${ROUNDS} outages of ${OUTAGE_S} s per kind and database, ${CLIENTS} clients in a loop; breaker_failures 3, breaker_probe_interval ${PROBE_INTERVAL_S} s, db_conn_timeout 1 s`,
      'first 200 after back: from the proxy relaying again to the first 200 a client polling every 5 ms got (the probe waits up to one interval, then connects)',
      ...skipped.map((s) => `skipped ${s.key}: ${s.reason}`),
    ],
  };
}

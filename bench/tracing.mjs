// What tracing a request into its database costs, on PostgreSQL and MariaDB (SQLite when neither is
// reachable): three gateways serving the same sample endpoint (GET /<db>-json?limit=10), warmed,
// then measured in turn for BENCH_ROUNDS rounds, the order rotating:
// - baseline: sql_comment off, otel_traces off (the defaults);
// - sql_comment on: each statement carries its sqlcommenter comment. Target: >= 0.97 of the
//   baseline's throughput (median over rounds of the ratio of phases measured back to back);
// - otel_traces on: a span per request, acquisition and statement, exported over OTLP/HTTP to a
//   sink in this process that reads and discards them (information: what tracing on costs).
// - with BENCH_PIN_DB=1 (Linux, taskset, 2 CPUs or more, the server database local): baseline and
//   sql_comment on again with the database server's processes on the last CPU and the gateways and
//   the load generator on the others, as when the database has its own machine (information: what
//   the comment costs the gateway, apart from what it costs the database on shared cores). The
//   affinities are restored afterwards, also if the benchmark is stopped.
// Each row also gives the gateway's CPU per request, which other work on the machine moves less than
// req/s, and the local database server's CPU per request.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { serverDbs, sqliteDb } from './lib/databases.mjs';
import { fixedPool, startGateway } from './lib/gateway.mjs';
import { canPin, pinApart, serverCpuSeconds } from './lib/cpu-pinning.mjs';
import { CONNECTIONS, cpuPhase, DURATION, ROUNDS, WARMUP } from './lib/load.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const COMMENT_TARGET = 0.97;
const PIN_DB = process.env.BENCH_PIN_DB === '1';

/** cpuPhase, plus the database server's CPU per request over the phase (0 for SQLite). */
async function phase(db, gateway, path) {
  const before = serverCpuSeconds(db);
  const p = await cpuPhase(gateway, path, DURATION);
  const requests = Math.max(1, p.reqPerSecond * DURATION);
  return { ...p, dbUsPerReq: ((serverCpuSeconds(db) - before) * 1e6) / requests };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const round2 = (x) => Number(x.toFixed(2));

/** An OTLP/HTTP receiver that reads each export, counts it and answers 200 (as a collector would). */
async function startSink() {
  const sink = { posts: 0, bytes: 0 };
  const server = createServer((req, res) => {
    req.on('data', (c) => (sink.bytes += c.length));
    req.on('end', () => {
      sink.posts++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.url = `http://127.0.0.1:${server.address().port}`;
  sink.close = () => new Promise((resolve) => server.close(resolve));
  return sink;
}

/** The three gateways of one database, measured round by round; its rows and ratios. */
async function measureDb(db, sink) {
  const variants = [
    { name: 'baseline (sql_comment off, tracing off)', resource: fixedPool(), config: {} },
    { name: 'sql_comment on', resource: fixedPool({ sql_comment: true }), config: {} },
    { name: 'otel_traces on (OTLP to a local sink)', resource: fixedPool(), config: { otel_traces: true, otel_exporter_otlp_endpoint: sink.url } },
  ];
  const path = `${db.route}?limit=10`;
  const gateways = [];
  try {
    for (const v of variants) gateways.push(await startGateway(db, { label: `gateway ${db.key}, ${v.name}`, resource: v.resource, config: v.config }));
    for (const g of gateways) await cpuPhase(g, path, WARMUP);
    const postsBefore = sink.posts;
    const phases = variants.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      // Each variant goes first in turn, so slow drift of the machine hits all alike.
      for (let k = 0; k < variants.length; k++) {
        const i = (r + k) % variants.length;
        phases[i].push(await phase(db, gateways[i], path));
      }
    }
    const pinned = PIN_DB && db.key !== 'sqlite' ? await pinnedRounds(db, gateways.slice(0, 2), path) : undefined;
    const paired = (a, b, f = (p) => p.reqPerSecond) => {
      const xs = phases[a].map((p, k) => f(p) / f(phases[b][k]));
      return { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) };
    };
    const rows = variants.map((v, i) => ({
      database: db.key,
      gateway: v.name,
      'req/s (median)': Math.round(median(phases[i].map((p) => p.reqPerSecond))),
      'p99 ms (median)': median(phases[i].map((p) => p.p99)),
      'CPU µs/req (median)': Math.round(median(phases[i].map((p) => p.cpuUsPerReq))),
      'main thread µs/req (median)': Math.round(median(phases[i].map((p) => p.mainUsPerReq))),
      'database server µs/req (median)': Math.round(median(phases[i].map((p) => p.dbUsPerReq))),
      'req/s by round': phases[i].map((p) => Math.round(p.reqPerSecond)).join(' / '),
    }));
    return {
      rows,
      comment: paired(1, 0),
      tracing: paired(2, 0),
      tracingCpu: paired(2, 0, (p) => p.cpuUsPerReq),
      pinned,
      exports: sink.posts - postsBefore,
    };
  } finally {
    for (const g of gateways) await g.stop();
  }
}

/**
 * Baseline and sql_comment on, ROUNDS rounds alternating, with the database server on a CPU of its
 * own: the ratio of their req/s, and each one's gateway and database CPU per request.
 */
async function pinnedRounds(db, [baseline, commented], path) {
  if (!canPin()) return { skipped: 'needs Linux, taskset and 2 CPUs or more' };
  const restore = pinApart(db, [baseline.pid, commented.pid]);
  try {
    for (const g of [baseline, commented]) await cpuPhase(g, path, WARMUP);
    const off = [];
    const on = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const which of r % 2 === 0 ? [off, on] : [on, off]) which.push(await phase(db, which === off ? baseline : commented, path));
    }
    const xs = on.map((p, k) => p.reqPerSecond / off[k].reqPerSecond);
    const med = (ps, f) => Math.round(median(ps.map(f)));
    return {
      ratio: { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) },
      mainUs: `${med(off, (p) => p.mainUsPerReq)} -> ${med(on, (p) => p.mainUsPerReq)}`,
      dbUs: `${med(off, (p) => p.dbUsPerReq)} -> ${med(on, (p) => p.dbUsPerReq)}`,
    };
  } finally {
    restore();
  }
}

export async function run() {
  const dir = tempDir('wt-bench-tracing-');
  const sink = await startSink();
  try {
    const { ready, skipped } = await serverDbs();
    const dbs = ready.length > 0 ? ready : [sqliteDb(join(dir, 'traffic.db'))];
    const rows = [];
    const ratio = {};
    const notes = [
      'the same sample endpoint on three gateways (logs at INFO to /dev/null, metrics on); sql_comment is set on the resource, otel_traces with otel_exporter_otlp_endpoint at a sink in the benchmark process',
      'ratios are medians over rounds of phases measured back to back; the sink reads and discards every export',
      ...skipped.map((s) => `${s.key} skipped: ${s.reason}`),
    ];
    const comments = [];
    for (const db of dbs) {
      const r = await measureDb(db, sink);
      rows.push(...r.rows);
      comments.push(r.comment.median);
      ratio[`${db.key}: sql_comment on / off req/s (median of rounds)`] = r.comment.median;
      ratio[`${db.key}: sql_comment on / off, lowest-highest round`] = `${r.comment.min}-${r.comment.max}`;
      ratio[`${db.key}: otel_traces on / off req/s (median of rounds, info)`] = r.tracing.median;
      ratio[`${db.key}: otel_traces on / off CPU per request (median of rounds, info)`] = r.tracingCpu.median;
      if (r.pinned?.skipped) notes.push(`${db.key}: BENCH_PIN_DB skipped: ${r.pinned.skipped}`);
      else if (r.pinned) {
        ratio[`${db.key}: sql_comment on / off req/s, database on a CPU of its own (BENCH_PIN_DB, info)`] = r.pinned.ratio.median;
        ratio[`${db.key}: the same, lowest-highest round`] = `${r.pinned.ratio.min}-${r.pinned.ratio.max}`;
        ratio[`${db.key}: the same, main-thread / database server µs per request, off -> on`] = `${r.pinned.mainUs}; ${r.pinned.dbUs}`;
      }
      if (r.exports === 0) throw new Error(`${db.key}: the tracing gateway sent no export to the sink`);
      notes.push(`${db.key}: the tracing gateway sent ${r.exports} exports to the sink while measured`);
    }
    const worst = Math.min(...comments);
    return {
      name: 'tracing',
      seconds: DURATION,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      notes,
      rows,
      ratio,
      target: { 'sql_comment on/off >=': COMMENT_TARGET, 'sql_comment on/off (lowest database)': worst, met: worst >= COMMENT_TARGET },
    };
  } finally {
    await sink.close();
    removeTempDir(dir);
  }
}

// Declared endpoints against hand-written routes (bench/declared-server.mjs: the gateway's app with
// both kinds of route in one process), on SQLite, PostgreSQL and MariaDB:
// - rows: GET /declared/rows (a `rows` endpoint of an endpoint file) against GET /code/rows (a
//   Fastify route with config.resources and RequestQueries, as src/routes/traffic.ts writes them),
//   the same SELECT of 10 rows of the sample table, in one warmed server, the two alternating over
//   2 x BENCH_ROUNDS load phases. Target: the declared endpoint keeps >= 0.95 of the code route's
//   throughput (median over rounds of the pair measured back to back); the server's CPU per request,
//   which other work on the machine moves less than req/s, is reported beside it.
// - stream: one `stream` endpoint sending STREAM_ROWS generated rows per request as psv, csv and
//   ndjson, and the hand-written psv stream route (/code/stream, as src/routes/traffic.ts streamed
//   /<db>-psv before endpoints were declared), formats alternating over rounds on one server; rows/s
//   and MB/s. Target: csv and ndjson at least as fast as that psv of before (rows/s, median of the
//   per-round ratios). Their ratios to the declared psv, which carries the same gains as they do, are
//   reported beside it: ndjson's line is twice the bytes.
import { writeFileSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { serverDbs, sqliteDb } from './lib/databases.mjs';
import { fixedPool, startGateway } from './lib/gateway.mjs';
import { CONNECTIONS, cpuPhase, DURATION, ROUNDS, WARMUP } from './lib/load.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const SERVER = fileURLToPath(new URL('./declared-server.mjs', import.meta.url));
const ROWS_TARGET = 0.95;
const STREAM_TARGET = 1;
/** Rows per streamed answer (env BENCH_STREAM_ROWS); about 45 bytes a row in psv and csv, 90 in ndjson. */
const STREAM_ROWS = Number(process.env.BENCH_STREAM_ROWS ?? 100_000);
/** Concurrent streamed answers. */
const STREAM_CONNECTIONS = 2;
const FORMATS = ['psv', 'csv', 'ndjson'];
/** What curl and fetch() send; a declared endpoint reads it to choose the format, a code route ignores it. */
export const ACCEPT = { accept: '*/*' };

/** The SELECT of /<db>-json over the sample table, with named placeholders, per dialect. */
const ROWS_SQL = {
  sqlite: `SELECT date_hour, port, flows, pkts, bytes FROM tcp_hourly
    WHERE (:port IS NULL OR port = :port) ORDER BY date_hour, port LIMIT :limit`,
  postgres: `SELECT to_char(date_hour, 'YYYY-MM-DD HH24:MI:SS') AS date_hour, port, flows, pkts, bytes FROM tcp_hourly
    WHERE (:port::integer IS NULL OR port = :port) ORDER BY tcp_hourly.date_hour, tcp_hourly.port LIMIT :limit`,
  mysql: `SELECT DATE_FORMAT(date_hour, '%Y-%m-%d %H:%i:%s') AS date_hour, port, flows, pkts, bytes FROM tcp_hourly
    WHERE (:port IS NULL OR port = :port) ORDER BY tcp_hourly.date_hour, tcp_hourly.port LIMIT :limit`,
};

/** :limit rows shaped like the sample's (an hour as text, a port, three counters), made by the database. */
const STREAM_SQL = {
  sqlite: `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :limit)
    SELECT strftime('%Y-%m-%d %H:%M:%S', 1736121600 + (i / 5) * 3600, 'unixepoch') AS date_hour, 22 + i % 5 AS port, i AS flows, i * 13 AS pkts, i * 1499 AS bytes FROM g`,
  postgres: `SELECT to_char(timestamp '2025-01-06' + (i / 5) * interval '1 hour', 'YYYY-MM-DD HH24:MI:SS') AS date_hour, 22 + i % 5 AS port,
    i AS flows, i * 13 AS pkts, i::bigint * 1499 AS bytes FROM generate_series(1, :limit::int) i`,
  mysql: `WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 999), g AS (SELECT a.n * 1000 + b.n + 1 AS i FROM k a CROSS JOIN k b)
    SELECT DATE_FORMAT(DATE_ADD('2025-01-06', INTERVAL i DIV 5 HOUR), '%Y-%m-%d %H:%i:%s') AS date_hour, 22 + i % 5 AS port, i AS flows, i * 13 AS pkts, i * 1499 AS bytes
    FROM g WHERE i <= :limit`,
};

export function endpointFile(dir, db) {
  const file = join(dir, `${db.key}-endpoints.yaml`);
  const limit = (maximum, dflt) => ({ type: 'integer', minimum: 1, maximum, default: dflt });
  writeFileSync(
    file,
    stringify({
      endpoints: [
        {
          method: 'GET',
          path: '/declared/rows',
          resources: [db.resourceId],
          params: { port: { type: 'integer', minimum: 1, maximum: 65535 }, limit: limit(10_000, 10) },
          statements: [{ sql: ROWS_SQL[db.dialect] }],
          result: 'rows',
          formats: ['json', 'csv'],
        },
        {
          method: 'GET',
          path: '/declared/stream',
          resources: [db.resourceId],
          params: { limit: limit(1_000_000, 10) },
          statements: [{ sql: STREAM_SQL[db.dialect] }],
          result: 'stream',
          formats: ['psv', 'csv', 'ndjson', 'json'],
          timeout: 60,
        },
      ],
    }),
  );
  return file;
}

/** The bench server for `db`; `opts`: startGateway's (a wrapper, more env) for the instructions count. */
export function startServer(db, file, label, opts = {}) {
  return startGateway(db, {
    ...opts,
    label,
    script: SERVER,
    // A streamed answer is a query until its last row: allow it a minute.
    resource: fixedPool({ db_default_query_timeout: 60 }),
    config: { endpoints: [file] },
    env: { ...opts.env, BENCH_DECL_SQL: JSON.stringify({ rows: ROWS_SQL[db.dialect], stream: STREAM_SQL[db.dialect] }) },
  });
}

/**
 * One streamed load phase: STREAM_CONNECTIONS clients each reading answers back to back for
 * DURATION seconds, counting rows (lines) as they arrive, so a partly read answer counts too.
 */
async function streamPhase(url) {
  const agent = new Agent({ keepAlive: true, maxSockets: STREAM_CONNECTIONS });
  const deadline = performance.now() + DURATION * 1000;
  let lines = 0;
  let bytes = 0;
  const client = async () => {
    while (performance.now() < deadline) {
      await new Promise((resolve, reject) => {
        const req = httpGet(url, { agent }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`${url}: ${res.statusCode}`));
            return;
          }
          const stop = setTimeout(() => req.destroy(), Math.max(0, deadline - performance.now()));
          res.on('data', (chunk) => {
            bytes += chunk.length;
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
          });
          res.on('end', () => {
            clearTimeout(stop);
            resolve();
          });
          res.on('close', () => {
            clearTimeout(stop);
            resolve();
          });
        });
        req.on('error', (err) => (performance.now() >= deadline ? resolve() : reject(err)));
      });
    }
  };
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: STREAM_CONNECTIONS }, client));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  return { rowsPerSecond: lines / seconds, mbPerSecond: bytes / 1048576 / seconds, bytesPerRow: bytes / Math.max(1, lines) };
}

/** Checks an answer has every row (lines, with the csv header) before it is measured. */
async function checkStream(url, format) {
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  const lines = text.split('\n').length - 1;
  const expected = format === 'csv' ? STREAM_ROWS + 1 : STREAM_ROWS;
  if (res.status !== 200 || lines !== expected) throw new Error(`GET ${url}: ${res.status}, ${lines} lines instead of ${expected}: ${text.slice(0, 200)}`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const round2 = (x) => Number(x.toFixed(2));

async function streams(db, file) {
  const server = await startServer(db, file, `declared server (${db.key}, streams)`);
  try {
    const cases = [
      ...FORMATS.map((f) => ({ name: `declared ${f}`, format: f, path: `/declared/stream?limit=${STREAM_ROWS}&format=${f}` })),
      { name: 'hand-written psv', format: 'psv', path: `/code/stream?limit=${STREAM_ROWS}` },
    ];
    const byRound = cases.map(() => []);
    for (const c of cases) {
      await checkStream(`${server.url}${c.path}`, c.format);
      // Warmed, so the first measured phase does not pay for compilation.
      await streamPhase(`${server.url}${c.path}`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      // A different order each round, so drift in the machine's speed favours no format.
      for (let k = 0; k < cases.length; k++) {
        const i = (k + round) % cases.length;
        byRound[i].push(await streamPhase(`${server.url}${cases[i].path}`));
      }
    }
    const rows = cases.map((c, i) => ({
      db: db.key,
      stream: c.name,
      'rows/s (median)': Math.round(median(byRound[i].map((r) => r.rowsPerSecond))),
      'MB/s (median)': round2(median(byRound[i].map((r) => r.mbPerSecond))),
      'bytes/row': round2(byRound[i][0].bytesPerRow),
      'rows/s by round': byRound[i].map((r) => Math.round(r.rowsPerSecond)).join(' / '),
    }));
    // Per-round ratios of case i to case `base` (0: the declared psv; 3: the hand-written psv route).
    const ratio = (i, base) => {
      const xs = byRound[i].map((r, k) => r.rowsPerSecond / byRound[base][k].rowsPerSecond);
      return { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) };
    };
    return {
      rows,
      beforePsv: { csv: ratio(1, 3), ndjson: ratio(2, 3) },
      declaredPsv: { csv: ratio(1, 0), ndjson: ratio(2, 0) },
    };
  } finally {
    await server.stop();
  }
}

/** The declared endpoint against the code route in one server: phases alternate, both warmed first. */
async function rowsComparison(db, file) {
  const server = await startServer(db, file, `declared server (${db.key})`);
  try {
    const paths = ['/declared/rows', '/code/rows'];
    for (const path of paths) {
      const res = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      if (res.status !== 200 || JSON.parse(body).length !== 10) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 200)}`);
    }
    if (await (await fetch(`${server.url}/declared/rows?port=443`)).text() !== await (await fetch(`${server.url}/code/rows?port=443`)).text()) {
      throw new Error('the declared endpoint and the code route answer different rows');
    }
    for (const path of paths) await cpuPhase(server, path, WARMUP, ACCEPT);
    const phases = [[], []];
    for (let round = 0; round < 2 * ROUNDS; round++) {
      // Which one goes first alternates, so a trend in the machine's speed favours neither.
      for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) phases[i].push(await cpuPhase(server, paths[i], DURATION, ACCEPT));
    }
    const summary = (i) => ({
      db: db.key,
      route: i === 0 ? 'declared GET /declared/rows' : 'code GET /code/rows',
      'req/s (median)': Math.round(median(phases[i].map((p) => p.reqPerSecond))),
      'p99 ms (median)': median(phases[i].map((p) => p.p99)),
      'CPU ms/req (median)': Number(median(phases[i].map((p) => p.cpuUsPerReq / 1000)).toFixed(3)),
      'main thread µs/req (median)': Math.round(median(phases[i].map((p) => p.mainUsPerReq))),
      'req/s by phase': phases[i].map((p) => Math.round(p.reqPerSecond)).join(' / '),
    });
    const paired = (f) => {
      const xs = phases[0].map((p, k) => f(p) / f(phases[1][k]));
      return { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) };
    };
    return { rows: [summary(0), summary(1)], speed: paired((p) => p.reqPerSecond), cpu: paired((p) => p.cpuUsPerReq), main: paired((p) => p.mainUsPerReq) };
  } finally {
    await server.stop();
  }
}

export async function run() {
  const dir = tempDir('wt-bench-declared-');
  try {
    const { ready, skipped } = await serverDbs();
    for (const s of skipped) console.log(`declared: skipping ${s.key}: ${s.reason}`);
    const rows = [];
    const ratios = {};
    const target = {};
    let met = true;
    for (const db of [sqliteDb(join(dir, 'traffic.db')), ...ready]) {
      const file = endpointFile(dir, db);
      const r = await rowsComparison(db, file);
      rows.push(...r.rows);
      ratios[`${db.key}: declared / code rows req/s (median of rounds)`] = r.speed.median;
      ratios[`${db.key}: declared / code rows req/s, lowest-highest round`] = `${r.speed.min}-${r.speed.max}`;
      ratios[`${db.key}: declared / code CPU per request (median of rounds)`] = r.cpu.median;
      ratios[`${db.key}: declared / code main-thread CPU per request (median of rounds)`] = r.main.median;
      target[`${db.key} declared/code`] = r.speed.median;
      met &&= r.speed.median >= ROWS_TARGET;

      const s = await streams(db, file);
      rows.push(...s.rows);
      for (const f of ['csv', 'ndjson']) {
        const before = s.beforePsv[f];
        ratios[`${db.key}: ${f} / hand-written psv stream rows/s (median of rounds)`] = before.median;
        ratios[`${db.key}: ${f} / hand-written psv stream, lowest-highest round`] = `${before.min}-${before.max}`;
        const declared = s.declaredPsv[f];
        ratios[`${db.key}: ${f} / declared psv stream rows/s (info; lowest-highest round)`] = `${declared.median} (${declared.min}-${declared.max})`;
        target[`${db.key} ${f}/psv before`] = before.median;
        met &&= before.median >= STREAM_TARGET;
      }
    }
    return {
      name: 'declared',
      seconds: DURATION,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      streamRows: STREAM_ROWS,
      streamConnections: STREAM_CONNECTIONS,
      notes: [
        'one server process (bench/declared-server.mjs) holds both the declared endpoints and the hand-written routes; every request goes through the same hooks, limiter, pool, query runner, logs (INFO, to /dev/null) and metrics',
        `rows: GET /declared/rows vs GET /code/rows, 10 rows of the sample table, ${CONNECTIONS} connections; one server, each warmed ${WARMUP} s, then ${2 * ROUNDS} phases of ${DURATION} s each, alternating; medians shown`,
        `stream: ${STREAM_ROWS} generated rows per answer, ${STREAM_CONNECTIONS} clients reading whole answers; formats in a rotating order over ${ROUNDS} rounds on one server, medians shown`,
        ...skipped.map((s) => `skipped ${s.key}: ${s.reason}`),
      ],
      rows,
      ratio: ratios,
      target: { 'declared/code rows >=': ROWS_TARGET, 'csv, ndjson / hand-written psv stream >=': STREAM_TARGET, ...target, met },
    };
  } finally {
    removeTempDir(dir);
  }
}

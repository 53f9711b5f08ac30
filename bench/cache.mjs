// The response cache: a cache hit of a declared endpoint (SQLite, 10 rows as JSON) against a bare
// Fastify route answering the same bytes, in the same run: each warmed, then measured in turn for
// BENCH_ROUNDS rounds, the order alternating.
// - target: the bare route is a separate Fastify process with no hooks at all
//   (bench/cache-bare-server.mjs): the hit keeps >= 0.8 of its throughput (median over rounds of
//   the pair measured back to back). The gateway runs as in production: logs at INFO to /dev/null
//   (two records per request), metrics on, every request hook registered.
// - information: a plain Fastify route on the gateway's own app answering the same bytes
//   (bench/cache-server.mjs), which passes every request hook, record and metric (the hit, from the
//   express lane, passes none of the hooks); the same endpoint without a cache: what a hit saves;
//   and the bare process sending the hit's other headers too (correlation id, cache headers,
//   process time).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { sqliteDb } from './lib/databases.mjs';
import { fixedPool, startGateway } from './lib/gateway.mjs';
import { CONNECTIONS, cpuPhase, DURATION, ROUNDS, WARMUP } from './lib/load.mjs';
import { removeTempDir, spawnServer, tempDir } from './lib/processes.mjs';

const BARE = fileURLToPath(new URL('./cache-bare-server.mjs', import.meta.url));
const SERVER = fileURLToPath(new URL('./cache-server.mjs', import.meta.url));
const TARGET = 0.8;
/** What curl and fetch() send (a declared endpoint negotiates its format on it). */
const HEADERS = { accept: '*/*' };
const SQL = 'SELECT date_hour, port, flows, pkts, bytes FROM tcp_hourly WHERE (:port IS NULL OR port = :port) ORDER BY date_hour, port LIMIT :limit';

function endpointFile(dir) {
  const file = join(dir, 'cache-endpoints.yaml');
  const endpoint = (path, cache) => ({
    method: 'GET',
    path,
    resources: ['sqlite_traffic'],
    params: { port: { type: 'integer', minimum: 1, maximum: 65535 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 10 } },
    statements: [{ sql: SQL }],
    formats: ['json', 'csv'],
    ...(cache ? { cache: { ttl: 3600 } } : {}),
  });
  writeFileSync(file, stringify({ endpoints: [endpoint('/cached/rows', true), endpoint('/uncached/rows', false)] }));
  return file;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const round2 = (x) => Number(x.toFixed(2));

export async function run() {
  const dir = tempDir('wt-bench-cache-');
  let gateway;
  let bare;
  try {
    const db = sqliteDb(join(dir, 'traffic.db'));
    const bodyFile = join(dir, 'body');
    gateway = await startGateway(db, { label: 'gateway (cache)', script: SERVER, resource: fixedPool(), config: { endpoints: [endpointFile(dir)] }, env: { BENCH_CACHE_BODY: bodyFile } });
    const first = await fetch(`${gateway.url}/cached/rows`, { headers: HEADERS });
    const body = Buffer.from(await first.arrayBuffer());
    if (first.status !== 200 || JSON.parse(body.toString()).length !== 10) throw new Error(`GET /cached/rows: ${first.status} ${body.toString().slice(0, 200)}`);
    const hit = await fetch(`${gateway.url}/cached/rows`, { headers: HEADERS });
    if (!Buffer.from(await hit.arrayBuffer()).equals(body) || hit.headers.get('etag') !== first.headers.get('etag')) throw new Error('the second answer is not the cached one');
    writeFileSync(bodyFile, body);
    const sameApp = await fetch(`${gateway.url}/bare/rows`);
    if (!Buffer.from(await sameApp.arrayBuffer()).equals(body)) throw new Error('the route on the gateway\'s app answers other bytes');
    bare = await spawnServer(BARE, { label: 'bare Fastify (same bytes)', env: { BENCH_CACHE_BODY: bodyFile, BENCH_CACHE_TYPE: first.headers.get('content-type') } });
    const bareBody = Buffer.from(await (await fetch(`${bare.url}/rows`)).arrayBuffer());
    if (!bareBody.equals(body)) throw new Error('the bare server answers other bytes');
    const withHeaders = await fetch(`${bare.url}/rows-with-headers`);
    if (!Buffer.from(await withHeaders.arrayBuffer()).equals(body)) throw new Error('the bare server\'s route with headers answers other bytes');
    const names = (res) => [...res.headers.keys()].filter((k) => !['date', 'connection', 'keep-alive'].includes(k)).sort().join(' ');
    if (names(withHeaders) !== names(hit)) throw new Error(`the bare route with headers sends ${names(withHeaders)}, a hit ${names(hit)}`);

    const cases = [
      { name: 'gateway, cache hit GET /cached/rows', server: gateway, path: '/cached/rows' },
      { name: 'bare Fastify process, same bytes GET /rows', server: bare, path: '/rows' },
      { name: 'Fastify route on the gateway app, same bytes (info)', server: gateway, path: '/bare/rows' },
      { name: 'gateway, same endpoint without cache (info)', server: gateway, path: '/uncached/rows' },
      { name: 'bare Fastify process, same bytes and the hit\'s other headers (info)', server: bare, path: '/rows-with-headers' },
    ];
    for (const c of cases) await cpuPhase(c.server, c.path, WARMUP, HEADERS);
    const phases = cases.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      // The hit and the bare process of the target back to back, which goes first alternating; the others after.
      for (const i of r % 2 === 0 ? [0, 1, 2, 3, 4] : [1, 0, 2, 3, 4]) phases[i].push(await cpuPhase(cases[i].server, cases[i].path, DURATION, HEADERS));
    }
    const rows = cases.map((c, i) => ({
      server: c.name,
      'req/s (median)': Math.round(median(phases[i].map((p) => p.reqPerSecond))),
      'p99 ms (median)': median(phases[i].map((p) => p.p99)),
      'CPU µs/req (median)': Math.round(median(phases[i].map((p) => p.cpuUsPerReq))),
      'main thread µs/req (median)': Math.round(median(phases[i].map((p) => p.mainUsPerReq))),
      'req/s by round': phases[i].map((p) => Math.round(p.reqPerSecond)).join(' / '),
    }));
    const paired = (a, b, f = (p) => p.reqPerSecond) => {
      const xs = phases[a].map((p, k) => f(p) / f(phases[b][k]));
      return { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) };
    };
    const hitOverProcess = paired(0, 1);
    const hitOverRoute = paired(0, 2);
    const hitOverUncached = paired(0, 3);
    const hitOverHeaders = paired(0, 4);
    // CPU per request moves less with other work on the machine than req/s does.
    const processCpuOverHit = paired(1, 0, (p) => p.mainUsPerReq);
    return {
      name: 'cache',
      seconds: DURATION,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      notes: [
        `a ${body.length}-byte answer (10 rows of the sample table as JSON); the gateway logs at INFO to /dev/null (request and request-stats records per request) and keeps its metrics, as in production`,
        'the gateway is served as src/gateway.ts serves it (its shared server): a hit of a URL and Accept seen before, anonymous with no rule, authentication or rate limit applying, is answered by the express lane before Fastify, with the same headers, records and metrics; no slot or connection is taken',
        'the target compares with a separate bare Fastify process, which leaves out all of the gateway\'s per-request work (records, metrics, hooks, the correlation id and cache headers); the route on the gateway\'s own app shows the cache\'s own cost',
      ],
      rows,
      ratio: {
        'cache hit / bare Fastify process req/s (median of rounds)': hitOverProcess.median,
        'cache hit / bare Fastify process, lowest-highest round': `${hitOverProcess.min}-${hitOverProcess.max}`,
        'bare process / cache hit main-thread CPU per request (median of rounds)': processCpuOverHit.median,
        'cache hit / Fastify route on the gateway app req/s (median of rounds, info)': hitOverRoute.median,
        'cache hit / uncached req/s (median of rounds, info)': hitOverUncached.median,
        'cache hit / bare process sending the hit\'s headers too req/s (median of rounds, info)': hitOverHeaders.median,
      },
      target: { 'hit/bare process >=': TARGET, 'hit/bare process': hitOverProcess.median, met: hitOverProcess.median >= TARGET },
    };
  } finally {
    await gateway?.stop();
    await bare?.stop();
    removeTempDir(dir);
  }
}

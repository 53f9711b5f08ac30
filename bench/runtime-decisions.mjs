// Re-measures, on the Node that runs it, two choices made on Node 20 (see DESIGN.md and
// bench/README.md): request context passed explicitly instead of through AsyncLocalStorage, and the
// JSON routes' native JSON.stringify instead of fast-json-stringify. Each is a pair of loops in one
// process, alternated over rounds so drift hits both sides; the figures are median ratios of time,
// garbage collection included (the cost that decided against fast-json-stringify on Node 20 was
// the garbage its code made, paid in collections), and the GC pause time per operation alone.
// (The third, --no-parallel-scavenge, is the "main-thread scavenge" row of the http module.)
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { GCProfiler } from 'node:v8';

const require = createRequire(import.meta.url);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REQUESTS = 200_000;
const SERIALIZE = 500_000;

/** A request's shape of asynchronous work: a few awaited steps, as hooks, acquire, query and reply are. */
async function request(ctx, steps) {
  let n = 0;
  for (let i = 0; i < steps; i++) n += await Promise.resolve(ctx.id + i);
  return n;
}

/** Runs `fn`, returning [ns per op, GC pause ns per op]. */
async function measure(ops, fn) {
  const gc = new GCProfiler();
  gc.start();
  const started = performance.now();
  await fn();
  const ns = ((performance.now() - started) * 1e6) / ops;
  const pauses = gc.stop().statistics.reduce((sum, s) => sum + s.cost, 0); // microseconds
  return [ns, (pauses * 1000) / ops];
}

async function requests(als) {
  const batch = [];
  for (let i = 0; i < REQUESTS; i++) {
    const ctx = { id: i };
    batch.push(als ? als.run(ctx, () => request(als.getStore(), 8)) : request(ctx, 8));
    if (batch.length === 100) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

const ROWS = Array.from({ length: 10 }, (_, i) => ({ date_hour: 1736121600 + i * 3600, port: 443, flows: 3000 + i, pkts: 90000 + i, bytes: 81000000 + i }));
const ROWS_SCHEMA = {
  type: 'array',
  items: {
    type: 'object',
    properties: { date_hour: { type: 'integer' }, port: { type: 'integer' }, flows: { type: ['integer', 'string'] }, pkts: { type: ['integer', 'string'] }, bytes: { type: ['integer', 'string'] } },
  },
};

function serialize(fn) {
  let bytes = 0;
  for (let i = 0; i < SERIALIZE; i++) bytes += fn(ROWS).length;
  if (bytes === 0) throw new Error('nothing serialized');
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const als = new AsyncLocalStorage();
  const fjs = require('fast-json-stringify')(ROWS_SCHEMA);
  const cases = {
    explicit: () => measure(REQUESTS, () => requests(undefined)),
    als: () => measure(REQUESTS, () => requests(als)),
    native: () => measure(SERIALIZE, async () => serialize((rows) => JSON.stringify(rows))),
    fjs: () => measure(SERIALIZE, async () => serialize(fjs)),
  };
  for (const c of Object.values(cases)) await c(); // warm-up
  const got = { explicit: [], als: [], native: [], fjs: [] };
  for (let r = 0; r < ROUNDS; r++) for (const [name, c] of Object.entries(cases)) got[name].push(await c());
  const med = (name, i) => median(got[name].map((m) => m[i]));
  const ratio = (a, b) => Number(median(got[a].map((m, i) => m[0] / got[b][i][0])).toFixed(2));
  const row = (label, name) => ({ case: label, 'ns/op': Math.round(med(name, 0)), 'GC pause ns/op': Math.round(med(name, 1)) });
  const v = process.versions.node;
  return {
    name: 'runtime-decisions',
    rows: [
      row('request context passed explicitly', 'explicit'),
      row('request context in AsyncLocalStorage', 'als'),
      row('10 rows, native JSON.stringify', 'native'),
      row('10 rows, fast-json-stringify', 'fjs'),
    ],
    ratio: {
      [`AsyncLocalStorage / explicit (Node ${v})`]: ratio('als', 'explicit'),
      [`fast-json-stringify / JSON.stringify (Node ${v})`]: ratio('fjs', 'native'),
    },
    notes: [`${ROUNDS} alternated rounds; ${REQUESTS} simulated requests of 8 awaited steps, ${SERIALIZE} serializations of 10 rows; a micro-benchmark: the http module decides end to end`],
  };
}

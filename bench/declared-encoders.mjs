// Micro-benchmark of the declared endpoints' row encoders (dist/endpoints/formats.js), standalone:
// `npm run build && node bench/declared-encoders.mjs [rows] [repeats] [passes]`; env
// BENCH_DIST=<dir>/dist measures another build. Main-thread CPU time per row
// (process.threadCpuUsage(): V8's helper threads left out, as the `declared` module reports the
// main thread; it moves in scheduler ticks, 4 ms here, so each measured run makes `passes` passes
// over the rows to last a few hundred ms), the lowest of `repeats` runs, for rows shaped like the `declared` stream's (an hour as text, a port and three counters,
// made by JSON.parse as the SQLite worker's batches are). Three figures per format:
// - encode: the row encoder alone (encodeAll over slices of 256 rows held in memory);
// - generator: encodeRows over an async source handing out one row per promise, as a stream
//   endpoint runs it;
// - to bytes: that generator through Readable.from into a sink, as the reply turns its chunks to
//   UTF-8 (the HTTP write itself and the client are not included).
// On a shared machine CPU time of a single-threaded loop moves far less than wall time; the lowest
// of several runs leaves out most of what other work adds.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';

const dist = process.env.BENCH_DIST ? pathToFileURL(`${process.env.BENCH_DIST}/`).href : new URL('../dist/', import.meta.url).href;
const { encodeAll, encodeRows } = await import(new URL('endpoints/formats.js', dist).href);

const ROWS = Number(process.argv[2] ?? 200_000);
const REPEATS = Number(process.argv[3] ?? 3);
const PASSES = Number(process.argv[4] ?? 10);
const FORMATS = ['psv', 'csv', 'ndjson'];

/** Rows as the bench's stream statement makes them, parsed from JSON text in batches of 500. */
function makeRows(n) {
  const out = [];
  for (let b = 0; b < n; b += 500) {
    const batch = [];
    for (let i = b + 1; i <= Math.min(n, b + 500); i++) {
      const h = new Date(Date.UTC(2025, 0, 6) + Math.floor(i / 5) * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
      batch.push({ date_hour: h, port: 22 + (i % 5), flows: i, pkts: i * 13, bytes: i * 1499 });
    }
    out.push(...JSON.parse(JSON.stringify(batch)));
  }
  return out;
}

/** An async row source with a promise per row, as src/db/row-stream.ts hands out its batches. */
function source(rows) {
  let i = 0;
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => (i < rows.length ? { done: false, value: rows[i++] } : { done: true, value: undefined }),
      return: async () => ({ done: true, value: undefined }),
    }),
  };
}

/** CPU time of this process's main thread so far, in ns (V8's GC helper threads excluded; getrusage, exact to the µs). */
function mainThreadNs() {
  const u = process.threadCpuUsage();
  return (u.user + u.system) * 1000;
}

const cases = {
  encode: async (rows, f) => {
    // In slices of about a chunk's rows: one string of every row would measure the heap, not the encoder.
    let chars = 0;
    for (let i = 0; i < rows.length; i += 256) chars += encodeAll(rows.slice(i, i + 256), f).length;
    return chars;
  },
  generator: async (rows, f) => {
    let chars = 0;
    for await (const chunk of encodeRows(source(rows), f)) chars += chunk.length;
    return chars;
  },
  'to bytes': async (rows, f) => {
    let bytes = 0;
    const sink = new Writable({
      write(chunk, _enc, done) {
        bytes += chunk.length;
        done();
      },
    });
    await pipeline(Readable.from(encodeRows(source(rows), f), { objectMode: false }), sink);
    return bytes;
  },
};

const rows = makeRows(ROWS);
const best = {};
for (let r = 0; r < REPEATS; r++) {
  for (const [name, run] of Object.entries(cases)) {
    for (const f of FORMATS) {
      const start = mainThreadNs();
      for (let p = 0; p < PASSES; p++) await run(rows, f);
      const ns = (mainThreadNs() - start) / (ROWS * PASSES);
      const key = `${name}|${f}`;
      best[key] = Math.min(best[key] ?? Infinity, ns);
    }
  }
}
console.log(`node ${process.version}, ${ROWS} rows x ${PASSES} passes, lowest of ${REPEATS} runs, main-thread CPU ns per row`);
console.log(['', ...FORMATS].map((s) => s.padStart(10)).join(''));
for (const name of Object.keys(cases)) {
  console.log([name.padStart(10), ...FORMATS.map((f) => best[`${name}|${f}`].toFixed(0).padStart(10))].join(''));
}

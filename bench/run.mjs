// The one benchmark entry (`npm run bench` builds first). Runs every benchmark module in turn but
// the optional ones, or the ones named on the command line (`node bench/run.mjs http logging`), prints a table per
// benchmark and a summary of ratios and targets, and writes bench/results/bench-<time>.json and
// bench/results/latest.json with the machine it ran on. Every child process is killed and every
// temp directory removed at the end, also after a failure or Ctrl-C.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { cleanUp } from './lib/processes.mjs';

// Seconds per load phase: BENCH_DURATION, also for the cluster module (which reads BENCH_SECONDS).
process.env.BENCH_DURATION ??= '5';
process.env.BENCH_SECONDS ??= process.env.BENCH_DURATION;

/** name -> module path; run in this order (the logging micro-benchmark redirects this process' log, so last). */
const MODULES = {
  http: './http.mjs',
  instructions: './instructions.mjs',
  instrumentation: './instrumentation.mjs',
  auth: './auth.mjs',
  cluster: './cluster-throughput.mjs',
  'metrics-scrape': './metrics-scrape.mjs',
  'cold-burst': './cold-burst.mjs',
  'sqlite-limit': './sqlite-limit.mjs',
  breaker: './breaker.mjs',
  'runtime-decisions': './runtime-decisions.mjs',
  cache: './cache.mjs',
  'global-limit': './global-limit.mjs',
  declared: './declared.mjs',
  'declared-instructions': './declared-instructions.mjs',
  tracing: './tracing.mjs',
  logging: './logging.mjs',
};

process.on('exit', cleanUp);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping benchmark processes`);
    cleanUp();
    process.exit(130);
  });
}

/** Run only when named: instruction counting runs every server under valgrind, ~50 times slower. */
const OPTIONAL = new Set(['instructions', 'declared-instructions']);

function selected(args) {
  if (args.length === 0) return Object.keys(MODULES).filter((n) => !OPTIONAL.has(n));
  const names = args.map((a) => Object.keys(MODULES).find((n) => n === a || n.startsWith(a)));
  const unknown = args.filter((_, i) => names[i] === undefined);
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${Object.keys(MODULES).join(', ')}`);
    process.exit(2);
  }
  return [...new Set(names)];
}

function machine() {
  const cpus = os.cpus();
  let commit;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = undefined;
  }
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    totalMemMB: Math.round(os.totalmem() / 1048576),
    node: process.version,
    platform: `${process.platform} ${os.release()} ${process.arch}`,
    loadavgAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    commit,
  };
}

/** Ratio and target lines of every result, for the summary table. */
function summaryRows(results) {
  const out = [];
  for (const r of results) {
    if (r.error) {
      out.push({ benchmark: r.name, figure: 'FAILED', value: r.error.split('\n')[0] });
      continue;
    }
    for (const [figure, value] of Object.entries(r.ratio ?? {})) out.push({ benchmark: r.name, figure, value });
    if (r.target) {
      const entries = Object.entries(r.target).filter(([k]) => k !== 'met');
      const threshold = entries.filter(([k]) => /[<>]=?$/.test(k));
      const measured = entries.filter(([k]) => !/[<>]=?$/.test(k));
      out.push({
        benchmark: r.name,
        figure: `target: ${threshold.map(([k, v]) => `${k} ${v}`).join(', ')}`,
        value: measured.map(([k, v]) => `${k} ${v}`).join(', ') || '-',
        met: r.target.met ? 'yes' : 'NO',
      });
    }
  }
  return out;
}

const names = selected(process.argv.slice(2));
const info = machine();
console.log(`WatchTower benchmarks: ${names.join(', ')}; ${info.cpus} CPUs, ${info.totalMemMB} MB, Node ${info.node}; ${process.env.BENCH_DURATION} s per load phase\n`);

const results = [];
for (const name of names) {
  const started = Date.now();
  console.log(`--- ${name}`);
  try {
    const mod = await import(MODULES[name]);
    const result = await mod.run();
    result.elapsedSeconds = Math.round((Date.now() - started) / 1000);
    results.push(result);
    console.table(result.rows);
    for (const note of result.notes ?? []) console.log(`  note: ${note}`);
  } catch (err) {
    console.error(`${name} failed: ${err.stack ?? err}`);
    results.push({ name, error: String(err.message ?? err) });
  } finally {
    cleanUp(); // nothing a finished benchmark started may outlive it
  }
}

console.log('\n--- summary');
console.log(`load average at start ${info.loadavgAtStart.join(' ')}, now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine skews every figure)`);
console.table(summaryRows(results));

const at = new Date().toISOString();
info.loadavgAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));
const doc = { at, machine: info, settings: { durationSeconds: Number(process.env.BENCH_DURATION) }, results };
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = `bench-${at.replace(/:/g, '-')}.json`;
const json = JSON.stringify(doc, null, 2) + '\n';
writeFileSync(new URL(file, dir), json);
writeFileSync(new URL('latest.json', dir), json);
console.log(`\nresults written to bench/results/${file} and bench/results/latest.json`);
process.exitCode = results.some((r) => r.error) ? 1 : 0;

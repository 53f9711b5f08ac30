// Log line throughput: formatting a request-stats-like record through pino and our logfmt
// serializer, written to /dev/null the way the gateway writes stdout (a LineBatcher in front of
// pino's synchronous destination). Baseline: plain pino JSON with the same fields to pino's
// asynchronous destination, measured in the same run.
import pino from 'pino';
import { getLogger, setLogDestination, setLogLevel, flushLogs } from '../dist/log/index.js';
import { LineBatcher } from '../dist/log/line-batcher.js';

const N = Number(process.env.BENCH_LOG_LINES ?? 300_000);

function measure(fn) {
  for (let i = 0; i < 20_000; i++) fn(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { lines: N, seconds, linesPerSecond: Math.round(N / seconds) };
}

export async function run() {
  const batcher = new LineBatcher(pino.destination({ dest: '/dev/null', sync: true, contentMode: 'buffer' }), 16384, 200);
  setLogDestination(batcher);
  setLogLevel('INFO');
  const log = getLogger('bench.ts');
  const fields = { client: '127.0.0.1', queries: 1, status_code: 200, content_length: 668, duration: 0.0031, cid: 'fe09bfc9cae6' };
  const logfmt = measure(() => log.info('request-stats', 'GET /sqlite-json results', fields));
  const json = pino({ base: null, timestamp: false }, pino.destination({ dest: '/dev/null', sync: false }));
  const baseline = measure(() => json.info({ tag: 'request-stats', ...fields }, 'GET /sqlite-json results'));
  const disabled = measure(() => log.debug('request-stats', 'GET /sqlite-json results', fields));
  flushLogs();
  batcher.close();
  json.flush();
  return {
    name: 'logging',
    rows: [
      { case: 'logfmt line (ours)', 'lines/s': logfmt.linesPerSecond },
      { case: 'pino JSON line (baseline)', 'lines/s': baseline.linesPerSecond },
      { case: 'disabled level (ours)', 'lines/s': disabled.linesPerSecond },
    ],
    ratio: { 'logfmt/pino-json': Number((logfmt.linesPerSecond / baseline.linesPerSecond).toFixed(2)) },
    target: { 'logfmt lines/s >=': 100_000, met: logfmt.linesPerSecond >= 100_000 },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run();
  console.table(result.rows);
  console.log(result.ratio, result.target);
}

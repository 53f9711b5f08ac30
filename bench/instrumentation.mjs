// Per-request cost of the gateway's logging on /sqlite-json: the same gateway with logging at
// INFO (request, request-stats and query-stats lines per request) vs logging at ERROR with
// queries_log_type none (no line per request). Metrics stay on in both: the config has no switch
// for them, so their cost is not separated here. Phases alternate (on, off, on, off, ...) so
// drift on a busy machine affects both sides alike; each row shows its best round, and the figures
// are medians over rounds of the pair measured back to back (see pairedRatio).
import { join } from 'node:path';
import { sqliteDb } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';
import { CONNECTIONS, DURATION, ROUNDS, compareRounds, pairedRatio, pairedSummary } from './lib/load.mjs';

const CASES = [
  { case: 'metrics on, logging INFO (queries_log_type stats)', config: { log_level: 'INFO', queries_log_type: 'stats' } },
  { case: 'metrics on, logging ERROR (queries_log_type none)', config: { log_level: 'ERROR', queries_log_type: 'none' } },
];

export async function run() {
  const dir = tempDir('wt-bench-instr-');
  try {
    const db = sqliteDb(join(dir, 'traffic.db'));
    const rows = await compareRounds(
      CASES.map((c) => ({ label: { case: c.case }, path: db.route, start: () => startGateway(db, { label: `gateway (${c.case})`, config: c.config }) })),
    );
    const [on, off] = rows;
    const speed = pairedRatio(on, off);
    const cpu = pairedSummary(on, off, (x, y) => x['CPU ms/req'] - y['CPU ms/req'], 3);
    return {
      name: 'instrumentation',
      seconds: DURATION,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      notes: ['metrics cannot be switched off by config, so only logging on vs off is measured; metrics are on in both cases'],
      rows,
      ratio: {
        'logging INFO / logging off (req/s, median of rounds)': speed.median,
        'logging INFO / logging off, lowest-highest round': `${speed.min}-${speed.max}`,
        'logging cost, CPU ms/req (INFO - off, median of rounds)': cpu.median,
      },
    };
  } finally {
    removeTempDir(dir);
  }
}

// Per-request cost of the gateway's logging on /sqlite-json: the same gateway with logging at
// INFO (request, request-stats and query-stats lines per request) vs logging at ERROR with
// queries_log_type none (no line per request). Metrics stay on in both: the config has no switch
// for them, so their cost is not separated here. Phases alternate (on, off, on, off, ...) so
// drift on a busy machine affects both sides alike; each row shows its best round.
import { join } from 'node:path';
import { sqliteDb } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';
import { CONNECTIONS, DURATION, ROUNDS, compareRounds } from './lib/load.mjs';

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
    return {
      name: 'instrumentation',
      seconds: DURATION,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      notes: ['metrics cannot be switched off by config, so only logging on vs off is measured; metrics are on in both cases'],
      rows,
      ratio: {
        'logging INFO / logging off (req/s)': Number((on['req/s'] / off['req/s']).toFixed(2)),
        'logging cost, CPU ms/req (INFO - off)': Number((on['CPU ms/req'] - off['CPU ms/req']).toFixed(3)),
      },
    };
  } finally {
    removeTempDir(dir);
  }
}

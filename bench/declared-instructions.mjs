// Optional (only when named: `node bench/run.mjs declared-instructions`, about 20 minutes; needs
// valgrind): instructions per request on the main thread of bench/declared-server.mjs for the
// declared rows endpoint and the hand-written code route of the `declared` module, counted by
// callgrind as the `instructions` module counts them. On a machine shared with other work, req/s
// of two routes this close moves by more than the difference between them; the count repeats
// to within a few per cent.
import { join } from 'node:path';
import { ACCEPT, endpointFile, startServer } from './declared.mjs';
import { MAIN, count, missingTool } from './instructions.mjs';
import { serverDbs, sqliteDb } from './lib/databases.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

/**
 * Requests before counting (env BENCH_DECLARED_CG_WARMUP). After the instructions module's 16,000
 * the declared route was still being compiled in some counted windows, which then counted up to 30%
 * more; 40,000 nearly always reach the steady state. A row whose other-threads count is many times
 * its pair's was counted mid-compilation: run it again.
 */
const WARMUP = Number(process.env.BENCH_DECLARED_CG_WARMUP ?? 40_000);

export async function run() {
  const notes = [
    `the instructions module's method (callgrind, main thread) on the two routes of the declared module, each in a server of its own, counted after ${WARMUP} requests, Accept: */*`,
  ];
  const missing = missingTool();
  if (missing) return { name: 'declared-instructions', notes: [`skipped: ${missing}`, ...notes], rows: [] };
  const dir = tempDir('wt-bench-declared-cg-');
  try {
    const { ready, skipped } = await serverDbs();
    for (const s of skipped) notes.push(`skipped ${s.key}: ${s.reason}`);
    const rows = [];
    const ratio = {};
    for (const db of [sqliteDb(join(dir, 'traffic.db')), ...ready]) {
      const file = endpointFile(dir, db);
      const start = (o) => startServer(db, file, `declared server (${db.key}, callgrind)`, o);
      const declared = await count({ db: db.key, server: 'declared GET /declared/rows' }, start, '/declared/rows', dir, { headers: ACCEPT, warmup: WARMUP });
      const code = await count({ db: db.key, server: 'code GET /code/rows' }, start, '/code/rows', dir, { headers: ACCEPT, warmup: WARMUP });
      rows.push(declared, code);
      ratio[`${db.key}: declared / code instructions per request, main thread`] = Number((declared[MAIN] / code[MAIN]).toFixed(3));
    }
    return { name: 'declared-instructions', notes, rows, ratio };
  } finally {
    removeTempDir(dir);
  }
}

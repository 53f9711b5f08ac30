// Gateway vs bare servers on the JSON data routes (/sqlite-json, /pg-json, /mysql-json), each
// server a child process loaded by autocannon over loopback in the same run. The target (gateway
// >= 80% of bare throughput) applies to the bare server using the same driver layer; the bare
// server using the database's own client is reported for information.
import { join } from 'node:path';
import { startBare } from './lib/bare.mjs';
import { serverDbs, sqliteDb } from './lib/databases.mjs';
import { GATEWAY_NODE_ARGS, POOL, startGateway } from './lib/gateway.mjs';
import { CONNECTIONS, DURATION, ROUNDS, WARMUP, compareRounds, pairedRatio } from './lib/load.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';

const TARGET = 0.8;

const bare = (db, driver) => () => startBare(db, driver);

const RAW_CLIENT = { sqlite: 'better-sqlite3 in-process', postgres: 'pg.Pool', mysql: 'mysql2 pool' };

/** Gateway, bare with our driver layer, bare with the raw client (and, for SQLite, the shipped pool default). */
function cases(db) {
  const c = (server, start) => ({ label: { db: db.key, server }, path: db.route, start });
  const list = [
    c('gateway', () => startGateway(db, { label: `gateway (${db.key})` })),
    c('bare, same driver layer', bare(db, 'layer')),
    c(`bare, raw ${RAW_CLIENT[db.dialect]}`, bare(db, 'raw')),
  ];
  // For information: young-generation collections on the main thread instead of V8's helper threads
  // (the gateway set this until re-measured; see bench/README.md, "Node 24").
  list.push(c('gateway, main-thread scavenge', () => startGateway(db, { label: `gateway (${db.key}, main-thread scavenge)`, nodeArgs: [...GATEWAY_NODE_ARGS, '--no-parallel-scavenge'] })));
  if (db.key === 'sqlite') {
    // For information: the shipped default retires a connection (a worker process) every 100 queries.
    const resource = { db_min_conn_pool_size: POOL, db_max_conn_pool_size: POOL };
    list.push(c('gateway, default db_conn_max_uses=100', () => startGateway(db, { label: 'gateway (sqlite, default max uses)', resource })));
  }
  return list;
}

const ratio = (a, b) => Number((a['req/s'] / b['req/s']).toFixed(2));

export async function run() {
  const dir = tempDir('wt-bench-http-');
  try {
    const { ready, skipped } = await serverDbs();
    for (const s of skipped) console.log(`http: skipping ${s.key}: ${s.reason}`);
    const rows = [];
    const ratios = {};
    const perDb = {};
    for (const db of [sqliteDb(join(dir, 'traffic.db')), ...ready]) {
      const [gw, layer, raw, ...extra] = await compareRounds(cases(db));
      rows.push(gw, layer, raw, ...extra);
      // The target is judged on the median of the per-round ratios (see pairedRatio).
      const paired = pairedRatio(gw, layer);
      perDb[db.key] = paired.median;
      ratios[`${db.key}: gateway / bare same driver (median of rounds)`] = paired.median;
      ratios[`${db.key}: gateway / bare same driver, lowest-highest round`] = `${paired.min}-${paired.max}`;
      ratios[`${db.key}: gateway / bare same driver, best round of each (info)`] = ratio(gw, layer);
      ratios[`${db.key}: gateway / bare raw client (info)`] = ratio(gw, raw);
      for (const e of extra) ratios[`${db.key}: ${e.server} / bare same driver (info)`] = ratio(e, layer);
    }
    const worst = Math.min(...Object.values(perDb));
    return {
      name: 'http',
      seconds: DURATION,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      pool: POOL,
      notes: [
        `pool of ${POOL} connections on every server (gateway: min = max, never retired during the run unless the row says so)`,
        'peak RSS MB sums the server process and its children (SQLite: one child process per connection); database servers are not counted',
        `each server measured ${ROUNDS} time(s), alternating, each time freshly started and loaded for ${WARMUP} s before the measured ${DURATION} s; a row shows its best round (other load only slows a server down)`,
        'the target uses, per database, the median over rounds of gateway req/s / bare req/s, the two measured back to back in each round',
        'CPU ms/req: user + system CPU of the server process tree per request; main thread µs/req: of the server process\'s main thread alone (where its own code runs), user + system',
        ...skipped.map((s) => `skipped ${s.key}: ${s.reason}`),
      ],
      rows,
      ratio: ratios,
      target: { 'gateway / bare same driver >=': TARGET, ...perDb, met: worst >= TARGET },
    };
  } finally {
    removeTempDir(dir);
  }
}

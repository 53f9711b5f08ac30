#!/usr/bin/env node
// Creates the sample table tcp_hourly (5040 deterministic rows) in every database named by the
// environment, idempotently: SQLITE_PATH (default data/traffic.db), PG_URL, MYSQL_URL
// (e.g. postgres://user:pass@host:5432/watchtower, mysql://user:pass@host:3306/watchtower).
// Missing databases are created. Runs over the built code: `npm run build` first.
import { createConnector, targetFromUrl } from '../dist/db/index.js';
import { ensureDatabase, ensureSqliteSample, SAMPLE_TABLE, seedSampleData } from '../dist/db/sample-data.js';

const sqlitePath = process.env.SQLITE_PATH ?? 'data/traffic.db';
const created = ensureSqliteSample(sqlitePath);
console.log(`sqlite ${sqlitePath}: ${created ? 'created' : 'already there'}`);

let failed = false;
for (const [name, url] of [['postgres', process.env.PG_URL], ['mysql', process.env.MYSQL_URL]]) {
  if (!url) continue;
  const target = targetFromUrl(url);
  const where = `${target.db_host}:${target.db_port || 'default'}/${target.db_name}`;
  try {
    await ensureDatabase(target, 10);
    const conn = await createConnector('sample-data', target).connect(0, 10);
    try {
      const inserted = await seedSampleData(conn, { timeoutSeconds: 120 });
      console.log(`${name} ${where}: ${SAMPLE_TABLE} ready, ${inserted} rows inserted`);
    } finally {
      await conn.close();
    }
  } catch (err) {
    failed = true;
    console.error(`${name} ${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
process.exitCode = failed ? 1 : 0;

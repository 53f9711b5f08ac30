// The databases the load benchmarks query: the sample SQLite file in a temp directory, and the
// sample data in a `wt_bench` database on the local PostgreSQL and MariaDB/MySQL servers (created
// and seeded idempotently). A server that cannot be reached is skipped with the reason.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { targetFromUrl, createConnector } from '../../dist/db/index.js';
import { ensureDatabase, ensureSqliteSample, seedSampleData } from '../../dist/db/sample-data.js';

/**
 * @typedef {{ key: string, resourceId: string, route: string, dialect: string, target: object }} BenchDb
 */

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** The SQLite sample database at `path` (created when missing). @returns {BenchDb} */
export function sqliteDb(path) {
  ensureSqliteSample(path);
  return { key: 'sqlite', resourceId: 'sqlite_traffic', route: '/sqlite-json', dialect: 'sqlite', target: targetFromUrl(`sqlite:${path}`) };
}

const SERVERS = [
  { key: 'pg', resourceId: 'pg_traffic', route: '/pg-json', dialect: 'postgres', env: 'BENCH_PG_URL', url: 'postgres://postgres@127.0.0.1:5432/wt_bench' },
  { key: 'mysql', resourceId: 'mysql_traffic', route: '/mysql-json', dialect: 'mysql', env: 'BENCH_MYSQL_URL', url: 'mysql://root@127.0.0.1:3306/wt_bench' },
];

/**
 * Creates and seeds each server database. Returns those ready to use and, for the others, why not.
 * @returns {Promise<{ ready: BenchDb[], skipped: { key: string, reason: string }[] }>}
 */
export async function serverDbs() {
  const ready = [];
  const skipped = [];
  for (const s of SERVERS) {
    const target = targetFromUrl(process.env[s.env] ?? s.url);
    if (!LOOPBACK.has(target.db_host)) {
      skipped.push({ key: s.key, reason: `${s.env} points at ${target.db_host}: benchmarks only talk to loopback` });
      continue;
    }
    try {
      await ensureDatabase(target, 5);
      const conn = await createConnector('bench-setup', target).connect(0, 5);
      try {
        await seedSampleData(conn);
      } finally {
        await conn.close();
      }
      const { key, resourceId, route, dialect } = s;
      ready.push({ key, resourceId, route, dialect, target });
    } catch (err) {
      skipped.push({ key: s.key, reason: `${target.db_type} at ${target.db_host}:${target.db_port} unreachable or unusable: ${err.message}` });
    }
  }
  return { ready, skipped };
}

/** The `secure:` entry of a gateway config for `db`, and the env that carries its password. */
export function secureEntry(db) {
  const { db_password, ...rest } = db.target;
  const entry = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== '' && v !== 0));
  return { entry, env: db_password ? { [`${db.resourceId}__db_password`]: db_password } : {} };
}

/** The sqlite_traffic settings the gateway ships with (config/watchtower.yaml), as a new user runs it. */
export function shippedSqliteResource() {
  return parse(readFileSync(new URL('../../config/watchtower.yaml', import.meta.url), 'utf8')).resources.sqlite_traffic;
}

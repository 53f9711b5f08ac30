/**
 * Test databases on the real servers: a database of its own per suite, seeded with the sample
 * table, dropped afterwards; and connection targets as a config file may hold them.
 */
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase, seedSampleData } from '../../src/db/sample-data.js';

/** Creates the database when missing, the sample table and its rows, then runs `extraSql`. */
export async function seedSampleDatabase(target: SecureResourceSettings, extraSql: string[] = []): Promise<void> {
  await ensureDatabase(target);
  const conn = await createConnector('seed', target).connect(0, 10);
  try {
    await seedSampleData(conn);
    for (const sql of extraSql) await conn.query(sql, [], { timeoutSeconds: 120 });
  } finally {
    await conn.close();
  }
}

/** Drops the target's database, ending its sessions first on PostgreSQL. */
export async function dropDatabase(target: SecureResourceSettings): Promise<void> {
  const admin = { ...target, db_name: target.db_type === 'postgres' ? 'postgres' : '' };
  const conn = await createConnector('drop', admin).connect(0, 10);
  try {
    const force = target.db_type === 'postgres' ? ' WITH (FORCE)' : '';
    await conn.query(`DROP DATABASE IF EXISTS ${target.db_name}${force}`, [], { timeoutSeconds: 30 });
  } finally {
    await conn.close();
  }
}

/** A target as a config file may hold it: passwords only ever come from the environment. */
export function fileTarget(t: Partial<SecureResourceSettings>): Record<string, unknown> {
  const { db_password: _password, ...rest } = t;
  return rest;
}

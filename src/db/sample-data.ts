/**
 * The sample table tcp_hourly(date_hour, port, flows, pkts, bytes): one row per hour per port,
 * 1008 hours (six weeks) from 2025-01-06T00:00:00Z × 5 ports = 5040 rows, deterministic so tests
 * and dashboards see the same numbers on every machine. date_hour is an INTEGER epoch (seconds) in
 * SQLite and a UTC TIMESTAMP / DATETIME elsewhere.
 */
import { existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { DbType, SecureResourceSettings } from '../config/schema.js';
import { createConnector } from './index.js';
import type { DbConnection, SqlParam } from './types.js';

export const SAMPLE_TABLE = 'tcp_hourly';
export const SAMPLE_START_EPOCH = Date.UTC(2025, 0, 6) / 1000;
export const SAMPLE_HOURS = 1008;
export const SAMPLE_PORTS: readonly number[] = [22, 53, 80, 443, 3306];
const SEED = 20250106;
const INSERT_BATCH = 200;

export interface SampleRow {
  /** Epoch seconds at the start of the hour (UTC). */
  date_hour: number;
  port: number;
  flows: number;
  pkts: number;
  bytes: number;
}

/** mulberry32: a tiny seeded PRNG, so the sample is identical everywhere (Math.random cannot be seeded). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Typical flows per hour per port, and bytes per packet, for a plausible shape. */
const PORT_PROFILE: Record<number, { flows: number; pktsPerFlow: number; bytesPerPkt: number }> = {
  22: { flows: 120, pktsPerFlow: 40, bytesPerPkt: 180 },
  53: { flows: 4000, pktsPerFlow: 2, bytesPerPkt: 90 },
  80: { flows: 900, pktsPerFlow: 25, bytesPerPkt: 700 },
  443: { flows: 3000, pktsPerFlow: 30, bytesPerPkt: 900 },
  3306: { flows: 60, pktsPerFlow: 80, bytesPerPkt: 400 },
};

export function sampleRows(): SampleRow[] {
  const rand = mulberry32(SEED);
  const rows: SampleRow[] = [];
  for (let h = 0; h < SAMPLE_HOURS; h++) {
    const date_hour = SAMPLE_START_EPOCH + h * 3600;
    const daily = 1 + 0.6 * Math.sin(((h % 24) - 8) * (Math.PI / 12)); // busier in the (UTC) afternoon
    for (const port of SAMPLE_PORTS) {
      const p = PORT_PROFILE[port];
      const flows = Math.max(1, Math.round(p.flows * daily * (0.5 + rand())));
      const pkts = Math.round(flows * p.pktsPerFlow * (0.5 + rand()));
      const bytes = Math.round(pkts * p.bytesPerPkt * (0.5 + rand()));
      rows.push({ date_hour, port, flows, pkts, bytes });
    }
  }
  return rows;
}

/** 'YYYY-MM-DD HH:MM:SS' (UTC) for epoch seconds: what TIMESTAMP / DATETIME columns take. */
export function epochToSqlDateTime(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

export function sampleTableDdl(dbType: DbType, table = SAMPLE_TABLE): string {
  const dateType = dbType === 'sqlite' ? 'INTEGER' : dbType === 'postgres' ? 'TIMESTAMP' : 'DATETIME';
  const counter = dbType === 'sqlite' ? 'INTEGER' : 'BIGINT';
  return (
    `CREATE TABLE IF NOT EXISTS ${table} (date_hour ${dateType} NOT NULL, port INTEGER NOT NULL, ` +
    `flows ${counter} NOT NULL, pkts ${counter} NOT NULL, bytes ${counter} NOT NULL, PRIMARY KEY (date_hour, port))`
  );
}

/** An INSERT of `n` rows that skips rows already there (ODBC assumes a MySQL/MariaDB server). */
function insertSql(dbType: DbType, table: string, n: number): string {
  const values = Array.from({ length: n }, () => '(?, ?, ?, ?, ?)').join(', ');
  const cols = `${table} (date_hour, port, flows, pkts, bytes) VALUES ${values}`;
  if (dbType === 'sqlite') return `INSERT OR IGNORE INTO ${cols}`;
  if (dbType === 'postgres') return `INSERT INTO ${cols} ON CONFLICT DO NOTHING`;
  return `INSERT IGNORE INTO ${cols}`;
}

function rowParams(dbType: DbType, r: SampleRow): SqlParam[] {
  return [dbType === 'sqlite' ? r.date_hour : epochToSqlDateTime(r.date_hour), r.port, r.flows, r.pkts, r.bytes];
}

/**
 * Creates the sample table (if missing) through an open connection and inserts the sample rows
 * that are not there yet. Idempotent. Returns the number of rows inserted.
 */
export async function seedSampleData(conn: DbConnection, opts: { table?: string; timeoutSeconds?: number } = {}): Promise<number> {
  const table = opts.table ?? SAMPLE_TABLE;
  const timeoutSeconds = opts.timeoutSeconds ?? 60;
  await conn.query(sampleTableDdl(conn.dbType, table), [], { timeoutSeconds });
  const rows = sampleRows();
  const statements = [];
  for (let i = 0; i < rows.length; i += INSERT_BATCH) {
    const batch = rows.slice(i, i + INSERT_BATCH);
    statements.push({ sql: insertSql(conn.dbType, table, batch.length), params: batch.flatMap((r) => rowParams(conn.dbType, r)) });
  }
  const counts = await conn.transaction(statements, { timeoutSeconds });
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Creates the SQLite sample database at `path` when the file does not exist; returns whether it did.
 * Runs at start-up (synchronously, before serving). Built in a private temp file and linked into
 * place, so concurrent starters (cluster workers) never see a half-written file.
 */
export function ensureSqliteSample(path: string, table = SAMPLE_TABLE): boolean {
  if (existsSync(path)) return false;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    const db = new Database(tmp);
    try {
      db.exec(sampleTableDdl('sqlite', table));
      const insert = db.prepare(insertSql('sqlite', table, 1));
      db.transaction((rows: SampleRow[]) => {
        for (const r of rows) insert.run(...rowParams('sqlite', r));
      })(sampleRows());
      db.pragma('journal_mode = WAL'); // persistent in the file: every later open uses WAL
    } finally {
      db.close();
    }
    try {
      linkSync(tmp, path); // fails if another process got there first: theirs is identical
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } finally {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-wal`, { force: true });
    rmSync(`${tmp}-shm`, { force: true });
  }
}

/** Creates the database named in `target` when it does not exist (PostgreSQL, MySQL/MariaDB). */
export async function ensureDatabase(target: SecureResourceSettings, timeoutSeconds = 10): Promise<void> {
  const name = target.db_name;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`refusing to create database with unusual name "${name}"`);
  if (target.db_type !== 'postgres' && target.db_type !== 'mysql') return;
  const admin = { ...target, db_name: target.db_type === 'postgres' ? 'postgres' : '' };
  const conn = await createConnector('setup', admin).connect(0, timeoutSeconds);
  try {
    if (target.db_type === 'mysql') {
      await conn.query(`CREATE DATABASE IF NOT EXISTS ${name}`, [], { timeoutSeconds });
    } else {
      const { rows } = await conn.query('SELECT 1 FROM pg_database WHERE datname = ?', [name], { timeoutSeconds });
      if (rows.length === 0) await conn.query(`CREATE DATABASE ${name}`, [], { timeoutSeconds });
    }
  } finally {
    await conn.close();
  }
}

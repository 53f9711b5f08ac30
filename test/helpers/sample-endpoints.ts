/**
 * The sample's routes (/sqlite-json, /pg/traffic...) are declared in config/endpoints/, one file per
 * database. A test config serves the files of the sample resources it defines, as the shipped
 * config does with config/endpoints/*.yaml.
 */
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');

const FILE_OF: Record<string, string> = {
  sqlite_traffic: 'traffic-sqlite.yaml',
  pg_traffic: 'traffic-pg.yaml',
  mysql_traffic: 'traffic-mysql.yaml',
  mysql_odbc_traffic: 'traffic-mysql-odbc.yaml',
};

/** Absolute paths of the sample endpoint files of the resources `secure` defines. */
export function sampleEndpointFiles(secure: unknown): string[] {
  const ids = typeof secure === 'object' && secure !== null ? Object.keys(secure) : [];
  return ids.filter((rid) => FILE_OF[rid] !== undefined).map((rid) => join(ROOT, 'config', 'endpoints', FILE_OF[rid]));
}

/** The config document with the sample endpoint files of its resources, unless it names endpoints itself. */
export function withSampleEndpoints<T extends Record<string, unknown>>(doc: T): T {
  if (doc.endpoints !== undefined) return doc;
  return { ...doc, endpoints: sampleEndpointFiles(doc.secure) };
}

/**
 * Secure sections of the sample resources a test does not enable, as the shipped config defines
 * them: their routes exist and answer 404 naming the resource. Never connected to.
 */
export const DISABLED_SAMPLE_TARGETS = {
  pg_traffic: { db_type: 'postgres', db_host: '127.0.0.1', db_port: 5432, db_name: 'watchtower_disabled', db_user: 'postgres' },
  mysql_traffic: { db_type: 'mysql', db_host: '127.0.0.1', db_port: 3306, db_name: 'watchtower_disabled', db_user: 'root' },
  mysql_odbc_traffic: { db_type: 'odbc', db_driver: 'MariaDB Unicode', db_host: '127.0.0.1', db_port: 3306, db_name: 'watchtower_disabled', db_user: 'root' },
} as const;

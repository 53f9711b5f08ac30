/**
 * `watchtower check --replicas N`: whether N replicas of this gateway fit the connection limit of
 * each database server they use. Every gateway process keeps its own pool of up to
 * db_max_conn_pool_size connections per resource, so N replicas of `workers` processes may hold
 * N × workers × (the pool sizes of the server's resources added up) connections at once. Resources
 * are grouped by server (type, host, port): databases on one server share its limit.
 *
 * The limit is read from the server itself: PostgreSQL's max_connections less the slots kept for
 * superusers (superuser_reserved_connections) and, from PostgreSQL 16, for roles granted
 * pg_use_reserved_connections (reserved_connections); MySQL's and MariaDB's max_connections (both
 * keep one more for an administrator beyond it). SQLite opens files, not server connections, and
 * an ODBC data source does not say what server it reaches: neither is applicable, and the report
 * says so.
 */
import { resourceSettingsOf, type SecureResourceSettings, type Settings } from '../config/index.js';
import { createConnector, type DbConnection } from '../db/index.js';
import { databaseMessage } from '../endpoints/verify.js';

export interface SizingReport {
  /** The arithmetic, one line per server or resource. */
  lines: string[];
  /** Servers whose limit the replicas exceed, or whose limit could not be read. */
  problems: string[];
}

interface Server {
  key: string;
  dbType: 'postgres' | 'mysql';
  /** The resources on it, in resource_ids order, with their pool maximum. */
  resources: { rid: string; target: SecureResourceSettings; pool: number }[];
}

const DEFAULT_PORT = { postgres: 5432, mysql: 3306 } as const;

/** The connections a server lets the gateway open, and how that number comes about. */
interface Limit {
  allowed: number;
  arithmetic: string;
}

const num = (v: unknown): number => Number(v);

async function readLimit(conn: DbConnection, dbType: Server['dbType'], timeoutSeconds: number): Promise<Limit> {
  if (dbType === 'mysql') {
    const { rows } = await conn.query('SELECT @@max_connections AS max_connections', [], { timeoutSeconds });
    const max = num(rows[0].max_connections);
    return { allowed: max, arithmetic: `max_connections ${max}` };
  }
  // current_setting(name, true) is NULL for a setting this version does not have (reserved_connections before 16).
  const { rows } = await conn.query(
    "SELECT current_setting('max_connections') AS max_connections, current_setting('superuser_reserved_connections') AS superuser_reserved_connections, " +
      "current_setting('reserved_connections', true) AS reserved_connections",
    [],
    { timeoutSeconds },
  );
  const r = rows[0];
  const max = num(r.max_connections);
  const su = num(r.superuser_reserved_connections);
  const reserved = r.reserved_connections === null || r.reserved_connections === undefined ? undefined : num(r.reserved_connections);
  const allowed = max - su - (reserved ?? 0);
  const parts = [`max_connections ${max}`, `superuser_reserved_connections ${su}`];
  if (reserved !== undefined) parts.push(`reserved_connections ${reserved}`);
  return { allowed, arithmetic: `${parts.join(' - ')} = ${allowed}` };
}

/** Connects through the server's resources in turn (each has its own user and password) and reads the limit. */
async function serverLimit(settings: Settings, server: Server): Promise<Limit> {
  const failures: string[] = [];
  for (const { rid, target } of server.resources) {
    const r = resourceSettingsOf(settings, rid);
    let conn: DbConnection | undefined;
    try {
      conn = await createConnector(rid, target).connect(0, r.db_conn_timeout);
      return await readLimit(conn, server.dbType, r.db_default_query_timeout);
    } catch (err) {
      failures.push(`${rid}: ${databaseMessage(err)}`);
    } finally {
      await conn?.close();
    }
  }
  throw new Error(failures.join('; '));
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export async function sizeReplicas(settings: Settings, replicas: number): Promise<SizingReport> {
  const report: SizingReport = { lines: [], problems: [] };
  const workers = settings.workers;
  report.lines.push(`sizing: ${plural(replicas, 'replica')} × ${plural(workers, 'worker')} each (workers), every process with its own pools`);
  const servers = new Map<string, Server>();
  for (const rid of settings.resource_ids) {
    const target = settings.secure[rid];
    const pool = resourceSettingsOf(settings, rid).db_max_conn_pool_size;
    if (target.db_type === 'sqlite') {
      report.lines.push(`${rid}: sqlite, not applicable (a file opened by each process, no server connection limit)`);
      continue;
    }
    if (target.db_type === 'odbc') {
      report.lines.push(
        `${rid}: odbc, not applicable (the server behind the driver is not known here): it may receive ${replicas} × ${workers} × ${pool} = ${replicas * workers * pool} connections; check that against its limit`,
      );
      continue;
    }
    const key = `${target.db_type} ${target.db_host}:${target.db_port || DEFAULT_PORT[target.db_type]}`;
    const server = servers.get(key) ?? { key, dbType: target.db_type, resources: [] };
    server.resources.push({ rid, target, pool });
    servers.set(key, server);
  }
  for (const server of servers.values()) {
    const perProcess = server.resources.reduce((sum, r) => sum + r.pool, 0);
    const pools = server.resources.map((r) => `${r.rid} ${r.pool}`).join(' + ');
    const needed = replicas * workers * perProcess;
    const demand = `${server.key}: ${replicas} × ${workers} × db_max_conn_pool_size (${pools}${server.resources.length > 1 ? ` = ${perProcess}` : ''}) = ${needed} connections`;
    let limit: Limit;
    try {
      limit = await serverLimit(settings, server);
    } catch (err) {
      report.lines.push(`${demand}; the server's limit could not be read`);
      report.problems.push(`${server.key}: cannot read the connection limit: ${(err as Error).message}`);
      continue;
    }
    const fits = needed <= limit.allowed;
    report.lines.push(
      `${demand}; the server allows ${limit.arithmetic}: ${fits ? `fits, ${limit.allowed - needed} left for other clients` : `does not fit, ${needed - limit.allowed} too many`}`,
    );
    if (!fits) {
      const most = Math.floor(limit.allowed / (workers * perProcess));
      report.problems.push(
        `${server.key}: ${plural(replicas, 'replica')} need ${needed} connections, the server allows ${limit.allowed}: at most ${plural(most, 'replica')} fit with these pool sizes and workers`,
      );
    }
  }
  return report;
}

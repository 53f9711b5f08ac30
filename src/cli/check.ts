/**
 * `watchtower check`: loads the config and every endpoint file as start-up does, then EXPLAINs each
 * declared statement on its real database, so a deployment can be gated on exit code 0. EXPLAIN
 * without ANALYZE plans a statement and executes nothing on PostgreSQL, MySQL/MariaDB and SQLite;
 * statements of other kinds, and other databases, are reported as not checked rather than run.
 */
import { initConfig, resourceSettingsOf, type Settings } from '../config/index.js';
import { createConnector, type DbConnection } from '../db/index.js';
import type { Endpoint } from '../endpoints/declaration.js';
import { loadEndpoints } from '../endpoints/load.js';
import { ConfigError } from '../errors.js';

/** Statement kinds whose EXPLAIN plans without executing. */
const EXPLAINABLE = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'WITH']);
const EXPLAIN_DB_TYPES = new Set(['postgres', 'mysql', 'sqlite']);

export interface CheckReport {
  problems: string[];
  notes: string[];
  endpoints: number;
  checked: number;
}

/** The first keyword of a statement, after comments and opening parentheses. */
export function statementKind(sql: string): string {
  const stripped = sql.replace(/^(\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/|\()*/, '');
  return (/^[A-Za-z]+/.exec(stripped)?.[0] ?? '').toUpperCase();
}

/** One problem per line: the loader joins its list into one message with "; ". */
function configProblems(err: ConfigError): string[] {
  const list = /^endpoint files refused, \d+ problem\(s\): ([\s\S]*)$/.exec(err.message);
  return list ? list[1].split('; ') : [`config: ${err.message}`];
}

export async function runCheck(): Promise<CheckReport> {
  const report: CheckReport = { problems: [], notes: [], endpoints: 0, checked: 0 };
  let settings: Settings;
  let endpoints: Endpoint[];
  try {
    settings = initConfig();
    endpoints = loadEndpoints(settings);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    report.problems.push(...configProblems(err));
    return report;
  }
  report.endpoints = endpoints.length;
  const resources = [...new Set(endpoints.flatMap((e) => e.statements.map((s) => s.resource)))];
  for (const rid of resources) await checkResource(settings, rid, endpoints, report);
  return report;
}

async function checkResource(settings: Settings, rid: string, endpoints: Endpoint[], report: CheckReport): Promise<void> {
  // Endpoints of resources left out of resource_ids are not served (404), so not checked either.
  const target = settings.secure[rid] as Settings['secure'][string] | undefined;
  if (!settings.resource_ids.includes(rid) || !target) {
    report.notes.push(`${rid}: statements not checked (resource not in resource_ids)`);
    return;
  }
  const timeoutSeconds = resourceSettingsOf(settings, rid).db_conn_timeout;
  if (!EXPLAIN_DB_TYPES.has(target.db_type)) {
    report.notes.push(`${rid}: statements not checked (no EXPLAIN known for ${target.db_type})`);
    return;
  }
  let conn: DbConnection;
  try {
    conn = await createConnector(rid, target).connect(0, timeoutSeconds);
  } catch (err) {
    const at = target.db_type === 'sqlite' ? target.db_path : `${target.db_host}:${target.db_port}/${target.db_name}`;
    report.problems.push(`resource ${rid}: cannot connect to ${target.db_type} ${at}: ${(err as Error).message}`);
    return;
  }
  try {
    for (const ep of endpoints) {
      for (const [i, st] of ep.statements.entries()) {
        if (st.resource !== rid) continue;
        const where = `${ep.file}: ${ep.method} ${ep.path}: statements[${i}] on ${rid}`;
        const kind = statementKind(st.sql);
        if (!EXPLAINABLE.has(kind)) {
          report.notes.push(`${where}: not checked (${kind || 'unknown'} statement)`);
          continue;
        }
        try {
          await conn.query(`EXPLAIN ${st.sql}`, st.names.map(() => null), { timeoutSeconds });
          report.checked++;
        } catch (err) {
          report.checked++;
          report.problems.push(`${where}: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    await conn.close();
  }
}

/** Prints the report; returns the exit code (0 only when clean). */
export function printReport(report: CheckReport, out: (line: string) => void): number {
  for (const p of report.problems) out(p);
  for (const n of report.notes) out(`note: ${n}`);
  out(`${report.endpoints} endpoints, ${report.checked} statements checked, ${report.problems.length} problems`);
  return report.problems.length === 0 ? 0 : 1;
}

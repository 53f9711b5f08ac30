/**
 * `watchtower check`: loads the config and every endpoint file as start-up does, then plans each
 * declared statement on its real database (src/endpoints/verify.ts: EXPLAIN, or prepare where the
 * database has no EXPLAIN; nothing is executed), so a deployment can be gated on exit code 0.
 * Start-up runs the same checks; unlike start-up, a database that cannot be reached is a problem
 * here, since nothing could be checked on it. With `--replicas N` it also says whether N replicas
 * fit each database server's connection limit (./replicas.ts).
 */
import { initConfig, type Settings } from '../config/index.js';
import type { Endpoint } from '../endpoints/declaration.js';
import { loadEndpoints } from '../endpoints/load.js';
import { verifyEndpoints } from '../endpoints/verify.js';
import { ConfigError } from '../errors.js';
import { sizeReplicas } from './replicas.js';

export interface CheckReport {
  problems: string[];
  notes: string[];
  endpoints: number;
  checked: number;
  /** The connection arithmetic of --replicas, one line per server or resource. */
  sizing: string[];
}

/** One problem per line: the loader joins its list into one message with "; ". */
function configProblems(err: ConfigError): string[] {
  const list = /^endpoint files refused, \d+ problem\(s\): ([\s\S]*)$/.exec(err.message);
  return list ? list[1].split('; ') : [`config: ${err.message}`];
}

export async function runCheck(opts: { replicas?: number } = {}): Promise<CheckReport> {
  const report: CheckReport = { problems: [], notes: [], endpoints: 0, checked: 0, sizing: [] };
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
  const v = await verifyEndpoints(settings, endpoints);
  report.problems.push(...v.problems.map((p) => p.message));
  report.notes.push(...v.notes);
  report.checked = v.checked;
  if (opts.replicas !== undefined) {
    const sizing = await sizeReplicas(settings, opts.replicas);
    report.sizing = sizing.lines;
    report.problems.push(...sizing.problems);
  }
  return report;
}

/** Prints the report; returns the exit code (0 only when clean). */
export function printReport(report: CheckReport, out: (line: string) => void): number {
  for (const line of report.sizing) out(line);
  for (const p of report.problems) out(p);
  for (const n of report.notes) out(`note: ${n}`);
  out(`${report.endpoints} endpoints, ${report.checked} statements checked, ${report.problems.length} problems`);
  return report.problems.length === 0 ? 0 : 1;
}

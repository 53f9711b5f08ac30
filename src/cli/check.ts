/**
 * `watchtower check`: loads the config and every endpoint file as start-up does, then plans each
 * declared statement on its real database (src/endpoints/verify.ts: EXPLAIN, or prepare where the
 * database has no EXPLAIN; nothing is executed), so a deployment can be gated on exit code 0.
 * Start-up runs the same checks; unlike start-up, a database that cannot be reached is a problem
 * here, since nothing could be checked on it.
 */
import { initConfig, type Settings } from '../config/index.js';
import type { Endpoint } from '../endpoints/declaration.js';
import { loadEndpoints } from '../endpoints/load.js';
import { verifyEndpoints } from '../endpoints/verify.js';
import { ConfigError } from '../errors.js';

export interface CheckReport {
  problems: string[];
  notes: string[];
  endpoints: number;
  checked: number;
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
  const v = await verifyEndpoints(settings, endpoints);
  report.problems.push(...v.problems.map((p) => p.message));
  report.notes.push(...v.notes);
  report.checked = v.checked;
  return report;
}

/** Prints the report; returns the exit code (0 only when clean). */
export function printReport(report: CheckReport, out: (line: string) => void): number {
  for (const p of report.problems) out(p);
  for (const n of report.notes) out(`note: ${n}`);
  out(`${report.endpoints} endpoints, ${report.checked} statements checked, ${report.problems.length} problems`);
  return report.problems.length === 0 ? 0 : 1;
}

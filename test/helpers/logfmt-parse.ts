/** Test-side parser of our log lines: `[pid] LEVEL source key=value ...` (independent of the writer). */
export interface ParsedLine {
  pid: string;
  level: string;
  source: string;
  fields: Record<string, string>;
}

const PREFIX = /^\[(\d+)\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) (.*)$/;
const PAIR = /([A-Za-z0-9_.-]+)=("((?:[^"\\]|\\.)*)"|[^\s"]*)/g;

function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-f]{4}|.)/g, (_m, c: string) => {
    if (c.length > 1) return String.fromCharCode(parseInt(c.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[c] ?? c;
  });
}

export function parseLogLine(line: string): ParsedLine {
  const m = PREFIX.exec(line);
  if (!m) throw new Error(`not a log line: ${line}`);
  const fields: Record<string, string> = {};
  let consumed = '';
  for (const pair of m[4].matchAll(PAIR)) {
    fields[pair[1]] = pair[3] !== undefined ? unescape(pair[3]) : pair[2];
    consumed += pair[0];
  }
  if (consumed.replace(/\s/g, '').length !== m[4].replace(/\s/g, '').length) throw new Error(`unparsed text in: ${line}`);
  return { pid: m[1], level: m[2], source: m[3], fields };
}

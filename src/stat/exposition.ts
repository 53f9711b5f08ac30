/**
 * Reads the Prometheus text exposition format (version 0.0.4, what /metrics answers) into samples.
 *
 * Hand-written: the npm parser (parse-prometheus-text-format 1.1.1) folds every series of a labelled
 * histogram family into one, so the buckets of one resource overwrite another's.
 */

export interface Sample {
  /** The series name as written (`wt_query_duration_seconds_bucket`, not the family name). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A line of the exposition that is neither a comment nor a sample; names the line. */
export class ExpositionError extends Error {
  constructor(line: number, why: string) {
    super(`metrics line ${line}: ${why}`);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Go's strconv.ParseFloat as the format uses it: decimal or exponent numbers, NaN, +Inf, -Inf. */
function parseValue(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** One sample line: `name{label="value",...} value [timestamp]`; the timestamp is ignored. */
function parseSampleLine(line: string, lineNo: number): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new ExpositionError(lineNo, 'no metric name');
  let i = name.length;
  while (line[i] === ' ' || line[i] === '\t') i++;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (line[i] === '}') break;
      const label = LABEL_NAME.exec(line.slice(i))?.[0];
      if (label === undefined) throw new ExpositionError(lineNo, `bad label name in ${name}`);
      i += label.length;
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (line[i] !== '=') throw new ExpositionError(lineNo, `no '=' after label ${label}`);
      i++;
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (line[i] !== '"') throw new ExpositionError(lineNo, `label ${label}: value not quoted`);
      i++;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new ExpositionError(lineNo, `label ${label}: unterminated value`);
        i++;
        if (c === '"') break;
        if (c === '\\') {
          // The three escapes of the format; any other backslash is kept as written.
          const e = line[i++];
          value += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : `\\${e ?? ''}`;
        } else value += c;
      }
      labels[label] = value;
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new ExpositionError(lineNo, `expected ',' or '}' after label ${label}`);
    }
    i++;
  }
  const rest = line.slice(i).trim().split(/[ \t]+/);
  const value = parseValue(rest[0] ?? '');
  if (value === undefined || rest.length > 2) throw new ExpositionError(lineNo, `bad value for ${name}: '${line.slice(i).trim()}'`);
  return { name, labels, value };
}

/** Every sample of an exposition text, in order; comments (HELP, TYPE) and blank lines are skipped. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === '' || line.startsWith('#')) continue;
    samples.push(parseSampleLine(line, n + 1));
  }
  return samples;
}

/**
 * A statement carrying its request's sqlcommenter comment is new text every time. Through mysql2's
 * `execute` each such statement cost a PREPARE round trip before its EXECUTE, which halved the
 * throughput of short statements (bench/README.md, "Tracing and sqlcommenter"). It runs on the text
 * protocol instead, one round trip, with its values written into the text: but only values whose
 * literal means exactly what the bound parameter means, whatever the session's sql_mode; for any
 * other value, or SQL this scanner cannot read with certainty, the caller keeps the prepared path.
 *
 * Hand-written because the safety rules are the point: mysql2's own `format` replaces every `?`,
 * also one inside a quoted literal, and escapes with backslashes, which NO_BACKSLASH_ESCAPES reads
 * differently.
 */
import type { FieldPacket } from 'mysql2';

export type InlineValue = string | number | boolean | null | Date | Buffer;

/** Backslash (read per sql_mode), NUL and Ctrl-Z (read specially by some clients and servers). */
// eslint-disable-next-line no-control-regex -- these control characters are what it looks for
const UNSURE_IN_TEXT = /[\\\0\x1a]/;

/** Characters that end a run of ordinary SQL text. */
const SPECIAL = /[?'"`\\#/-]/g;

/** The positions of the `?` placeholders of `sql`, or undefined when the text is not plain enough to be sure. */
function placeholders(sql: string): number[] | undefined {
  const at: number[] = [];
  const len = sql.length;
  let i = 0;
  while (i < len) {
    const c = sql[i];
    if (c === '?') {
      at.push(i++);
    } else if (c === '\\') {
      // Outside a comment a backslash means what sql_mode says (NO_BACKSLASH_ESCAPES): unknown here.
      return undefined;
    } else if (c === "'" || c === '"' || c === '`') {
      // A quoted literal or identifier ends at its quote; a doubled quote stands for one.
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(c, j);
        if (k === -1) return undefined;
        if (sql.lastIndexOf('\\', k) >= j) return undefined;
        if (sql[k + 1] === c) j = k + 2;
        else {
          i = k + 1;
          break;
        }
      }
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && /[\s]/.test(sql[i + 2] ?? ''))) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? len : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      // /*! and /*+ are read by the server (versioned SQL, optimizer hints): not comments to skip.
      if (sql[i + 2] === '!' || sql[i + 2] === '+') return undefined;
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) return undefined;
      i = end + 2;
    } else {
      SPECIAL.lastIndex = i + 1;
      i = SPECIAL.exec(sql)?.index ?? len;
    }
  }
  return at;
}

/**
 * The literal that means what binding `v` as a parameter means, or undefined when there is none
 * that is sure: strings with a backslash, NUL or Ctrl-Z (their reading depends on sql_mode or the
 * client), dates (bound as DATETIME, not text), unsafe integers and non-finite numbers.
 */
function literal(v: InlineValue): string | undefined {
  if (v === null) return 'NULL';
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return undefined;
    // String(-0) is "0", as a bound -0 is.
    if (Number.isInteger(v)) return Number.isSafeInteger(v) ? (v < 0 ? `(${v})` : String(v)) : undefined;
    // A bound JS fraction is a DOUBLE; a literal needs an exponent to be one (1.5 alone is DECIMAL).
    const text = String(v);
    const double = /e/i.test(text) ? text : `${text}e0`;
    return v < 0 ? `(${double})` : double;
  }
  if (typeof v === 'string') return UNSURE_IN_TEXT.test(v) ? undefined : `'${v.replaceAll("'", "''")}'`;
  if (Buffer.isBuffer(v)) return `X'${v.toString('hex')}'`;
  return undefined;
}

/**
 * Placeholder positions by SQL text (as written, without the request's comment, which the driver
 * adds after inlining): routes run a few texts over and over. Bounded in count and, by skipping long texts, in memory.
 */
const scanned = new Map<string, number[] | undefined>();
const SCANNED_MAX = 512;
const SCANNED_MAX_CHARS = 4096;

function placeholdersOf(sql: string): number[] | undefined {
  if (sql.length > SCANNED_MAX_CHARS) return placeholders(sql);
  if (scanned.has(sql)) return scanned.get(sql);
  if (scanned.size >= SCANNED_MAX) scanned.clear();
  const at = placeholders(sql);
  scanned.set(sql, at);
  return at;
}

/** `sql` with every `?` replaced by its value's literal, or undefined when that cannot be done with certainty. */
export function inlineValues(sql: string, values: readonly InlineValue[]): string | undefined {
  const at = placeholdersOf(sql);
  if (at === undefined || at.length !== values.length) return undefined;
  let out = '';
  let from = 0;
  for (let n = 0; n < at.length; n++) {
    const lit = literal(values[n]);
    if (lit === undefined) return undefined;
    out += sql.slice(from, at[n]) + lit;
    from = at[n] + 1;
  }
  return out + sql.slice(from);
}

/** MYSQL_TYPE_FLOAT, a result column's type code. */
const FLOAT = 4;

/**
 * Makes rows read on the text protocol answer what the binary protocol (execute) answers: a FLOAT
 * arrives as its text ("1.1") but is bound as a 32-bit float (1.100000023841858). Every other type
 * mysql2 reads alike from both (measured over every column type the tests use). Done on the rows
 * once they are read, not per field while reading: a typeCast callback cost every field of every row.
 */
export function asBinaryProtocol(rows: Record<string, unknown>[], fields: readonly FieldPacket[] | undefined): void {
  const floats = fields?.filter((f) => f.columnType === FLOAT).map((f) => f.name);
  if (floats === undefined || floats.length === 0) return;
  for (const row of rows) {
    for (const name of floats) {
      const v = row[name];
      if (typeof v === 'number') row[name] = Math.fround(v);
    }
  }
}

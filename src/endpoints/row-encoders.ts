/**
 * Row encoders compiled for one column list: a function per format whose body reads each column by
 * its name as a constant (`row["port"]`) and writes the line by string concatenation. A loop over
 * the column names reads `row[columns[i]]` through one property-load site that sees every name
 * (megamorphic in V8) and pays the loop's bookkeeping; the compiled function gets one inline cache
 * per column. About a quarter less main-thread CPU per row for ndjson and csv (bench/README.md,
 * "Declared endpoints").
 *
 * The generated code holds nothing but the column names, each written as a JSON string literal
 * (valid JavaScript for any string), and calls the helpers it is given: a name from a database can
 * never become code. Each value takes a fast path for what nearly every field is (a number, null, a
 * string that needs no escaping or quoting, and in SQLite's worker an integer still a bigint) and
 * falls back to the general encoding otherwise.
 */
import type { Row } from '../db/types.js';

export type RowEncoder = (row: Row) => string;

/** Characters of encoded lines a streamed answer gathers into one chunk (about 16 KB): not a write per row. */
export const CHUNK_CHARS = 16_384;

/** A value as text in csv and psv: NULL is empty, dates ISO 8601, binary base64, structures JSON. */
export function text(v: unknown): string {
  // Strings and numbers first: nearly every field is one of them.
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return `${v}`;
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * An integer read as a bigint (SQLite's worker encodes its rows as they come) as JSON: a number
 * when exact as one, else its decimal text as a string, as exactInteger gives it everywhere else.
 * Compared with bigint bounds and written by the bigint itself (the same digits as the number
 * would write): a comparison with a number and a conversion to one each took a runtime call.
 */
export function jsonInteger(v: bigint): string {
  return v >= MIN_SAFE && v <= MAX_SAFE ? `${v}` : `"${v}"`;
}

const CSV_SPECIAL = /[",\r\n]/;

/** RFC 4180: a field holding a comma, quote, CR or LF is quoted, its quotes doubled. A number never needs it. */
export function csvField(v: unknown): string {
  if (typeof v === 'number') return `${v}`;
  const t = text(v);
  return CSV_SPECIAL.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** Text JSON.stringify writes as is between quotes: no quote, backslash, control character or surrogate. */
// eslint-disable-next-line no-control-regex
export const JSON_PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** The line formats a row encoder is compiled for (json rows are ndjson lines without the newline). */
export type LineFormat = 'json' | 'csv' | 'psv';

/** Helpers the generated code calls; passed in, so the code names nothing of this module's scope. */
const HELPERS = { text, csvField, jsonInteger, named, CSV_SPECIAL, JSON_PLAIN, stringify: JSON.stringify };

/**
 * The statements appending column `key` (a JS string literal) of `row` to `s`; `end` (a literal)
 * ends the line. For json, a value
 * JSON.stringify leaves out (undefined, a function) makes the whole row JSON.stringify's, which
 * then leaves the key out as well.
 */
function fieldCode(format: LineFormat, key: string, end: string, whole: string): string {
  const read = `v = row[${key}];\n`;
  switch (format) {
    case 'json':
      return `${read}if (typeof v === 'string') s += H.JSON_PLAIN.test(v) ? '"' + v + '"' : H.stringify(v);
else if (typeof v === 'number') s += v - v === 0 ? '' + v : 'null';
else if (v === null) s += 'null';
else if (typeof v === 'bigint') s += H.jsonInteger(v);
else { t = H.stringify(v); if (t === undefined) return H.stringify(${whole}) + ${end}; s += t; }
`;
    case 'csv':
      return `${read}if (typeof v === 'number' || typeof v === 'bigint') s += '' + v;
else if (typeof v === 'string' && !H.CSV_SPECIAL.test(v)) s += v;
else s += H.csvField(v);
`;
    case 'psv':
      return `${read}s += typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? '' + v : H.text(v);\n`;
  }
}

const SEPARATOR: Record<LineFormat, string> = { json: ',', csv: ',', psv: '|' };

/**
 * The body of a function (row) => line for `columns`, the line ending with `end`. `byIndex`: the row
 * is an array of the columns' values in order (SQLite's raw rows), and the whole row as an object,
 * for JSON.stringify's fallback, is built from `C`, the column names.
 */
function source(format: LineFormat, columns: readonly string[], end: string, byIndex: boolean): string {
  const endLiteral = JSON.stringify(end);
  let code = "let v, t, s = '';\n";
  columns.forEach((c, i) => {
    const name = JSON.stringify(c);
    // json: `{"key":` / `,"key":` before each value; csv and psv: the separator before all but the first.
    const before = format === 'json' ? `${i === 0 ? '{' : ','}${name}:` : i === 0 ? '' : SEPARATOR[format];
    if (before !== '') code += `s += ${JSON.stringify(before)};\n`;
    code += fieldCode(format, byIndex ? String(i) : name, endLiteral, byIndex ? 'H.named(C, row)' : 'row');
  });
  return `${code}return s + ${format === 'json' ? JSON.stringify(`}${end}`) : endLiteral};\n`;
}

/** Above this many columns the generic loops serve (a larger function is not worth compiling). */
export const MAX_COMPILED_COLUMNS = 256;

/**
 * Compiled encoders, per format, line ending and column list: a stream or a response compiles
 * once for its columns and every later one with the same columns reuses it. Bounded, since column
 * lists come from the statements' results.
 */
const cache = new Map<string, RowEncoder | IndexedRowEncoder>();
const CACHE_SIZE = 512;

/**
 * The encoder of rows with `columns` (the first row's keys) as `format` lines, each followed by
 * `end`; undefined when there are too many columns to compile (the caller loops instead) or none
 * (json writes `{}` for such a row, and the caller's general path covers it).
 */
export function compiledRowEncoder(format: LineFormat, columns: readonly string[], end: string): RowEncoder | undefined {
  return compiled(format, columns, end, false) as RowEncoder | undefined;
}

/**
 * The encoder of rows given as arrays of `columns`' values in order (better-sqlite3's raw rows,
 * which cost a third less to read than objects): the same lines as compiledRowEncoder writes for
 * the same values as objects. Undefined where that one is; then read objects instead.
 */
export function indexedRowEncoder(format: LineFormat, columns: readonly string[], end: string): IndexedRowEncoder | undefined {
  return compiled(format, columns, end, true) as IndexedRowEncoder | undefined;
}

export type IndexedRowEncoder = (row: readonly unknown[]) => string;

/** A row's values by column name, for JSON.stringify's fallback in the indexed encoders. */
function named(columns: readonly string[], row: readonly unknown[]): Row {
  return Object.fromEntries(columns.map((c, i) => [c, row[i]])); // own properties, `__proto__` too
}

function compiled(format: LineFormat, columns: readonly string[], end: string, byIndex: boolean): RowEncoder | IndexedRowEncoder | undefined {
  if (columns.length === 0 || columns.length > MAX_COMPILED_COLUMNS) return undefined;
  const id = `${byIndex ? 'i' : 'n'}${format}\u0000${JSON.stringify(end)}\u0000${JSON.stringify(columns)}`;
  let enc = cache.get(id);
  if (enc === undefined) {
    const make = new Function('H', 'C', `return function encodeRow(row) {\n${source(format, columns, end, byIndex)}};`) as (
      h: typeof HELPERS,
      c: readonly string[],
    ) => RowEncoder | IndexedRowEncoder;
    enc = make(HELPERS, [...columns]);
    if (cache.size >= CACHE_SIZE) cache.clear();
    cache.set(id, enc);
  }
  return enc;
}

/** `"key":` of each column, the first after `{`, the others after `,`. */
function jsonKeys(columns: readonly string[]): string[] {
  return columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`);
}

/**
 * The same lines written by loops over the columns: for rows too wide to compile, and the
 * reference the compiled encoders are tested against (test/endpoints/row-encoders.test.ts).
 */
export function loopRowEncoder(format: LineFormat, columns: readonly string[], end: string): RowEncoder {
  const n = columns.length;
  switch (format) {
    case 'json': {
      const keys = jsonKeys(columns);
      return (row) => {
        if (n === 0) return JSON.stringify(row) + end;
        let out = '';
        for (let i = 0; i < n; i++) {
          const v = row[columns[i]];
          let t: string;
          if (typeof v === 'string') t = JSON_PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
          else if (typeof v === 'number') t = Number.isFinite(v) ? `${v}` : 'null';
          else if (v === null) t = 'null';
          else if (typeof v === 'bigint') t = jsonInteger(v);
          else {
            // undefined (or a function) is left out by JSON.stringify: the row is written by it whole.
            const json = JSON.stringify(v) as string | undefined;
            if (json === undefined) return JSON.stringify(row) + end;
            t = json;
          }
          out += keys[i] + t;
        }
        return `${out}}${end}`;
      };
    }
    case 'csv':
      return (row) => {
        let line = n === 0 ? '' : csvField(row[columns[0]]);
        for (let i = 1; i < n; i++) line += `,${csvField(row[columns[i]])}`;
        return line + end;
      };
    case 'psv':
      return (row) => {
        let line = n === 0 ? '' : text(row[columns[0]]);
        for (let i = 1; i < n; i++) line += `|${text(row[columns[i]])}`;
        return line + end;
      };
  }
}

/** The encoder of `format` lines for rows with `columns`: compiled when it can be, else the loops. */
export function rowEncoder(format: LineFormat, columns: readonly string[], end: string): RowEncoder {
  return compiledRowEncoder(format, columns, end) ?? loopRowEncoder(format, columns, end);
}

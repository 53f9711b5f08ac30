/**
 * Response formats of declared endpoints: which one a request gets (`?format=`, else `Accept`),
 * and the encoders. Streamed encoders batch rows into chunks of about 16 KB, as the -psv routes
 * do, so a chunk is not a write per row and memory stays flat under backpressure.
 */
import { AppError } from '../errors.js';
import type { Row } from '../db/types.js';
import type { Format } from './declaration.js';

export const MEDIA_TYPES: Record<Format, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
  psv: 'text/plain',
};

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
  psv: 'text/plain; charset=utf-8',
};

/** None of the formats the endpoint offers fits the request (406). */
export class NotAcceptableError extends AppError {
  readonly statusCode = 406;
  readonly code = 'not-acceptable';
}

function notAcceptable(offered: readonly Format[]): NotAcceptableError {
  return new NotAcceptableError(
    `not acceptable: this endpoint answers ${offered.map((f) => `${f} (${MEDIA_TYPES[f]})`).join(', ')}; choose one with ?format= or Accept`,
  );
}

/** One media range of an Accept header: type, subtype (lower case) and its q, 0 to 1. */
interface MediaRange {
  type: string;
  sub: string | undefined;
  q: number;
}

/** Accept headers seen, parsed: a client sends the same few again and again. Bounded in count and length. */
const parsedAccept = new Map<string, MediaRange[]>();
const ACCEPT_CACHE_SIZE = 256;
const ACCEPT_CACHE_LENGTH = 512;

function mediaRanges(accept: string): MediaRange[] {
  const known = parsedAccept.get(accept);
  if (known !== undefined) return known;
  const ranges = accept.split(',').map((part): MediaRange => {
    const [range, ...paramsText] = part.trim().toLowerCase().split(';');
    const [type, sub] = range.trim().split('/');
    const qParam = paramsText.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const value = qParam === undefined ? 1 : Number(qParam.slice(2));
    return { type, sub, q: Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0 };
  });
  if (accept.length <= ACCEPT_CACHE_LENGTH) {
    if (parsedAccept.size >= ACCEPT_CACHE_SIZE) parsedAccept.clear();
    parsedAccept.set(accept, ranges);
  }
  return ranges;
}

const MEDIA_PARTS = Object.fromEntries(Object.entries(MEDIA_TYPES).map(([f, t]) => [f, t.split('/')])) as Record<Format, [string, string]>;

/**
 * The format of a request: `?format=` when given (406 when not offered), else the offered format
 * the Accept header rates highest (ties go to the declared order), else the first offered. The
 * header is parsed once and remembered: parsing it for every offered format cost about 1 µs for
 * curl's "any type" and 2 µs for a browser's header, and a declared endpoint negotiates twice per
 * request (before validation, and in its handler).
 */
export function negotiate(offered: readonly Format[], formatParam: unknown, accept: string | undefined): Format {
  if (formatParam !== undefined) {
    if (typeof formatParam === 'string' && offered.includes(formatParam as Format)) return formatParam as Format;
    throw notAcceptable(offered);
  }
  if (accept === undefined || accept.trim() === '') return offered[0];
  const ranges = mediaRanges(accept);
  let best: Format | undefined;
  let bestQ = 0;
  for (const format of offered) {
    const [type, sub] = MEDIA_PARTS[format];
    let q = 0;
    let specificity = -1;
    // The most specific range that matches gives the q: type/sub, then type/*, then */*.
    for (const r of ranges) {
      const spec = r.type === type && r.sub === sub ? 2 : r.type === type && r.sub === '*' ? 1 : r.type === '*' && r.sub === '*' ? 0 : -1;
      if (spec <= specificity) continue;
      specificity = spec;
      q = r.q;
    }
    if (q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  if (best === undefined) throw notAcceptable(offered);
  return best;
}

/** A value as text in csv and psv: NULL is empty, dates ISO 8601, structures JSON. */
function text(v: unknown): string {
  // Strings and numbers first: nearly every field is one of them.
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return `${v}`;
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const CSV_SPECIAL = /[",\r\n]/;

/** RFC 4180: a field holding a comma, quote, CR or LF is quoted, its quotes doubled. A number never needs it. */
function csvField(v: unknown): string {
  if (typeof v === 'number') return `${v}`;
  const t = text(v);
  return CSV_SPECIAL.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/**
 * Encodes rows one line at a time; `columns` are fixed by the first row. The row encoders are
 * plain loops building one string: per row, map() and join() cost two arrays and a callback per
 * field, a third or more of the encoder's time (bench/README.md, "Declared endpoints").
 */
interface LineEncoder {
  start(columns: string[]): string;
  row(row: Row, columns: string[], first: boolean): string;
  end(any: boolean): string;
}

function csvRow(row: Row, columns: string[]): string {
  let line = csvField(row[columns[0]]);
  for (let i = 1; i < columns.length; i++) line += `,${csvField(row[columns[i]])}`;
  return `${line}\r\n`;
}

function psvRow(row: Row, columns: string[]): string {
  let line = text(row[columns[0]]);
  for (let i = 1; i < columns.length; i++) line += `|${text(row[columns[i]])}`;
  return `${line}\n`;
}

/** Text JSON.stringify writes as is between quotes: no quote, backslash, control character or surrogate. */
// eslint-disable-next-line no-control-regex
const JSON_PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** `"key":` of each column, the first after `{`, the others after `,`. */
const jsonKeys = new WeakMap<string[], string[]>();

/**
 * One row as JSON, exactly as JSON.stringify(row) writes it, from the columns of the first row:
 * strings and numbers, nearly every value, written directly (about a quarter faster than
 * JSON.stringify of the object); any other value by JSON.stringify, and a row holding a value
 * JSON.stringify leaves out (undefined) by JSON.stringify whole.
 */
function jsonRow(row: Row, columns: string[]): string {
  let keys = jsonKeys.get(columns);
  if (keys === undefined) {
    keys = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`);
    jsonKeys.set(columns, keys);
  }
  let out = '';
  for (let i = 0; i < columns.length; i++) {
    const v = row[columns[i]];
    let t: string;
    if (typeof v === 'string') t = JSON_PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
    else if (typeof v === 'number') t = Number.isFinite(v) ? `${v}` : 'null';
    else if (v === null) t = 'null';
    else {
      // undefined (or a function) is left out by JSON.stringify: the row is written by it whole.
      const json = JSON.stringify(v) as string | undefined;
      if (json === undefined) return JSON.stringify(row);
      t = json;
    }
    out += keys[i] + t;
  }
  return columns.length === 0 ? JSON.stringify(row) : `${out}}`;
}

const ENCODERS: Record<Format, LineEncoder> = {
  json: {
    start: () => '',
    row: (row, columns, first) => (first ? '[' : ',') + jsonRow(row, columns),
    end: (any) => (any ? ']' : '[]'),
  },
  ndjson: { start: () => '', row: (row, columns) => `${jsonRow(row, columns)}\n`, end: () => '' },
  csv: {
    start: (columns) => `${columns.map(csvField).join(',')}\r\n`,
    row: csvRow,
    end: () => '',
  },
  // As the -psv routes: no header, no quoting, one row per line.
  psv: { start: () => '', row: psvRow, end: () => '' },
};

const CHUNK_CHARS = 16_384;

/** Streams rows as `format`, at most `maxRows` of them (leaving the loop early stops the statement). */
export async function* encodeRows(rows: AsyncIterable<Row>, format: Format, maxRows = Infinity): AsyncGenerator<string> {
  const enc = ENCODERS[format];
  let columns: string[] | undefined;
  let chunk = '';
  let n = 0;
  const it = rows[Symbol.asyncIterator]();
  // Set once the rows need no stopping here: ran out, or cut at max_rows.
  let settled = false;
  try {
    for (;;) {
      if (n >= maxRows) {
        // Cut at max_rows: the statement is stopped without holding up the end of the answer (the
        // request's end waits for the stop before its connection goes back).
        settled = true;
        void it.return?.().catch(() => undefined);
        break;
      }
      const next = await it.next();
      if (next.done) {
        settled = true;
        break;
      }
      const row = next.value;
      if (columns === undefined) {
        columns = Object.keys(row);
        chunk += enc.start(columns);
      }
      chunk += enc.row(row, columns, n === 0);
      n++;
      if (chunk.length >= CHUNK_CHARS) {
        yield chunk;
        chunk = '';
      }
    }
  } finally {
    // The consumer left (client gone) or the rows failed: stop the statement before going.
    if (!settled) await it.return?.();
  }
  chunk += enc.end(n > 0);
  if (chunk.length > 0) yield chunk;
}

/** The whole answer of rows held in memory. */
export function encodeAll(rows: readonly Row[], format: Format): string {
  const enc = ENCODERS[format];
  if (rows.length === 0) return enc.end(false);
  const columns = Object.keys(rows[0]);
  let out = enc.start(columns);
  rows.forEach((row, i) => (out += enc.row(row, columns, i === 0)));
  return out + enc.end(true);
}

/**
 * Response formats of declared endpoints: which one a request gets (`?format=`, else `Accept`),
 * and how each frames its rows (the lines themselves: src/endpoints/row-encoders.ts). Streamed
 * answers batch rows into chunks of about 16 KB, so a chunk is not a write per row and memory
 * stays flat under backpressure.
 */
import { AppError } from '../errors.js';
import { EncodedRows, type LineEncoding, type Row } from '../db/types.js';
import type { Format } from './declaration.js';
import { CHUNK_CHARS, csvField, rowEncoder, type LineFormat, type RowEncoder } from './row-encoders.js';

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

/**
 * `negotiate` for one endpoint's formats, from a request. The last Accept header (without
 * ?format=) and its answer are remembered: clients send the same header again and again, and a
 * declared endpoint negotiates twice per request (before validation, and in its handler).
 */
export function negotiator(offered: readonly Format[]): (req: { query: unknown; headers: { accept?: string } }) => Format {
  let lastAccept: string | undefined;
  let lastFormat = offered[0];
  return (req) => {
    const formatParam = (req.query as Record<string, unknown>).format;
    const accept = req.headers.accept;
    if (formatParam === undefined && accept === lastAccept && accept !== undefined) return lastFormat;
    const format = negotiate(offered, formatParam, accept);
    if (formatParam === undefined && accept !== undefined) {
      lastAccept = accept;
      lastFormat = format;
    }
    return format;
  };
}

/**
 * What a format writes around its rows: `start` before the first (csv's header row), each row as
 * `prefix(first)` then its line, and `end` after the last. The lines come from encoders compiled
 * for the rows' columns (src/endpoints/row-encoders.ts); `columns` are fixed by the first row.
 */
interface Framing {
  line: LineFormat;
  /** What follows each line. */
  eol: string;
  start(columns: readonly string[]): string;
  prefix(first: boolean): string;
  end(any: boolean): string;
}

const none = () => '';

const FRAMING: Record<Format, Framing> = {
  json: { line: 'json', eol: '', start: none, prefix: (first) => (first ? '[' : ','), end: (any) => (any ? ']' : '[]') },
  ndjson: { line: 'json', eol: '\n', start: none, prefix: none, end: none },
  csv: { line: 'csv', eol: '\r\n', start: (columns) => `${columns.map(csvField).join(',')}\r\n`, prefix: none, end: none },
  // As the -psv routes: no header, no quoting, one row per line.
  psv: { line: 'psv', eol: '\n', start: none, prefix: none, end: none },
};

/**
 * A format's rows as lines a driver may encode where the statement runs (QueryOptions.lines):
 * encodeRows then adds only the framing around them (json's brackets and the comma between batches).
 */
export function linesOf(format: Format, maxRows?: number): LineEncoding {
  const enc = FRAMING[format];
  return { format: enc.line, eol: enc.eol, separator: enc.prefix(false), ...(maxRows === undefined ? {} : { maxRows }) };
}

/**
 * Streams rows as `format`, at most `maxRows` of them (leaving the loop early stops the statement).
 * Rows may come already encoded (EncodedRows: a stream asked for linesOf(format, maxRows), as the
 * declared routes ask); rows as objects are encoded here, the same bytes.
 */
export async function* encodeRows(rows: AsyncIterable<Row | EncodedRows>, format: Format, maxRows = Infinity): AsyncGenerator<string | Buffer> {
  const enc = FRAMING[format];
  let line: RowEncoder | undefined;
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
      if (row instanceof EncodedRows) {
        if (n === 0) chunk += enc.start(row.columns);
        chunk += enc.prefix(n === 0);
        if (typeof row.text === 'string') chunk += row.text;
        else {
          // Bytes go out as they are, after the framing before them.
          if (chunk.length > 0) yield chunk;
          chunk = '';
          yield row.text;
        }
        n += row.rows;
      } else {
        if (line === undefined) {
          const columns = Object.keys(row);
          chunk += enc.start(columns);
          line = rowEncoder(enc.line, columns, enc.eol);
        }
        chunk += enc.prefix(n === 0) + line(row);
        n++;
      }
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
  const enc = FRAMING[format];
  if (rows.length === 0) return enc.end(false);
  const columns = Object.keys(rows[0]);
  const line = rowEncoder(enc.line, columns, enc.eol);
  let out = enc.start(columns);
  for (let i = 0; i < rows.length; i++) out += enc.prefix(i === 0) + line(rows[i]);
  return out + enc.end(true);
}

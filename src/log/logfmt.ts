/**
 * logfmt value encoding, hand-written because it sits on the hot path of every log line and the
 * rules are a few lines: bare when safe, else double-quoted with \ " and control characters escaped.
 */

// Control characters are exactly what must not reach a log line unescaped.
// eslint-disable-next-line no-control-regex
const BARE = /^[^\s"=\\\x00-\x1f\x7f]+$/;
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\x00-\x1f\x7f]/g;
/** The same test without the global flag: most quoted values (a message with spaces) need no escape at all. */
// eslint-disable-next-line no-control-regex
const HAS_ESCAPE = /["\\\x00-\x1f\x7f]/;

function escapeChar(c: string): string {
  switch (c) {
    case '"':
      return '\\"';
    case '\\':
      return '\\\\';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default:
      return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
  }
}

/**
 * BARE's rule for one character, for ASCII only (below 0x7f; anything above is refused): no space
 * or control character, no `"`, `=` or `\`. A value of such characters alone is written as it is.
 */
export function bareAsciiCode(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x22 && c !== 0x3d && c !== 0x5c;
}

/**
 * BARE's test, as a loop for text without characters above 0x7e (nearly every value): the regex
 * call cost several times the loop on the short values of a request's records.
 */
function isBare(v: string): boolean {
  if (v.length === 0) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c > 0x7e) return BARE.test(v);
    if (!bareAsciiCode(c)) return false;
  }
  return true;
}

function encodeUncached(v: string): string {
  if (isBare(v)) return v;
  return HAS_ESCAPE.test(v) ? `"${v.replace(NEEDS_ESCAPE, escapeChar)}"` : '"' + v + '"';
}

/**
 * The last encoding of a short string, per slot (its length, modulo the slots). A request's records
 * repeat most of their values: tags, messages, the client's address, resource ids, its cid in each
 * record. A hit costs a string comparison instead of a regex test, and the request path writes
 * about fifteen values per request. Long values (results, tracebacks)
 * are neither kept nor compared.
 */
const SLOTS = 32;
const MAX_CACHED_LENGTH = 256;
// Every slot starts as the empty string and its encoding, so even an unused slot answers correctly.
const seen: string[] = new Array<string>(SLOTS).fill('');
const encoded: string[] = new Array<string>(SLOTS).fill('""');

function encodeString(v: string): string {
  if (v.length > MAX_CACHED_LENGTH) return encodeUncached(v);
  const slot = v.length & (SLOTS - 1);
  if (seen[slot] === v) return encoded[slot];
  const e = encodeUncached(v);
  seen[slot] = v;
  encoded[slot] = e;
  return e;
}

/** Small non-negative integers (status codes, counts, ids) as text, made once. */
const SMALL_INTS: string[] = Array.from({ length: 1024 }, (_, i) => String(i));

/** Encodes one value; never returns a string containing a newline. */
export function logfmtValue(v: unknown): string {
  switch (typeof v) {
    case 'number':
      if (v >= 0 && v < SMALL_INTS.length && Number.isInteger(v)) return SMALL_INTS[v];
      return Number.isFinite(v) ? String(v) : `"${String(v)}"`;
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'string':
      return encodeString(v);
    case 'undefined':
      return '""';
    default:
      if (v === null) return '""';
      if (v instanceof Error) return logfmtValue(v.message);
      if (v instanceof Date) return v.toISOString();
      return logfmtValue(JSON.stringify(v));
  }
}

/** Turns a stack trace into one line: newlines become " | " (the log shipper turns them back). */
export function oneLineTraceback(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return text.replace(/\r?\n\s*/g, ' | ');
}

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

/** Encodes one value; never returns a string containing a newline. */
export function logfmtValue(v: unknown): string {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? String(v) : `"${String(v)}"`;
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'string':
      if (BARE.test(v)) return v;
      return HAS_ESCAPE.test(v) ? `"${v.replace(NEEDS_ESCAPE, escapeChar)}"` : '"' + v + '"';
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

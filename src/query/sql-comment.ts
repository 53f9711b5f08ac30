/**
 * sqlcommenter (https://google.github.io/sqlcommenter/spec/): a trailing comment naming the
 * request on every statement, so pg_stat_activity, the MySQL process list and slow-query logs show
 * which request ran it: `/*cid='…',endpoint='…'*\/`, keys sorted, values URL-encoded, then `'`
 * escaped as `\'`, in single quotes. URL encoding turns `/` into %2F, so a value can never close
 * the comment.
 */

function encode(s: string): string {
  // encodeURIComponent leaves ' unencoded: the spec escapes it after encoding.
  return encodeURIComponent(s).replaceAll("'", "\\'");
}

/**
 * `sql` with `comment` appended, before a trailing semicolon. On a line of its own when the last
 * line holds a line comment (`--` or MySQL's `#`), which would otherwise swallow it.
 */
export function withComment(sql: string, comment: string): string {
  let body = sql.trimEnd();
  if (body.endsWith(';')) body = body.slice(0, -1).trimEnd();
  const lastLine = body.slice(body.lastIndexOf('\n') + 1);
  const sep = lastLine.includes('--') || lastLine.includes('#') ? '\n' : ' ';
  return `${body}${sep}${comment}`;
}

/** Where the comment this module added begins in `sql` (-1: none). Its text changes per request. */
function requestCommentStart(sql: string): number {
  if (!sql.endsWith('*/')) return -1;
  const at = sql.lastIndexOf("/*cid='");
  return at !== -1 && sql.indexOf('*/', at) === sql.length - 2 ? at : -1;
}

/** Whether `sql` ends in a comment this module added (its text changes per request). */
export function hasRequestComment(sql: string): boolean {
  return requestCommentStart(sql) !== -1;
}

/**
 * `sql` split before the comment this module added (and the space or newline before it), or
 * undefined when it has none: drivers that remember work per SQL text do it for the part that
 * repeats, then append the comment.
 */
export function splitRequestComment(sql: string): { body: string; comment: string } | undefined {
  const at = requestCommentStart(sql);
  if (at <= 0) return undefined;
  return { body: sql.slice(0, at - 1), comment: sql.slice(at - 1) };
}

/** Characters encodeURIComponent leaves as they are, and the spec's escaping too. */
const URL_SAFE = /^[A-Za-z0-9_.!~*()-]*$/;
/** Encoded endpoints: a gateway has few, and each request names one (bounded, emptied when full). */
const encodedEndpoints = new Map<string, string>();
const ENCODED_ENDPOINTS_MAX = 1000;

/**
 * The comment of a request's statements. It is made for every statement, so the encoding is skipped
 * for a correlation id that needs none and remembered per endpoint.
 */
export function requestComment(cid: string, endpoint: string | undefined): string {
  const c = URL_SAFE.test(cid) ? cid : encode(cid);
  if (endpoint === undefined) return `/*cid='${c}'*/`;
  let e = encodedEndpoints.get(endpoint);
  if (e === undefined) {
    if (encodedEndpoints.size >= ENCODED_ENDPOINTS_MAX) encodedEndpoints.clear();
    e = encode(endpoint);
    encodedEndpoints.set(endpoint, e);
  }
  return `/*cid='${c}',endpoint='${e}'*/`;
}

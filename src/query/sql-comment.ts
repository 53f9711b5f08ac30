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

/**
 * `sql` as sent with the request's `comment` (Statement.comment, QueryOptions.comment), or as it is
 * without one. Drivers that remember work per SQL text (a placeholder rewrite or scan) do it on the
 * text as written, which repeats, and call this on their result: the comment is new every request.
 */
export function commented(sql: string, comment: string | undefined): string {
  return comment === undefined ? sql : withComment(sql, comment);
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

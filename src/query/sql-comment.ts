/**
 * sqlcommenter (https://google.github.io/sqlcommenter/spec/): a trailing comment naming the
 * request on every statement, so pg_stat_activity, the MySQL process list and slow-query logs show
 * which request ran it. Keys sorted; keys and values URL-encoded, then `'` escaped as `\'`, values
 * in single quotes. URL encoding turns `/` into %2F, so a value can never close the comment.
 */

function encode(s: string): string {
  // encodeURIComponent leaves ' unencoded: the spec escapes it after encoding.
  return encodeURIComponent(s).replaceAll("'", "\\'");
}

/** `/*k1='v1',k2='v2'*\/` for the fields that have a value, keys sorted. */
export function sqlComment(fields: Record<string, string | undefined>): string {
  const parts: string[] = [];
  for (const key of Object.keys(fields).sort()) {
    const value = fields[key];
    if (value !== undefined) parts.push(`${encode(key)}='${encode(value)}'`);
  }
  return `/*${parts.join(',')}*/`;
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

/** Whether `sql` ends in a comment this module added (its text changes per request). */
export function hasRequestComment(sql: string): boolean {
  return /\/\*cid='[^*]*\*\/$/.test(sql);
}

/**
 * `?` → `$1..$n` for PostgreSQL, skipping quoted text where a `?` is literal: 'strings' (with ''
 * and E'\'' escapes), "identifiers", $tag$dollar strings$tag$, -- line and /* block *\/ comments.
 * Hand-written because the rewrite must match exactly what our other drivers bind, and no small
 * library does just this. A jsonb `?` operator cannot be told from a placeholder: use jsonb_exists().
 */
export function toPgPlaceholders(sql: string): string {
  if (sql.length > REMEMBERED_MAX_CHARS) return rewrite(sql);
  let out = rewritten.get(sql);
  if (out === undefined) {
    if (rewritten.size >= REWRITTEN_MAX) rewritten.clear();
    out = rewrite(sql);
    rewritten.set(sql, out);
  }
  return out;
}

/**
 * Routes build their SQL from a few templates, so the same texts come back on every request:
 * remember the rewrites (bounded in count and, by skipping long texts, in memory; dropped all at
 * once when full, which costs one rescan each).
 */
const REWRITTEN_MAX = 512;
const REMEMBERED_MAX_CHARS = 4096;
const rewritten = new Map<string, string>();

/** Characters that start something the rewrite must look at; everything else is copied in runs. */
const SPECIAL = /[?'"\-/$]/g;

function rewrite(sql: string): string {
  let out = '';
  let n = 0;
  let i = 0;
  const len = sql.length;
  /** Copies sql[i..end) and moves i to end. */
  const copyTo = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < len) {
    const c = sql[i];
    if (c === '?') {
      out += `$${++n}`;
      i++;
    } else if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]) && !/[\w$]/.test(sql[i - 2] ?? '');
      let j = i + 1;
      while (j < len) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      copyTo(Math.min(j + 1, len));
    } else if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      copyTo(end === -1 ? len : end + 1);
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      copyTo(end === -1 ? len : end + 1);
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      copyTo(end === -1 ? len : end + 2);
    } else if (c === '$' && !/[\w$]/.test(sql[i - 1] ?? '')) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i, i + 64))?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        copyTo(end === -1 ? len : end + tag.length);
      } else {
        copyTo(i + 1);
      }
    } else {
      // An ordinary character, or a '-' or '/' that starts no comment: copy up to the next one worth a look.
      SPECIAL.lastIndex = i + 1;
      copyTo(SPECIAL.exec(sql)?.index ?? len);
    }
  }
  return out;
}

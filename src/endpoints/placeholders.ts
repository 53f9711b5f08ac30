/**
 * Named placeholders (`:port`) in a declared statement become the `?` every driver binds (the
 * postgres driver turns those into $1..$n, skipping quoted text the same way). A value is never
 * spliced into the text: the result is the SQL with `?` where each name stood, and the names in
 * order, so the route binds its values by position.
 *
 * Skipped, where a `:` or `?` is literal: 'strings', "quoted identifiers", `backticks` (MySQL),
 * $tag$dollar strings$tag$ (PostgreSQL), -- and # (MySQL) line comments, block comments, and
 * `::` casts. A bare `?` outside them is refused: it would be a placeholder no name binds.
 */
import type { DbType } from '../config/schema.js';

export interface CompiledSql {
  sql: string;
  /** The placeholder names in the order their `?` appear (a name used twice appears twice). */
  names: string[];
}

export class PlaceholderError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** MySQL (also behind ODBC, which serves MySQL here) reads backslash escapes in quoted text. */
function backslashEscapes(dialect: DbType): boolean {
  return dialect === 'mysql' || dialect === 'odbc';
}

/** Index just past the quoted text starting at `i` (quote char `q`), doubled quotes included. */
function quotedEnd(sql: string, i: number, q: string, backslash: boolean): number {
  let j = i + 1;
  while (j < sql.length) {
    if (backslash && sql[j] === '\\') j += 2;
    else if (sql[j] === q && sql[j + 1] === q) j += 2;
    else if (sql[j] === q) return j + 1;
    else j++;
  }
  throw new PlaceholderError(`unterminated ${q === "'" ? 'string' : 'quoted name'} starting at character ${i + 1}`);
}

export function compileNamed(sql: string, dialect: DbType): CompiledSql {
  const names: string[] = [];
  let out = '';
  let i = 0;
  const len = sql.length;
  const copyTo = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < len) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === "'") {
      // PostgreSQL's E'...' strings take backslash escapes; its standard strings do not.
      const eString = dialect === 'postgres' && /[eE]/.test(sql[i - 1] ?? '') && !/[\w$]/.test(sql[i - 2] ?? '');
      copyTo(quotedEnd(sql, i, "'", backslashEscapes(dialect) || eString));
    } else if (c === '"') {
      copyTo(quotedEnd(sql, i, '"', backslashEscapes(dialect)));
    } else if (c === '`' && dialect !== 'postgres') {
      copyTo(quotedEnd(sql, i, '`', false));
    } else if ((c === '-' && next === '-') || (c === '#' && backslashEscapes(dialect))) {
      const end = sql.indexOf('\n', i);
      copyTo(end === -1 ? len : end + 1);
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) throw new PlaceholderError(`unterminated comment starting at character ${i + 1}`);
      copyTo(end + 2);
    } else if (c === '$' && dialect === 'postgres' && !/[\w$]/.test(sql[i - 1] ?? '')) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i, i + 64))?.[0];
      if (!tag) {
        copyTo(i + 1);
        continue;
      }
      const end = sql.indexOf(tag, i + tag.length);
      if (end === -1) throw new PlaceholderError(`unterminated ${tag} string starting at character ${i + 1}`);
      copyTo(end + tag.length);
    } else if (c === ':' && next === ':') {
      copyTo(i + 2); // a cast: port::text
    } else if (c === ':' && !/\w/.test(sql[i - 1] ?? '')) {
      const name = NAME.exec(sql.slice(i + 1, i + 65))?.[0];
      if (name === undefined) {
        copyTo(i + 1); // MySQL's := and other lone colons
        continue;
      }
      names.push(name);
      out += '?';
      i += 1 + name.length;
    } else if (c === '?') {
      throw new PlaceholderError(`bare ? at character ${i + 1}: name every placeholder (:name)`);
    } else {
      copyTo(i + 1);
    }
  }
  return { sql: out, names };
}

/**
 * The one rule every driver follows for integers that may not fit a JS number (SQLite and ODBC
 * bigints, PostgreSQL int8 text): a number when it is exact as one, else its decimal text, since
 * JSON cannot carry a bigint and a rounded number would change the data.
 */
export function exactInteger(v: bigint | string): number | string {
  if (typeof v === 'bigint') return v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v.toString();
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}

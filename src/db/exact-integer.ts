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

/** A row's bigints made exact (see exactInteger), in place; drivers that read integers as bigints call it on each row. */
export function exactIntegers<R extends Record<string, unknown>>(row: R): R {
  for (const key in row) {
    const v = row[key];
    if (typeof v === 'bigint') (row as Record<string, unknown>)[key] = exactInteger(v);
  }
  return row;
}

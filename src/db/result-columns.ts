/**
 * The JSON type of each result column, as the driver that reads it will hand it to the routes, for
 * the OpenAPI document of declared endpoints without `columns`. What matters is what a driver
 * returns, not the SQL type alone: DECIMAL is text from mysql2 and a number from the odbc package,
 * 64-bit integers are a number up to 2^53 and their exact decimal text beyond (exact-integer.ts),
 * binary values reach JSON as objects. A type nobody listed is text: pg and mysql2 give the
 * server's text for types they do not parse.
 */
import type { ResultColumn } from './types.js';

type Schema = Record<string, unknown>;

const BIG = {
  type: ['integer', 'string'],
  description: 'A JSON number; beyond 2^53, where JSON numbers lose precision, its exact decimal text',
};
const INTEGER = { type: 'integer' };
const NUMBER = { type: 'number' };
const STRING = { type: 'string' };
const BOOLEAN = { type: 'boolean' };
/** Buffers, ArrayBuffers, parsed geometry and intervals: JSON objects. */
const OBJECT = { type: 'object' };
const ARRAY = { type: 'array' };
/** A JSON document: any JSON value. */
const ANY_JSON = { description: 'A JSON value' };

/** The schema with `null` allowed (or not); a schema without `type` already allows anything. */
function column(name: string, base: Schema, nullable: boolean): ResultColumn {
  const t = base.type as string | string[] | undefined;
  if (!nullable || t === undefined) return { name, schema: { ...base } };
  return { name, schema: { ...base, type: [...(Array.isArray(t) ? t : [t]), 'null'] } };
}

/**
 * The statement wrapped so that it yields its columns and no row: the server plans it and knows the
 * outer filter is false, so nothing is read. Only for plain queries (SELECT, WITH, VALUES, TABLE): a
 * write with RETURNING would run. The inner text ends on its own line, so a trailing `--` comment
 * cannot swallow the wrapper; a trailing `;` is dropped.
 */
export function noRowsQuery(sql: string): string | undefined {
  if (!['SELECT', 'WITH', 'VALUES', 'TABLE'].includes(statementKind(sql))) return undefined;
  return `SELECT * FROM (\n${sql.replace(/[\s;]+$/, '')}\n) wt_describe WHERE 1 = 0`;
}

/** The first keyword of a statement, after comments and opening parentheses. */
export function statementKind(sql: string): string {
  const stripped = sql.replace(/^(\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/|\()*/, '');
  return (/^[A-Za-z]+/.exec(stripped)?.[0] ?? '').toUpperCase();
}

/**
 * Whether a column's NOT NULL in its table may not hold in the result: an outer join fills the
 * missing side with NULL, as do ROLLUP/CUBE/GROUPING SETS, and UNION's columns carry the first
 * branch's origin only. (PostgreSQL and SQLite describe a column by its table; MySQL computes
 * nullability for the result itself.)
 */
export function mayAddNulls(sql: string): boolean {
  return /\b(left|right|full)\s+(outer\s+)?join\b|\bunion\b|\brollup\b|\bcube\b|\bgrouping\s+sets\b/i.test(sql);
}

// --- PostgreSQL: the type OIDs of a RowDescription, as pg-types and postgres.ts parse them. ---

const PG_TYPES: Record<number, Schema> = {
  16: BOOLEAN,
  17: OBJECT, // bytea: a Buffer
  20: BIG, // int8 (postgres.ts: exactInteger)
  21: INTEGER,
  23: INTEGER,
  26: INTEGER, // oid
  114: ANY_JSON,
  3802: ANY_JSON,
  600: OBJECT, // point {x, y}
  718: OBJECT, // circle
  700: NUMBER,
  701: NUMBER,
  1186: OBJECT, // interval: postgres-interval's object
  // 1700 numeric, dates and times (Dates become ISO text in JSON), text types: text, the default.
};
/** Array types pg parses into JS arrays. */
const PG_ARRAYS = new Set([199, 1000, 1001, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1231, 1270, 2951, 3807]);

/** One column of a PostgreSQL result; `notNull` from pg_attribute when the column is a table's. */
export function pgColumn(name: string, typeOid: number, notNull: boolean): ResultColumn {
  return column(name, PG_ARRAYS.has(typeOid) ? ARRAY : (PG_TYPES[typeOid] ?? STRING), !notNull);
}

// --- MySQL/MariaDB: mysql2's column definitions (binary protocol, postgres.ts's options). ---

export interface MysqlField {
  name: string;
  columnType?: number;
  flags?: number;
  characterSet?: number;
  /** MariaDB's extended type, e.g. 'json'. */
  extendedFormat?: string;
}
const MYSQL_NOT_NULL = 1;
const MYSQL_BINARY_CHARSET = 63;
const MYSQL_TYPES: Record<number, Schema> = {
  1: INTEGER, // TINY
  2: INTEGER, // SHORT
  3: INTEGER, // LONG
  9: INTEGER, // INT24
  13: INTEGER, // YEAR
  8: BIG, // LONGLONG (supportBigNumbers: text beyond 2^53)
  4: NUMBER, // FLOAT
  5: NUMBER, // DOUBLE
  0: STRING, // DECIMAL: mysql2 keeps the exact text
  246: STRING, // NEWDECIMAL
  16: OBJECT, // BIT: a Buffer
  245: ANY_JSON, // MySQL JSON (mysql2 parses it)
  255: OBJECT, // GEOMETRY
  6: { type: 'null' }, // NULL
  // DATE, TIME, DATETIME, TIMESTAMP (dateStrings), strings, ENUM, SET: text, the default.
};
/** Types that are text, or a Buffer with the binary character set. */
const MYSQL_BYTES = new Set([15, 249, 250, 251, 252, 253, 254]);

export function mysqlColumn(f: MysqlField): ResultColumn {
  const type = f.columnType ?? 253;
  let base: Schema;
  if (f.extendedFormat === 'json') base = ANY_JSON; // MariaDB's JSON (LONGTEXT), which mysql2 parses
  else if (MYSQL_BYTES.has(type)) base = f.characterSet === MYSQL_BINARY_CHARSET ? OBJECT : STRING;
  else base = MYSQL_TYPES[type] ?? STRING;
  return column(f.name, base, ((f.flags ?? 0) & MYSQL_NOT_NULL) === 0);
}

// --- ODBC: SQL data types of SQLDescribeCol, as the odbc package converts them. ---

export interface OdbcColumn {
  name: string;
  dataType: number;
  nullable?: boolean;
}
const ODBC_TYPES: Record<number, Schema> = {
  4: INTEGER, // SQL_INTEGER
  5: INTEGER, // SQL_SMALLINT
  [-6]: INTEGER, // SQL_TINYINT
  [-5]: BIG, // SQL_BIGINT: a bigint, made exact by odbc.ts
  2: NUMBER, // SQL_NUMERIC: the package reads it with atof
  3: NUMBER, // SQL_DECIMAL: likewise
  6: NUMBER, // SQL_FLOAT
  7: NUMBER, // SQL_REAL
  8: NUMBER, // SQL_DOUBLE
  [-2]: OBJECT, // SQL_BINARY: an ArrayBuffer
  [-3]: OBJECT, // SQL_VARBINARY
  [-4]: OBJECT, // SQL_LONGVARBINARY
  // Character, date, time, GUID and BIT: text, the default.
};

export function odbcColumn(c: OdbcColumn): ResultColumn {
  return column(c.name, ODBC_TYPES[c.dataType] ?? STRING, c.nullable !== false);
}

// --- SQLite: the declared type of a table column (stmt.columns()), by SQLite's affinity rules. ---

/**
 * SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html, 3.1). A column of
 * an expression has no declared type and may hold any value. Values follow affinity, not
 * declaration, so a NUMERIC column may give integers, reals or text.
 */
export function sqliteColumn(name: string, declared: string | null, notNull: boolean): ResultColumn {
  if (declared === null || declared === '') return column(name, ANY_JSON, true);
  const t = declared.toUpperCase();
  let base: Schema;
  if (t.includes('INT')) base = BIG; // 64-bit: exact text beyond 2^53 (sqlite-worker.ts)
  else if (/CHAR|CLOB|TEXT/.test(t)) base = STRING;
  else if (t.includes('BLOB')) base = OBJECT;
  else if (/REAL|FLOA|DOUB/.test(t)) base = NUMBER;
  else base = { type: ['number', 'string'] }; // NUMERIC affinity
  return column(name, base, !notNull);
}

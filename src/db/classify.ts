/**
 * Driver error → DbDriverError. One table per driver maps its own codes to what the pool and the
 * Query layer need: the kind, whether the connection may be reused, and whether it is a duplicate
 * key. Anything not in a table is 'broken': the connection is closed, never handed out again.
 */
import type { DbType } from '../config/schema.js';
import { DbDriverError, type DbErrorKind } from './types.js';

interface Rule {
  kind: DbErrorKind;
  usable: boolean;
  duplicate?: boolean;
  /** The database refused a bound value (out of range, impossible date): the client's input. */
  badValue?: boolean;
}

/**
 * A statement error caused by a value the client sent, which validation should have refused
 * (out of range, an impossible date, a number in the wrong form): answered 400, not 500. A
 * 'query' error otherwise: the connection stays usable.
 */
export class DbValueError extends DbDriverError {}

const QUERY: Rule = { kind: 'query', usable: true };
const VALUE: Rule = { kind: 'query', usable: true, badValue: true };
const CONSTRAINT: Rule = { kind: 'constraint', usable: true };
const DUPLICATE: Rule = { kind: 'constraint', usable: true, duplicate: true };
const TIMEOUT: Rule = { kind: 'timeout', usable: true };
const UNREACHABLE: Rule = { kind: 'unreachable', usable: false };
const BROKEN: Rule = { kind: 'broken', usable: false };

/** Socket-level errors, whichever driver surfaces them. */
const NETWORK: Record<string, Rule> = {
  ECONNREFUSED: UNREACHABLE,
  ENOTFOUND: UNREACHABLE,
  EAI_AGAIN: UNREACHABLE,
  EHOSTUNREACH: UNREACHABLE,
  ENETUNREACH: UNREACHABLE,
  ETIMEDOUT: UNREACHABLE,
  ECONNRESET: BROKEN,
  EPIPE: BROKEN,
};

/** PostgreSQL SQLSTATE: exact codes first, then the two-character class. */
const PG_CODES: Record<string, Rule> = {
  '23505': DUPLICATE,
  '57014': TIMEOUT, // query_canceled: our own cancel or statement_timeout
  '57P01': UNREACHABLE, // admin_shutdown (also pg_terminate_backend): the server dropped us
  '57P02': UNREACHABLE, // crash_shutdown
  '57P03': UNREACHABLE, // cannot_connect_now
  '53300': UNREACHABLE, // too_many_connections
  '3D000': UNREACHABLE, // database does not exist
  '40001': QUERY, // serialization_failure: retryable, the session is fine
  '40P01': QUERY, // deadlock_detected
  '22012': QUERY, // division_by_zero: the statement's own arithmetic, not a bound value
};
const PG_CLASSES: Record<string, Rule> = {
  '08': UNREACHABLE, // connection exception
  '22': VALUE, // data exception: a value out of range (22003, 22008), not a date (22007), bad text (22P02)
  '23': CONSTRAINT,
  '28': UNREACHABLE, // invalid authorization
  '42': QUERY, // syntax error or access rule violation (unknown table/column)
  '44': CONSTRAINT, // with check option violation
};

/** MySQL / MariaDB: mysql2's symbolic code, or the server errno where MariaDB differs from MySQL. */
const MYSQL_CODES: Record<string, Rule> = {
  ER_DUP_ENTRY: DUPLICATE,
  ER_DUP_ENTRY_WITH_KEY_NAME: DUPLICATE,
  ER_DUP_KEY: DUPLICATE,
  ER_NO_REFERENCED_ROW: CONSTRAINT,
  ER_NO_REFERENCED_ROW_2: CONSTRAINT,
  ER_ROW_IS_REFERENCED: CONSTRAINT,
  ER_ROW_IS_REFERENCED_2: CONSTRAINT,
  ER_BAD_NULL_ERROR: CONSTRAINT,
  ER_CHECK_CONSTRAINT_VIOLATED: CONSTRAINT,
  ER_PARSE_ERROR: QUERY,
  ER_NO_SUCH_TABLE: QUERY,
  ER_BAD_FIELD_ERROR: QUERY,
  ER_BAD_TABLE_ERROR: QUERY,
  ER_NON_UNIQ_ERROR: QUERY,
  ER_WRONG_VALUE_COUNT_ON_ROW: QUERY,
  ER_WRONG_ARGUMENTS: QUERY,
  ER_TRUNCATED_WRONG_VALUE: VALUE, // incorrect datetime value (year 10000, February 30)
  ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: VALUE,
  ER_DATA_TOO_LONG: VALUE,
  ER_WARN_DATA_OUT_OF_RANGE: VALUE, // out of range value for column
  WARN_DATA_TRUNCATED: VALUE,
  ER_DATA_OUT_OF_RANGE: VALUE, // BIGINT value is out of range
  ER_WRONG_VALUE: VALUE,
  ER_WRONG_VALUE_FOR_TYPE: VALUE,
  ER_DATETIME_FUNCTION_OVERFLOW: VALUE,
  ER_DIVISION_BY_ZERO: QUERY,
  ER_TABLE_EXISTS_ERROR: QUERY,
  ER_SP_DOES_NOT_EXIST: QUERY,
  ER_TABLEACCESS_DENIED_ERROR: QUERY,
  ER_LOCK_DEADLOCK: QUERY,
  ER_LOCK_WAIT_TIMEOUT: QUERY,
  ER_QUERY_INTERRUPTED: TIMEOUT, // KILL QUERY
  ER_SERVER_SHUTDOWN: UNREACHABLE,
  ER_CON_COUNT_ERROR: UNREACHABLE,
  ER_ACCESS_DENIED_ERROR: UNREACHABLE,
  ER_BAD_DB_ERROR: UNREACHABLE,
  PROTOCOL_CONNECTION_LOST: BROKEN,
  PROTOCOL_SEQUENCE_TIMEOUT: BROKEN,
  '1927': BROKEN, // MariaDB ER_CONNECTION_KILLED
  '1969': TIMEOUT, // MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
  '4025': CONSTRAINT, // MariaDB ER_CONSTRAINT_FAILED (CHECK)
  '3819': CONSTRAINT, // MySQL ER_CHECK_CONSTRAINT_VIOLATED
};

/** better-sqlite3 extended result codes (SqliteError.code), and its own argument errors. */
const SQLITE_CODES: Record<string, Rule> = {
  SQLITE_CONSTRAINT_UNIQUE: DUPLICATE,
  SQLITE_CONSTRAINT_PRIMARYKEY: DUPLICATE,
  SQLITE_CONSTRAINT: CONSTRAINT,
  SQLITE_CONSTRAINT_NOTNULL: CONSTRAINT,
  SQLITE_CONSTRAINT_CHECK: CONSTRAINT,
  SQLITE_CONSTRAINT_FOREIGNKEY: CONSTRAINT,
  SQLITE_ERROR: QUERY, // syntax error, no such table/column
  SQLITE_MISMATCH: VALUE, // datatype mismatch: a bound value of the wrong type
  SQLITE_RANGE: QUERY, // a bind index out of range: the statement's own fault
  SQLITE_TOOBIG: VALUE,
  SQLITE_BUSY: QUERY, // busy_timeout expired: lock contention, the connection is fine
  SQLITE_LOCKED: QUERY,
  SQLITE_READONLY: QUERY,
  SQLITE_INTERRUPT: TIMEOUT,
  SQLITE_CANTOPEN: UNREACHABLE,
  SQLITE_NOTADB: UNREACHABLE,
  RangeError: QUERY, // better-sqlite3: wrong number of bound parameters
  TypeError: QUERY, // better-sqlite3: unbindable value, or a non-reader run as a reader
};

/** ODBC SQLSTATE (exact, then class), refined by the native error number for MySQL/MariaDB. */
const ODBC_CODES: Record<string, Rule> = {
  '23505': DUPLICATE, // PostgreSQL through ODBC
  HY008: TIMEOUT, // operation cancelled (our cancel)
  HYT00: TIMEOUT, // query timeout expired
  HYT01: UNREACHABLE, // connection timeout expired
  '40001': QUERY,
  '01000': QUERY,
  'native:1062': DUPLICATE, // MySQL/MariaDB ER_DUP_ENTRY (reported as SQLSTATE 23000)
  'native:1586': DUPLICATE,
  'native:2627': DUPLICATE, // SQL Server unique constraint / unique index
  'native:2601': DUPLICATE,
  'native:1317': TIMEOUT, // MySQL/MariaDB ER_QUERY_INTERRUPTED
  'native:1969': TIMEOUT, // MariaDB max_statement_time
  'native:1064': QUERY, // MySQL/MariaDB parse error
  'native:1264': VALUE, // out of range value for column
  'native:1292': VALUE, // incorrect datetime value
  'native:1366': VALUE, // incorrect value for column
  'native:1406': VALUE, // data too long
  'native:1690': VALUE, // BIGINT value is out of range
  'native:2006': BROKEN, // MySQL server has gone away
  'native:2013': BROKEN, // lost connection during query
  'native:1927': BROKEN, // MariaDB connection killed
};
const ODBC_CLASSES: Record<string, Rule> = {
  '08': UNREACHABLE,
  '22': VALUE, // data exception
  '23': CONSTRAINT,
  '28': UNREACHABLE,
  '42': QUERY,
  '07': QUERY, // dynamic SQL error: wrong parameter count
};

function prop(err: unknown, key: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[key] : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}
function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : 'unknown database error';
}

/** Finds the rule for an error and the code to report, per driver. */
function lookup(dbType: DbType, err: unknown): { rule?: Rule; code?: string } {
  const code = str(prop(err, 'code'));
  const net = code === undefined ? undefined : NETWORK[code];
  if (net) return { rule: net, code };
  switch (dbType) {
    case 'postgres':
      return { rule: code ? (PG_CODES[code] ?? PG_CLASSES[code.slice(0, 2)]) : undefined, code };
    case 'mysql': {
      const errno = str(prop(err, 'errno'));
      const rule = (errno ? MYSQL_CODES[errno] : undefined) ?? (code ? MYSQL_CODES[code] : undefined);
      // mysql2 flags errors after which the connection is dead
      if (rule && prop(err, 'fatal') === true) return { rule: { ...rule, usable: false }, code };
      return { rule: rule ?? (prop(err, 'fatal') === true ? BROKEN : undefined), code };
    }
    case 'sqlite':
      return { rule: (code ? SQLITE_CODES[code] : undefined) ?? SQLITE_CODES[str(prop(err, 'name')) ?? ''], code: code ?? str(prop(err, 'name')) };
    case 'odbc': {
      const first = (prop(err, 'odbcErrors') as unknown[] | undefined)?.[0];
      const state = str(prop(first, 'state'));
      const native = str(prop(first, 'code'));
      const rule =
        (native ? ODBC_CODES[`native:${native}`] : undefined) ??
        (state ? (ODBC_CODES[state] ?? ODBC_CLASSES[state.slice(0, 2)]) : undefined);
      return { rule, code: state ? `${state}${native ? `/${native}` : ''}` : code };
    }
  }
}

/** Classifies any error a driver raised while running a statement. */
export function classifyError(dbType: DbType, err: unknown): DbDriverError {
  if (err instanceof DbDriverError) return err;
  const { rule = BROKEN, code } = lookup(dbType, err);
  return new (rule.badValue ? DbValueError : DbDriverError)(messageOf(err), {
    kind: rule.kind,
    connectionUsable: rule.usable,
    duplicate: rule.duplicate,
    driverCode: code,
    cause: err,
  });
}

/** An error while opening a connection: the database is unreachable (or the wait timed out). */
export function connectError(dbType: DbType, err: unknown): DbDriverError {
  if (err instanceof DbDriverError && (err.kind === 'timeout' || err.kind === 'unreachable')) return err;
  const { code } = lookup(dbType, err);
  return new DbDriverError(messageOf(err), { kind: 'unreachable', connectionUsable: false, driverCode: code, cause: err });
}

/**
 * Driver codes of a connection lost under a statement: reset, closed by the server (administrator
 * shutdown, pg_terminate_backend, KILL CONNECTION), gone away. Not a timeout (the statement had its
 * time) and not the statement's fault: run again on another connection, it may well succeed.
 */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  '57P01', // PostgreSQL admin_shutdown, pg_terminate_backend
  '57P02', // crash_shutdown
  'PROTOCOL_CONNECTION_LOST', // mysql2: the server closed the connection (gone away, lost during query)
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  '1927', // MariaDB ER_CONNECTION_KILLED by number
  'WT_CLOSED', // the pooled connection was found dead before the statement was sent
  'WT_WORKER_EXIT', // a SQLite worker thread or process that died
]);
/** ODBC: communication link failure, and MySQL/MariaDB's gone away / lost connection by number. */
const TRANSIENT_ODBC = /^08S01|\/(2006|2013|1927)$/;
/** pg reports a socket closed under a query without a code. */
const PG_LOST = /^Connection terminated|not queryable/;

/** True when `err` says the connection was lost under the statement (see TRANSIENT_CODES). */
export function isTransientConnectionError(err: unknown): boolean {
  if (!(err instanceof DbDriverError) || err.kind === 'timeout' || err.kind === 'cancelled' || err.connectionUsable) return false;
  const code = err.driverCode;
  if (code !== undefined && (TRANSIENT_CODES.has(code) || TRANSIENT_ODBC.test(code))) return true;
  return code === undefined && PG_LOST.test(err.message);
}

/** Why a transaction may run again: the database rolled it back to resolve a conflict. */
export type TxRetryReason = 'serialization' | 'deadlock' | 'lock-timeout';

const TX_RETRY: Record<string, TxRetryReason> = {
  '40001': 'serialization', // PostgreSQL serialization_failure (and ODBC's SQLSTATE)
  '40P01': 'deadlock', // PostgreSQL deadlock_detected
  ER_LOCK_DEADLOCK: 'deadlock', // MySQL/MariaDB 1213
  ER_LOCK_WAIT_TIMEOUT: 'lock-timeout', // 1205
  '40001/1213': 'deadlock', // through ODBC
  'HY000/1205': 'lock-timeout',
};

/**
 * The reason a failed transaction may be run again from the start, or undefined: a serialization
 * failure or a deadlock (the database rolled the transaction back, so nothing of it was written),
 * or a lock wait timeout (the gateway rolls the transaction back on any error).
 */
export function txRetryReason(err: unknown): TxRetryReason | undefined {
  if (!(err instanceof DbDriverError) || !err.connectionUsable || err.driverCode === undefined) return undefined;
  return TX_RETRY[err.driverCode];
}

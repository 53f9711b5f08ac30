/**
 * SQL for the sample tcp_hourly table in each dialect. date_hour is epoch seconds in SQLite (as in
 * the original) and a UTC DATETIME/TIMESTAMP elsewhere, rendered 'YYYY-MM-DD HH:MM:SS'.
 * Every value is a bound parameter.
 */
import { epochToSqlDateTime } from '../db/sample-data.js';
import type { SqlParam, Statement } from '../db/types.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export interface TrafficFilter {
  port?: number;
  /** Epoch seconds, inclusive. */
  from?: number;
  /** Epoch seconds, inclusive. */
  to?: number;
  limit: number;
}

/** A counter as the drivers return it: a number, or the exact decimal text of one beyond 2^53. */
export type Counter = number | string;


function dateHourSelect(dialect: Dialect): string {
  switch (dialect) {
    case 'sqlite':
      return 'date_hour';
    case 'postgres':
      return `to_char(date_hour, 'YYYY-MM-DD HH24:MI:SS') AS date_hour`;
    case 'mysql':
      return `DATE_FORMAT(date_hour, '%Y-%m-%d %H:%i:%s') AS date_hour`;
  }
}

function timeParam(dialect: Dialect, epochSeconds: number): SqlParam {
  return dialect === 'sqlite' ? epochSeconds : epochToSqlDateTime(epochSeconds);
}

export function selectTraffic(dialect: Dialect, f: TrafficFilter): Statement {
  const where: string[] = [];
  const params: SqlParam[] = [];
  if (f.port !== undefined) {
    where.push('port = ?');
    params.push(f.port);
  }
  if (f.from !== undefined) {
    where.push('date_hour >= ?');
    params.push(timeParam(dialect, f.from));
  }
  if (f.to !== undefined) {
    where.push('date_hour <= ?');
    params.push(timeParam(dialect, f.to));
  }
  params.push(f.limit);
  const sql =
    `SELECT ${dateHourSelect(dialect)}, port, flows, pkts, bytes FROM tcp_hourly` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY tcp_hourly.date_hour, tcp_hourly.port LIMIT ?';
  return { sql, params };
}

/** Counters may be decimal text beyond 2^53 (bound as text; the database converts it exactly). */
export function insertTraffic(dialect: Dialect, row: { date_hour: number; port: number; flows: Counter; pkts: Counter; bytes: Counter }): Statement {
  return {
    sql: 'INSERT INTO tcp_hourly (date_hour, port, flows, pkts, bytes) VALUES (?, ?, ?, ?, ?)',
    params: [timeParam(dialect, row.date_hour), row.port, row.flows, row.pkts, row.bytes],
  };
}

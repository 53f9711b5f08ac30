/**
 * GET /traffic/compare: hourly traffic of SQLite and PostgreSQL side by side. The sample of a route
 * written in code against the plugin API (docs/plugin.md): it declares the two resources it holds
 * in `config.resources` and runs its statements through `req.db`, so it gets every limit, timeout,
 * log record and metric of a declared endpoint; only the merge is its own.
 */
import type { FastifyInstance } from 'fastify';
import { exactInteger } from '../db/exact-integer.js';
import type { Row } from '../db/types.js';
import { dataRouteErrors } from '../http/schemas.js';
import { JSON_MAX_LIMIT, toFilter, trafficQuerySchema, type TrafficQuery } from './traffic-params.js';
import { selectTraffic, type Counter } from './traffic-sql.js';

/**
 * A counter column. The drivers return integers beyond 2^53 as their exact decimal text, which a
 * plain `integer` schema would turn back into a rounded JSON number; a string stays a string.
 */
const counterSchema = {
  type: ['integer', 'string'],
  description: 'A JSON number; beyond 2^53, where JSON numbers lose precision, its exact decimal text',
} as const;
const countersSchema = { flows: counterSchema, pkts: counterSchema, bytes: counterSchema } as const;

export function trafficCompareRoute(app: FastifyInstance): void {
  app.get<{ Querystring: TrafficQuery }>(
    '/traffic/compare',
    {
      config: { resources: ['sqlite_traffic', 'pg_traffic'] },
      schema: {
        summary: 'Compare hourly traffic between SQLite and PostgreSQL',
        description:
          'Holds both resources at once (acquired in resource-id order, so concurrent requests cannot deadlock) and ' +
          'reports, per hour and port, the counters of each database and whether they match.',
        tags: ['traffic'],
        querystring: trafficQuerySchema(JSON_MAX_LIMIT),
        response: {
          200: {
            description: 'Per hour and port',
            type: 'array',
            items: {
              type: 'object',
              properties: {
                date_hour: { type: 'integer', description: 'epoch seconds' },
                port: { type: 'integer' },
                sqlite: { type: ['object', 'null'], properties: countersSchema },
                pg: { type: ['object', 'null'], properties: countersSchema },
                match: { type: 'boolean' },
              },
            },
          },
          ...dataRouteErrors('pg_traffic'),
        },
      },
    },
    async (req) => {
      const filter = toFilter(req.query);
      const db = req.db;
      const sqliteStmt = selectTraffic('sqlite', filter);
      const pgStmt = selectTraffic('postgres', filter);
      // One connection per resource, so the two statements may run at the same time.
      const [sqliteRows, pgRows] = await Promise.all([
        db.rows('sqlite_traffic', sqliteStmt.sql, sqliteStmt.params),
        db.rows('pg_traffic', pgStmt.sql, pgStmt.params),
      ]);
      await db.release();
      return compareRows(sqliteRows, pgRows);
    },
  );
}

interface Counters {
  flows: Counter;
  pkts: Counter;
  bytes: Counter;
}

interface CompareRow {
  date_hour: number;
  port: number;
  sqlite: Counters | null;
  pg: Counters | null;
  match: boolean;
}

/** Epoch seconds of a date_hour value from either database. */
function epochOf(v: unknown): number {
  if (typeof v === 'number') return v;
  return Math.floor(Date.parse(`${String(v).replace(' ', 'T')}Z`) / 1000);
}

/** Compared in the drivers' exact form: Number() would round the decimal text of a large counter. */
function counter(v: unknown): Counter {
  return typeof v === 'number' ? v : exactInteger(typeof v === 'bigint' ? v : String(v));
}

function counters(r: Row): Counters {
  return { flows: counter(r.flows), pkts: counter(r.pkts), bytes: counter(r.bytes) };
}

export function compareRows(sqliteRows: Row[], pgRows: Row[]): CompareRow[] {
  const byKey = new Map<string, CompareRow>();
  const entry = (r: Row) => {
    const date_hour = epochOf(r.date_hour);
    const port = Number(r.port);
    const key = `${date_hour}/${port}`;
    let e = byKey.get(key);
    if (!e) byKey.set(key, (e = { date_hour, port, sqlite: null, pg: null, match: false }));
    return e;
  };
  for (const r of sqliteRows) entry(r).sqlite = counters(r);
  for (const r of pgRows) entry(r).pg = counters(r);
  const out = [...byKey.values()].sort((a, b) => a.date_hour - b.date_hour || a.port - b.port);
  for (const e of out) {
    e.match = e.sqlite !== null && e.pg !== null && e.sqlite.flows === e.pg.flows && e.sqlite.pkts === e.pg.pkts && e.sqlite.bytes === e.pg.bytes;
  }
  return out;
}

/**
 * The original's `-dataframe` routes, kept so its clients keep working: the same rows as the
 * `-json` route of the same resource, but `date_hour` is always text, 'YYYY-MM-DD HH:MM:SS' UTC
 * (the original built a table in memory and rendered its timestamps that way). The original had
 * them for SQLite, MySQL and MySQL over ODBC only, so PostgreSQL has none.
 */
import type { FastifyInstance } from 'fastify';
import { epochToSqlDateTime } from '../db/sample-data.js';
import type { Row } from '../db/types.js';
import { dataRouteErrors, nativeJsonSerializer } from '../http/schemas.js';
import { RequestQueries, type QueryDeps } from '../query/query.js';
import { JSON_MAX_LIMIT, toFilter, trafficQuerySchema, type TrafficQuery } from './traffic-params.js';
import { selectTraffic } from './traffic-sql.js';
import { TRAFFIC_SOURCES } from './traffic.js';

/** The sources the original had -dataframe routes for. */
export const DATAFRAME_SOURCES = TRAFFIC_SOURCES.filter((s) => ['sqlite', 'mysql', 'mysql-odbc'].includes(s.prefix));

/** Drivers return counters beyond 2^53 as exact decimal text, which must stay a string. */
const counterSchema = {
  type: ['integer', 'string'],
  description: 'A JSON number; beyond 2^53, where JSON numbers lose precision, its exact decimal text',
} as const;

const rowSchema = {
  type: 'object',
  properties: {
    date_hour: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}$', description: 'Start of the hour, UTC, YYYY-MM-DD HH:MM:SS' },
    port: { type: 'integer' },
    flows: counterSchema,
    pkts: counterSchema,
    bytes: counterSchema,
  },
} as const;

/** SQLite keeps date_hour as epoch seconds; the other databases already select it as text. */
export function dateHourAsText(rows: Row[]): Row[] {
  for (const row of rows) {
    if (typeof row.date_hour === 'number') row.date_hour = epochToSqlDateTime(row.date_hour);
  }
  return rows;
}


export function dataframeRoutes(app: FastifyInstance, deps: QueryDeps): void {
  for (const { prefix, resourceId, dialect, label } of DATAFRAME_SOURCES) {
    app.get<{ Querystring: TrafficQuery }>(
      `/${prefix}-dataframe`,
      {
        config: { resources: [resourceId] },
        serializerCompiler: nativeJsonSerializer,
        schema: {
          summary: `Hourly TCP traffic from ${label}, as JSON with date_hour as text`,
          description:
            `Uses resource \`${resourceId}\`. The rows of \`/${prefix}-json\` (same parameters, ordered by hour, then port), ` +
            "with date_hour always 'YYYY-MM-DD HH:MM:SS' UTC. Kept for clients of the original's -dataframe route.",
          tags: ['traffic'],
          querystring: trafficQuerySchema(JSON_MAX_LIMIT),
          response: {
            200: {
              description: 'Rows',
              type: 'array',
              items: rowSchema,
              examples: [[{ date_hour: '2025-01-06 00:00:00', port: 22, flows: 31, pkts: 412, bytes: 50012 }]],
            },
            ...dataRouteErrors(resourceId),
          },
        },
      },
      async (req) => {
        const { sql, params } = selectTraffic(dialect, toFilter(req.query));
        const q = new RequestQueries(req.wt, deps.onQuery, deps.settings);
        const rows = await q.rows(resourceId, sql, params);
        await q.release();
        return dateHourAsText(rows);
      },
    );
  }
}

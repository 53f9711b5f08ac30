/**
 * Sample data routes over tcp_hourly: JSON and streamed PSV for each database, and transactional
 * batch inserts. The route that holds two resources at once is ./traffic-compare.ts.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Row } from '../db/types.js';
import { dataRouteErrors, errorResponse, nativeJsonSerializer } from '../http/schemas.js';
import { RequestQueries, type QueryDeps } from '../query/query.js';
import { JSON_MAX_LIMIT, MAX_EPOCH, MIN_EPOCH, STREAM_MAX_LIMIT, toFilter, trafficQuerySchema, type TrafficQuery } from './traffic-params.js';
import { insertTraffic, selectTraffic, TRAFFIC_COLUMNS, type Counter, type Dialect } from './traffic-sql.js';

export interface TrafficSource {
  /** Route prefix: /<prefix>-json, /<prefix>-psv. */
  prefix: string;
  resourceId: string;
  dialect: Dialect;
  label: string;
}

export const TRAFFIC_SOURCES: readonly TrafficSource[] = [
  { prefix: 'sqlite', resourceId: 'sqlite_traffic', dialect: 'sqlite', label: 'SQLite (embedded)' },
  { prefix: 'pg', resourceId: 'pg_traffic', dialect: 'postgres', label: 'PostgreSQL' },
  { prefix: 'mysql', resourceId: 'mysql_traffic', dialect: 'mysql', label: 'MySQL/MariaDB (native driver)' },
  { prefix: 'mysql-odbc', resourceId: 'mysql_odbc_traffic', dialect: 'mysql', label: 'MySQL/MariaDB through ODBC' },
];

/**
 * A counter column. The drivers return integers beyond 2^53 as their exact decimal text, which a
 * plain `integer` schema would turn back into a rounded JSON number; a string stays a string.
 */
const counterSchema = {
  type: ['integer', 'string'],
  description: 'A JSON number; beyond 2^53, where JSON numbers lose precision, its exact decimal text',
} as const;
const countersSchema = { flows: counterSchema, pkts: counterSchema, bytes: counterSchema } as const;

function rowSchema(dialect: Dialect) {
  return {
    type: 'object',
    properties: {
      date_hour:
        dialect === 'sqlite'
          ? { type: 'integer', description: 'Start of the hour, epoch seconds' }
          : { type: 'string', description: 'Start of the hour, UTC, YYYY-MM-DD HH:MM:SS' },
      port: { type: 'integer' },
      ...countersSchema,
    },
  } as const;
}

/** PSV: fields joined by '|', one row per line, no header; batched so a chunk is not a syscall per row. */
async function* psvChunks(rows: AsyncIterable<Row>): AsyncGenerator<string> {
  let chunk = '';
  for await (const row of rows) {
    let line = '';
    for (let i = 0; i < TRAFFIC_COLUMNS.length; i++) {
      const v = row[TRAFFIC_COLUMNS[i]];
      line += (i > 0 ? '|' : '') + (v === null || v === undefined ? '' : String(v));
    }
    chunk += line + '\n';
    if (chunk.length >= 16_384) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** BIGINT's largest value: counters are stored signed 64-bit in PostgreSQL and MySQL. */
export const MAX_COUNTER = '9223372036854775807';

/**
 * A counter in a POST body: a JSON number only up to 2^53 - 1 (JSON.parse has already rounded
 * anything larger, so such a number is refused rather than stored wrong), or decimal text up to
 * 2^63 - 1, which a BIGINT holds exactly (`x-maxDecimal` is checked by a keyword of src/app.ts).
 */
const counterInputSchema = {
  type: ['integer', 'string'],
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  pattern: '^(0|[1-9][0-9]{0,18})$',
  'x-maxDecimal': MAX_COUNTER,
  description: `A JSON number up to 2^53 - 1, or decimal text up to 2^63 - 1 (${MAX_COUNTER}) for larger counts`,
} as const;

const insertRowSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['date_hour', 'port', 'flows', 'pkts', 'bytes'],
  properties: {
    date_hour: {
      type: 'integer',
      minimum: MIN_EPOCH,
      maximum: MAX_EPOCH,
      multipleOf: 3600,
      description: 'Start of the hour, epoch seconds (UTC): a multiple of 3600 from 1970 to 9999',
    },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    flows: counterInputSchema,
    pkts: counterInputSchema,
    bytes: counterInputSchema,
  },
} as const;

interface InsertBody {
  rows: { date_hour: number; port: number; flows: Counter; pkts: Counter; bytes: Counter }[];
}

export function trafficRoutes(app: FastifyInstance, deps: QueryDeps): void {
  const queries = (req: FastifyRequest) => new RequestQueries(req.wt, deps.onQuery, deps.settings);

  for (const source of TRAFFIC_SOURCES) {
    const { resourceId, dialect } = source;
    const tags = ['traffic'];

    app.get<{ Querystring: TrafficQuery }>(
      `/${source.prefix}-json`,
      {
        config: { resources: [resourceId] },
        serializerCompiler: nativeJsonSerializer,
        schema: {
          summary: `Hourly TCP traffic from ${source.label}, as JSON`,
          description: `Uses resource \`${resourceId}\`. Rows ordered by hour, then port.`,
          tags,
          querystring: trafficQuerySchema(JSON_MAX_LIMIT),
          response: {
            200: {
              description: 'Rows',
              type: 'array',
              items: rowSchema(dialect),
              examples: [[{ date_hour: dialect === 'sqlite' ? 1736121600 : '2025-01-06 00:00:00', port: 22, flows: 31, pkts: 412, bytes: 50012 }]],
            },
            ...dataRouteErrors(resourceId),
          },
        },
      },
      async (req) => {
        const { sql, params } = selectTraffic(dialect, toFilter(req.query));
        const q = queries(req);
        const rows = await q.rows(resourceId, sql, params);
        await q.release();
        return rows;
      },
    );

    app.get<{ Querystring: TrafficQuery }>(
      `/${source.prefix}-psv`,
      {
        config: { resources: [resourceId] },
        schema: {
          summary: `Hourly TCP traffic from ${source.label}, streamed as pipe-separated values`,
          description:
            `Uses resource \`${resourceId}\`. One row per line: date_hour|port|flows|pkts|bytes, no header. ` +
            'Rows are streamed from a server-side cursor, so large limits do not grow memory.',
          tags,
          querystring: trafficQuerySchema(STREAM_MAX_LIMIT),
          produces: ['text/plain'],
          response: {
            200: { description: 'Rows, one per line', content: { 'text/plain': { schema: { type: 'string', example: '1736121600|22|31|412|50012\n' } } } },
            ...dataRouteErrors(resourceId),
          },
        },
      },
      async (req, reply) => {
        const { sql, params } = selectTraffic(dialect, toFilter(req.query));
        const rows = await queries(req).stream(resourceId, sql, params);
        reply.type('text/plain; charset=utf-8');
        return reply.send(Readable.from(psvChunks(rows), { objectMode: false }));
      },
    );
  }

  for (const source of TRAFFIC_SOURCES.filter((s) => s.prefix === 'pg' || s.prefix === 'mysql')) {
    const { resourceId, dialect } = source;
    app.post<{ Body: InsertBody }>(
      `/${source.prefix}/traffic`,
      {
        config: { resources: [resourceId] },
        schema: {
          summary: `Insert hourly traffic rows into ${source.label}, all or nothing`,
          description: 'The batch is inserted in one transaction: a duplicate (date_hour, port) answers 409 and nothing is written.',
          tags: ['traffic'],
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['rows'],
            properties: { rows: { type: 'array', minItems: 1, maxItems: 1000, items: insertRowSchema } },
          },
          response: {
            201: { description: 'Inserted', type: 'object', properties: { inserted: { type: 'integer' } }, examples: [{ inserted: 3 }] },
            409: errorResponse('A row with the same (date_hour, port) exists; nothing was written', 'duplicate row for resource pg_traffic: a row with the same key already exists'),
            ...dataRouteErrors(resourceId),
          },
        },
      },
      async (req, reply) => {
        const statements = req.body.rows.map((row) => insertTraffic(dialect, row));
        const q = queries(req);
        const counts = await q.transaction(resourceId, statements);
        await q.release();
        return reply.code(201).send({ inserted: counts.reduce((a, b) => a + b, 0) });
      },
    );
  }
}

/** Query-string parameters of the traffic routes: schema (validated by Fastify) and conversion. */
import { BadRequestError } from '../errors.js';
import { parseTime, TIME_PATTERN } from '../http/timestamps.js';
import type { TrafficFilter } from './traffic-sql.js';

export const JSON_MAX_LIMIT = 10_000;
/** Streamed routes hold one batch at a time, so they may return far more rows. */
export const STREAM_MAX_LIMIT = 10_000_000;

export function trafficQuerySchema(maxLimit: number) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Only rows of this TCP port' },
      from: {
        type: 'string',
        pattern: TIME_PATTERN,
        description: 'First hour, inclusive: epoch seconds or ISO 8601 (UTC unless an offset is given), 1970-01-01 to 9999-12-31',
        examples: ['2025-01-06T00:00:00Z'],
      },
      to: { type: 'string', pattern: TIME_PATTERN, description: 'Last hour, inclusive: epoch seconds or ISO 8601, 1970-01-01 to 9999-12-31', examples: ['1736200800'] },
      limit: { type: 'integer', minimum: 1, maximum: maxLimit, default: 10, description: 'Most rows returned' },
    },
  } as const;
}

export interface TrafficQuery {
  port?: number;
  from?: string;
  to?: string;
  limit: number;
}

export function toFilter(q: TrafficQuery): TrafficFilter {
  const from = q.from === undefined ? undefined : parseTime(q.from, 'querystring/from');
  const to = q.to === undefined ? undefined : parseTime(q.to, 'querystring/to');
  if (from !== undefined && to !== undefined && from > to) throw new BadRequestError('querystring/from must not be after querystring/to');
  return { port: q.port, from, to, limit: q.limit };
}

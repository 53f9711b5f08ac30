/** Query-string parameters of the traffic routes: schema (validated by Fastify) and conversion. */
import { BadRequestError } from '../errors.js';
import type { TrafficFilter } from './traffic-sql.js';

export const JSON_MAX_LIMIT = 10_000;
/** Streamed routes hold one batch at a time, so they may return far more rows. */
export const STREAM_MAX_LIMIT = 10_000_000;

const TIME_PATTERN = '^(\\d{1,11}|\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})?)?)$';

export function trafficQuerySchema(maxLimit: number) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Only rows of this TCP port' },
      from: { type: 'string', pattern: TIME_PATTERN, description: 'First hour, inclusive: epoch seconds or ISO 8601 (UTC unless an offset is given)', examples: ['2025-01-06T00:00:00Z'] },
      to: { type: 'string', pattern: TIME_PATTERN, description: 'Last hour, inclusive: epoch seconds or ISO 8601', examples: ['1736200800'] },
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

/** Epoch seconds from epoch digits or an ISO 8601 date/date-time (no offset = UTC). */
export function parseTime(value: string, field: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const iso = /[zZ]|[+-]\d{2}:?\d{2}$/.test(value) || !value.includes(':') ? value.replace(' ', 'T') : `${value.replace(' ', 'T')}Z`;
  const ms = Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(ms)) throw new BadRequestError(`querystring/${field} is not a valid date-time: ${value}`);
  return Math.floor(ms / 1000);
}

export function toFilter(q: TrafficQuery): TrafficFilter {
  const from = q.from === undefined ? undefined : parseTime(q.from, 'from');
  const to = q.to === undefined ? undefined : parseTime(q.to, 'to');
  if (from !== undefined && to !== undefined && from > to) throw new BadRequestError('querystring/from must not be after querystring/to');
  return { port: q.port, from, to, limit: q.limit };
}

/** Query-string parameters of the traffic routes: schema (validated by Fastify) and conversion. */
import { BadRequestError } from '../errors.js';
import type { TrafficFilter } from './traffic-sql.js';

export const JSON_MAX_LIMIT = 10_000;
/** Streamed routes hold one batch at a time, so they may return far more rows. */
export const STREAM_MAX_LIMIT = 10_000_000;

/**
 * The instants every database stores: MySQL's DATETIME ends at 9999-12-31 23:59:59, and the
 * POST routes take no hour before the epoch. Epoch seconds, inclusive.
 */
export const MIN_EPOCH = 0;
export const MAX_EPOCH = 253402300799;

/** Epoch digits (no leading zero), or an ISO 8601 date / date-time; parseTime checks the values. */
const TIME_PATTERN = '^(0|[1-9]\\d{0,11}|\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})?)?)$';
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|([+-])(\d{2}):?(\d{2}))?)?$/;

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

function isLeap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Epoch seconds of an ISO 8601 date/date-time (no offset = UTC), or undefined when a field is out
 * of its range. Checked field by field: Date.parse rolls 2025-02-30 over to March 2.
 */
function isoSeconds(value: string): number | undefined {
  const m = ISO.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((v) => (v === undefined ? undefined : Number(v))) as number[];
  const days = mo === 2 && isLeap(y) ? 29 : DAYS[mo - 1];
  if (days === undefined || d < 1 || d > days || h > 23 || mi > 59 || s > 59) return undefined;
  const offsetH = m[9] === undefined ? 0 : Number(m[9]);
  const offsetM = m[10] === undefined ? 0 : Number(m[10]);
  if (offsetH > 23 || offsetM > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // Date.UTC would read years 0-99 as 1900-1999
  date.setUTCHours(h, mi, s);
  return date.getTime() / 1000 - (m[8] === '-' ? -1 : 1) * (offsetH * 3600 + offsetM * 60);
}

/** Epoch seconds from epoch digits or an ISO 8601 date/date-time (no offset = UTC). */
export function parseTime(value: string, field: string): number {
  const seconds = /^\d+$/.test(value) ? Number(value) : isoSeconds(value);
  if (seconds === undefined) throw new BadRequestError(`querystring/${field} is not a valid date-time: ${value}`);
  if (seconds < MIN_EPOCH || seconds > MAX_EPOCH) {
    throw new BadRequestError(`querystring/${field} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z`);
  }
  return seconds;
}

export function toFilter(q: TrafficQuery): TrafficFilter {
  const from = q.from === undefined ? undefined : parseTime(q.from, 'from');
  const to = q.to === undefined ? undefined : parseTime(q.to, 'to');
  if (from !== undefined && to !== undefined && from > to) throw new BadRequestError('querystring/from must not be after querystring/to');
  return { port: q.port, from, to, limit: q.limit };
}

/**
 * WatchTower's own param types, rendered as the JSON schema Fastify validates and /docs shows:
 * - `timestamp`: epoch seconds or ISO 8601 text (src/http/timestamps.ts), bound as epoch seconds,
 *   so one param serves every database (the SQL converts: to_timestamp(:t), DATE_ADD(...)).
 * - `bigint`: a signed 64-bit integer (BIGINT in every database). JSON numbers are exact only up
 *   to 2^53, so larger values come as decimal text, bound as text (each database converts exactly).
 */
import { TIME_PATTERN } from '../http/timestamps.js';
import type { Location } from './declaration.js';

type Obj = Record<string, unknown>;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SIGNED = '^-?(0|[1-9][0-9]{0,18})$';
const UNSIGNED = '^(0|[1-9][0-9]{0,18})$';

/** The value of strict decimal text within 64 bits, else undefined. */
export function decimalText(v: string): bigint | undefined {
  if (!new RegExp(SIGNED).test(v)) return undefined;
  const n = BigInt(v);
  return n >= INT64_MIN && n <= INT64_MAX ? n : undefined;
}

function bigintSchema(schema: Obj, loc: Location): Obj {
  const { minimum, maximum, type: _type, ...rest } = schema;
  const min = minimum === undefined ? INT64_MIN : BigInt(minimum as string | number);
  const max = maximum === undefined ? INT64_MAX : BigInt(maximum as string | number);
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  const text = {
    pattern: min >= 0n ? UNSIGNED : SIGNED,
    'x-minDecimal': String(min),
    'x-maxDecimal': String(max),
  };
  const described = { description: `A whole number from ${min} to ${max}${loc === 'body' ? ': a JSON number up to 2^53, decimal text for any value' : ''}`, ...rest };
  if (loc !== 'body') return { type: 'string', ...text, ...described };
  // ajv's minimum/maximum apply to numbers only, the pattern and x-...Decimal to text only.
  const clamp = (v: bigint) => Number(v < -safe ? -safe : v > safe ? safe : v);
  return { type: ['integer', 'string'], minimum: clamp(min), maximum: clamp(max), ...text, ...described };
}

/** The JSON schema of a declared param's schema, own types rendered (recursively in arrays and objects). */
export function renderSchema(schema: Obj, loc: Location): Obj {
  switch (schema.type) {
    case 'timestamp':
      return {
        description: 'An instant: epoch seconds or ISO 8601 (UTC unless an offset is given), 1970-01-01 to 9999-12-31',
        ...schema,
        type: 'string',
        pattern: TIME_PATTERN,
      };
    case 'bigint':
      return bigintSchema(schema, loc);
    case 'array':
      return { ...schema, items: renderSchema(schema.items as Obj, loc) };
    case 'object': {
      const properties: Obj = {};
      for (const [k, v] of Object.entries(schema.properties as Obj)) properties[k] = renderSchema(v as Obj, loc);
      return { ...schema, properties };
    }
    default:
      return schema;
  }
}

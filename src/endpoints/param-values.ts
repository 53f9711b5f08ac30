/**
 * Param values the validator cannot finish: `timestamp` text becomes epoch seconds (400 naming the
 * param when the date does not exist), and `not_before` pairs are compared. Runs after validation
 * and before any slot or connection is taken (a route preHandler precedes the acquire hook).
 */
import type { FastifyRequest, preHandlerHookHandler } from 'fastify';
import { BadRequestError } from '../errors.js';
import { parseTime } from '../http/timestamps.js';
import type { Endpoint, Location, ParamDecl } from './declaration.js';

type Obj = Record<string, unknown>;

/** Where a param's value is, and its name in a 400 (the validator's words: querystring/from). */
const DATA_VAR: Record<Location, string> = { query: 'querystring', path: 'params', header: 'headers', body: 'body' };

function holder(req: FastifyRequest, loc: Location): Obj | undefined {
  const o = loc === 'query' ? req.query : loc === 'path' ? req.params : loc === 'header' ? req.headers : req.body;
  return typeof o === 'object' && o !== null ? (o as Obj) : undefined;
}

function keyOf(p: ParamDecl): string {
  return p.in === 'header' ? (p.header ?? p.name) : p.name;
}

export function paramValuesHook(ep: Endpoint): preHandlerHookHandler | undefined {
  const times = ep.params.filter((p) => p.schema.type === 'timestamp');
  const pairs = ep.params.filter((p) => p.notBefore !== undefined).map((p) => [ep.params.find((o) => o.name === p.notBefore)!, p] as const);
  if (times.length === 0 && pairs.length === 0) return undefined;
  return (req, _reply, done) => {
    try {
      for (const p of times) {
        const o = holder(req, p.in);
        const v = o?.[keyOf(p)];
        if (typeof v === 'string') o![keyOf(p)] = parseTime(v, `${DATA_VAR[p.in]}/${keyOf(p)}`);
      }
      for (const [low, high] of pairs) {
        const a = holder(req, low.in)?.[keyOf(low)];
        const b = holder(req, high.in)?.[keyOf(high)];
        if (typeof a === 'number' && typeof b === 'number' && a > b) {
          throw new BadRequestError(`${DATA_VAR[low.in]}/${keyOf(low)} must not be after ${DATA_VAR[high.in]}/${keyOf(high)}`);
        }
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  };
}

/**
 * What the request parsers and the validator let through. Fastify's defaults are lenient: ajv
 * coerces types (a body's `null` became 0, `true` 1, `[5]` 5; the query string's "Infinity",
 * "0x16" or " 22" became numbers, and a coerced Infinity skips minimum/maximum), text/plain
 * bodies are parsed as strings, and a `__proto__` key is reported as invalid JSON. Here:
 * - the validator never coerces (app.ts); an integer query parameter is turned into a number only
 *   from strict decimal text, before validation, and must declare safe bounds;
 * - JSON is the only body type (others get 415), and a key that could reach an object's
 *   prototype is refused by name;
 * - `x-minDecimal`/`x-maxDecimal` bound decimal text beyond 2^53 (a BIGINT), which no number can.
 */
import { errorCodes, type FastifyInstance, type FastifyRequest, type preValidationHookHandler } from 'fastify';
import { BadRequestError } from '../errors.js';

/** Decimal digits, an optional minus, no leading zero, sign, space, exponent, radix or fraction. */
const STRICT_INTEGER = /^-?(0|[1-9][0-9]*)$/;

interface PropertySchema {
  type?: unknown;
  minimum?: unknown;
  maximum?: unknown;
}

/**
 * The integer parameters of a route's query-string schema. Each must have safe integer bounds,
 * so every value that passes is a finite safe integer; a `number` parameter (fractions, no
 * strict form defined here) is refused at start-up rather than let through unchecked.
 */
export function integerParams(route: string, schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, PropertySchema> } | undefined)?.properties ?? {};
  const names: string[] = [];
  for (const [name, p] of Object.entries(properties)) {
    const types = Array.isArray(p.type) ? (p.type as unknown[]) : [p.type];
    if (!types.includes('integer') && !types.includes('number')) continue;
    if (p.type !== 'integer' || !Number.isSafeInteger(p.minimum) || !Number.isSafeInteger(p.maximum)) {
      throw new Error(`${route}: querystring/${name} must be of type integer with safe integer minimum and maximum`);
    }
    names.push(name);
  }
  return names;
}

/**
 * Turns the named values of `o` that are strict decimal text into numbers; anything else stays
 * text, which the non-coercing validator refuses. (Very long digit strings give Infinity, refused
 * the same way as "must be integer".)
 */
export function integersFromText(o: Record<string, unknown>, names: readonly string[]): void {
  for (const name of names) {
    const v = o[name];
    if (typeof v === 'string' && STRICT_INTEGER.test(v)) o[name] = Number(v);
  }
}

/** Runs before validation on the query string. */
function strictIntegers(names: readonly string[]): preValidationHookHandler {
  return (req, _reply, done) => {
    integersFromText(req.query as Record<string, unknown>, names);
    done();
  };
}

export function registerStrictQueryIntegers(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const names = integerParams(`${route.method} ${route.url}`, route.schema?.querystring);
    if (names.length === 0) return;
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [strictIntegers(names), ...existing];
  });
}

/** Keys JSON.parse keeps as own properties but that reach a prototype once merged or assigned. */
function forbiddenKey(key: string, value: unknown): string | undefined {
  if (key === '__proto__') return '__proto__';
  if (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype')) return 'constructor.prototype';
  return undefined;
}

/** JSON.parse that refuses prototype keys by name (a reviver, only when the text could hold one). */
export function parseJsonBody(text: string): unknown {
  if (!/proto|constructor|\\u/.test(text)) return JSON.parse(text);
  let found: string | undefined;
  const parsed: unknown = JSON.parse(text, (key, value: unknown) => {
    found ??= forbiddenKey(key, value);
    return value;
  });
  if (found !== undefined) throw new BadRequestError(`body must not contain the key ${found}`);
  return parsed;
}

export function registerBodyParsers(app: FastifyInstance): void {
  // Without a parser, Fastify answers 415 Unsupported Media Type.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req: FastifyRequest, body: string | Buffer, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.length === 0) return done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), undefined);
    let parsed: unknown;
    try {
      parsed = parseJsonBody(text);
    } catch (err) {
      return done(err instanceof BadRequestError ? err : new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined);
    }
    done(null, parsed);
  });
}

type KeywordValidate = ((schema: string, data: string) => boolean) & { errors?: { keyword: string; message: string; params: Record<string, unknown> }[] };

/**
 * `x-minDecimal` / `x-maxDecimal: "<digits>"`: decimal text (optionally negative) within that bound,
 * compared as BigInt: no number holds a BIGINT beyond 2^53. Other text is the pattern keyword's to report.
 */
export function addDecimalKeywords(ajv: {
  addKeyword(def: { keyword: string; type: 'string'; schemaType: 'string'; errors: true; validate: KeywordValidate }): unknown;
}): void {
  for (const [keyword, relation] of [['x-maxDecimal', '<='], ['x-minDecimal', '>=']] as const) {
    const validate: KeywordValidate = (bound, data) => {
      validate.errors = undefined;
      if (!/^-?\d+$/.test(data)) return true;
      // Beyond 40 digits the sign decides (bounds are 64-bit), and BigInt() never reads thousands of digits.
      const value = data.length > 40 ? (data.startsWith('-') ? -(10n ** 40n) : 10n ** 40n) : BigInt(data);
      const ok = relation === '<=' ? value <= BigInt(bound) : value >= BigInt(bound);
      if (ok) return true;
      validate.errors = [{ keyword, message: `must be ${relation} ${bound}`, params: { limit: bound } }];
      return false;
    };
    ajv.addKeyword({ keyword, type: 'string', schemaType: 'string', errors: true, validate });
  }
}

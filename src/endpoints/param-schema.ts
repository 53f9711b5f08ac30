/**
 * The JSON schema of a declared param, checked key by key: a subset Fastify's validator and the
 * OpenAPI document both read the same way, so a param means one thing in the 400s and in /docs.
 * Two types are WatchTower's own (src/endpoints/param-types.ts renders them as JSON schema):
 * `timestamp` (epoch seconds or ISO 8601 text, bound as epoch seconds) and `bigint` (a signed
 * 64-bit integer: a JSON number up to 2^53, decimal text beyond).
 */
import type { Location } from './declaration.js';
import { decimalText } from './param-types.js';

type Obj = Record<string, unknown>;
type Add = (key: string, message: string) => void;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const TYPES_AT: Record<Location, readonly string[]> = {
  // The query, path and headers are text: integers are read strictly, other types would need coercion.
  query: ['string', 'integer', 'bigint', 'timestamp'],
  path: ['string', 'integer', 'bigint', 'timestamp'],
  header: ['string', 'integer', 'bigint', 'timestamp'],
  body: ['string', 'integer', 'bigint', 'timestamp', 'number', 'boolean', 'array'],
};
const COMMON = ['type', 'description', 'default', 'enum', 'examples'];
const KEYS_OF: Record<string, readonly string[]> = {
  string: [...COMMON, 'minLength', 'maxLength', 'pattern', 'format'],
  integer: [...COMMON, 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  number: [...COMMON, 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  boolean: COMMON,
  bigint: [...COMMON, 'minimum', 'maximum'],
  timestamp: [...COMMON],
  array: ['type', 'description', 'items', 'minItems', 'maxItems'],
  object: ['type', 'description', 'properties', 'required'],
};
/** Formats Fastify's validator knows (ajv-formats). */
const FORMATS = ['date', 'time', 'date-time', 'email', 'hostname', 'ipv4', 'ipv6', 'uri', 'uuid'];

function fits(type: string, v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isSafeInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'bigint':
      return Number.isSafeInteger(v) || (typeof v === 'string' && decimalText(v) !== undefined);
    case 'timestamp':
      return typeof v === 'string';
    default:
      return false;
  }
}

/** Checks one schema; `types` are those allowed here. */
function checkSchema(schema: Obj, types: readonly string[], add: Add, depth: number): void {
  const type = schema.type;
  if (typeof type !== 'string' || !types.includes(type)) {
    add('type', `must be one of ${types.join(', ')}`);
    return;
  }
  for (const k of Object.keys(schema)) if (!KEYS_OF[type].includes(k)) add(k, `is not a key of a ${type} param`);
  if (type === 'bigint') {
    // Bounds beyond 2^53 are written as decimal text, which no YAML number holds exactly.
    for (const k of ['minimum', 'maximum']) if (schema[k] !== undefined && !fits('bigint', schema[k])) add(k, 'must be a whole number (decimal text beyond 2^53)');
    const [min, max] = [schema.minimum, schema.maximum].map((v) => (v === undefined || !fits('bigint', v) ? undefined : BigInt(v as string | number)));
    if (min !== undefined && max !== undefined && min > max) add('minimum', 'is above maximum');
  } else {
    for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']) {
      if (schema[k] !== undefined && !(typeof schema[k] === 'number' && Number.isFinite(schema[k]))) add(k, 'must be a number');
    }
    if (typeof schema.minimum === 'number' && typeof schema.maximum === 'number' && schema.minimum > schema.maximum) add('minimum', 'is above maximum');
  }
  for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems']) {
    if (schema[k] !== undefined && !Number.isSafeInteger(schema[k])) add(k, 'must be a whole number');
  }
  if (schema.pattern !== undefined) {
    try {
      new RegExp(schema.pattern as string, 'u');
      if (typeof schema.pattern !== 'string') throw new Error();
    } catch {
      add('pattern', 'must be a valid regular expression');
    }
  }
  if (schema.format !== undefined && !FORMATS.includes(schema.format as string)) add('format', `must be one of ${FORMATS.join(', ')}`);
  if (schema.description !== undefined && typeof schema.description !== 'string') add('description', 'must be text');
  if (schema.enum !== undefined) {
    if (!Array.isArray(schema.enum) || schema.enum.length === 0 || !schema.enum.every((v) => fits(type, v))) add('enum', `must be a list of ${type} values`);
  }
  if (schema.default !== undefined) {
    if (!fits(type, schema.default)) add('default', `must be a ${type}`);
    else if (Array.isArray(schema.enum) && !schema.enum.includes(schema.default)) add('default', 'must be one of enum');
  }
  if (schema.examples !== undefined && (!Array.isArray(schema.examples) || !schema.examples.every((v) => fits(type, v)))) {
    add('examples', `must be a list of ${type} values`);
  }
  if (type === 'array') {
    if (!isObj(schema.items)) add('items', 'must be the schema of one item');
    else checkSchema(schema.items, depth === 0 ? ['string', 'integer', 'bigint', 'number', 'boolean', 'object'] : [], (k, m) => add(`items.${k}`, m), depth + 1);
  }
  if (type === 'object') {
    if (!isObj(schema.properties) || Object.keys(schema.properties).length === 0) {
      add('properties', 'must be a mapping of field name to schema');
      return;
    }
    for (const [name, p] of Object.entries(schema.properties)) {
      if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(name)) add(`properties.${name}`, 'a field name is a letter then letters, digits or _');
      else if (!isObj(p)) add(`properties.${name}`, 'must be a schema');
      else checkSchema(p, ['string', 'integer', 'bigint', 'number', 'boolean'], (k, m) => add(`properties.${name}.${k}`, m), depth + 1);
    }
    const req = schema.required;
    if (req !== undefined && (!Array.isArray(req) || !req.every((r) => typeof r === 'string' && Object.hasOwn(schema.properties as Obj, r)))) {
      add('required', 'must list fields of properties');
    }
  }
}

/** Checks a param's schema (its keys other than in, required and header). */
export function checkParamSchema(schema: Obj, loc: Location, add: Add): void {
  checkSchema(schema, TYPES_AT[loc], add, 0);
  // Strict integer reading (src/http/strict-input.ts) needs safe bounds, so every value that passes is exact.
  if (loc !== 'body' && schema.type === 'integer' && (!Number.isSafeInteger(schema.minimum) || !Number.isSafeInteger(schema.maximum))) {
    add('', `an integer ${loc} param needs whole-number minimum and maximum`);
  }
}

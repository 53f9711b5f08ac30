import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../src/errors.js';
import { addDecimalKeywords, integerParams, parseJsonBody, registerStrictQueryIntegers } from '../../src/http/strict-input.js';

describe('integer query parameters', () => {
  it('must declare safe bounds, and a number parameter is refused when the route is added', () => {
    const schema = (p: Record<string, unknown>) => ({ type: 'object', properties: { n: p, s: { type: 'string' } } });
    expect(integerParams('GET /x', schema({ type: 'integer', minimum: 1, maximum: 10 }))).toEqual(['n']);
    for (const bad of [{ type: 'integer' }, { type: 'integer', minimum: 1 }, { type: 'integer', minimum: 0, maximum: 2 ** 60 }, { type: 'number', minimum: 0, maximum: 1 }, { type: ['integer', 'string'], minimum: 0, maximum: 1 }]) {
      expect(() => integerParams('GET /x', schema(bad)), JSON.stringify(bad)).toThrow('GET /x: querystring/n must be of type integer with safe integer minimum and maximum');
    }
    const app = Fastify();
    registerStrictQueryIntegers(app);
    expect(() => app.get('/y', { schema: { querystring: schema({ type: 'number' }) } }, async () => 'ok')).toThrow(/querystring\/n/);
  });

  it('turns only strict decimal text into numbers, and the validator coerces nothing else', async () => {
    const app = Fastify({ ajv: { customOptions: { coerceTypes: false } } });
    registerStrictQueryIntegers(app);
    app.get('/n', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer', minimum: -5, maximum: 100 } } } } }, async (req) => req.query);
    const n = async (v: string) => app.inject({ url: `/n?n=${v}` });
    expect((await n('42')).json()).toEqual({ n: 42 });
    expect((await n('-3')).json()).toEqual({ n: -3 });
    for (const v of ['Infinity', '1e400', '0x16', '1e3', '%2B22', '%2022', '022', '22.0', '', '1&n=2']) expect((await n(v)).statusCode, v).toBe(400);
    expect((await n('99999999999999999999')).json().message).toMatch(/must be <= 100/);
  });
});

describe('JSON bodies', () => {
  it('refuse keys that reach a prototype, by name, and parse everything else as JSON.parse does', () => {
    for (const [text, key] of [
      ['{"__proto__":{"x":1}}', '__proto__'],
      ['{"a":[{"b":{"__proto__":null}}]}', '__proto__'],
      ['{"\\u005f_proto__":1}', '__proto__'],
      ['{"constructor":{"prototype":{}}}', 'constructor.prototype'],
    ]) {
      expect(() => parseJsonBody(text), text).toThrow(BadRequestError);
      expect(() => parseJsonBody(text), text).toThrow(`body must not contain the key ${key}`);
    }
    expect(parseJsonBody('{"constructor":"ok","proto":1,"t":"\\u0041"}')).toEqual({ constructor: 'ok', proto: 1, t: 'A' });
    expect(() => parseJsonBody('{"a":')).toThrow(SyntaxError);
  });
});

describe('x-maxDecimal', () => {
  it('bounds decimal text beyond any exact number', async () => {
    const app = Fastify({ ajv: { customOptions: { coerceTypes: false }, onCreate: (ajv) => addDecimalKeywords(ajv) } });
    app.post('/c', { schema: { body: { type: 'object', properties: { c: { type: 'string', 'x-maxDecimal': '9223372036854775807' } } } } }, async () => 'ok');
    const post = (c: string) => app.inject({ method: 'POST', url: '/c', payload: { c } });
    expect((await post('9223372036854775807')).statusCode).toBe(200);
    expect((await post('0')).statusCode).toBe(200);
    const over = await post('9223372036854775808');
    expect(over.statusCode).toBe(400);
    expect(over.json().message).toBe('body/c must be <= 9223372036854775807');
    expect((await post('1'.repeat(5000))).statusCode).toBe(400);
  });
});

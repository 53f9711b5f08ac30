/**
 * The binder built once per declared endpoint (src/endpoints/binder.ts) against the way values
 * were bound before it: an object of every value a statement may bind (params by location, the
 * reserved ones, the caller's identity), each placeholder name looked up in it. Requests of every
 * shape give the same statements and parameters.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { addIdentity, claimParams } from '../../src/auth/sql-identity.js';
import type { Caller } from '../../src/auth/caller.js';
import type { SqlParam, Statement } from '../../src/db/types.js';
import { compileBinder, sqlTime } from '../../src/endpoints/binder.js';
import type { CompiledStatement, Endpoint, ParamDecl } from '../../src/endpoints/declaration.js';

type Obj = Record<string, unknown>;

/** The binding as first written in src/endpoints/routes.ts (valuesOf, toParam, bind). */
function reference(ep: Endpoint, req: FastifyRequest): Statement[] {
  const values: Obj = { _cid: req.wt.cid, _client: req.wt.client, _now: sqlTime(performance.timeOrigin + req.wt.start) };
  addIdentity(values, req.wt.caller, claimParams(ep.statements.flatMap((s) => s.names)));
  for (const p of ep.params) {
    const from = p.in === 'query' ? req.query : p.in === 'path' ? req.params : p.in === 'body' ? req.body : req.headers;
    values[p.name] = (from as Obj | undefined)?.[p.in === 'header' ? (p.header ?? p.name) : p.name];
  }
  const toParam = (v: unknown, stmt: CompiledStatement): SqlParam => {
    if (v === undefined || v === null) return null;
    if (typeof v === 'boolean' && stmt.dbType === 'sqlite') return v ? 1 : 0;
    return v as SqlParam;
  };
  const out: Statement[] = [];
  for (const stmt of ep.statements) {
    if (stmt.each === undefined) {
      out.push({ sql: stmt.sql, params: stmt.names.map((n) => toParam(values[n], stmt)) });
      continue;
    }
    const fields = new Set(Object.keys(((ep.params.find((p) => p.name === stmt.each)?.schema.items as Obj).properties as Obj) ?? {}));
    for (const item of (values[stmt.each] as Obj[] | undefined) ?? []) {
      out.push({ sql: stmt.sql, params: stmt.names.map((n) => toParam(fields.has(n) ? item[n] : values[n], stmt)) });
    }
  }
  return out;
}

const param = (name: string, loc: ParamDecl['in'], schema: Obj = { type: 'string' }, header?: string): ParamDecl => ({ name, in: loc, required: false, schema, ...(header ? { header } : {}) });

function endpoint(dbType: CompiledStatement['dbType'], params: ParamDecl[], statements: Omit<CompiledStatement, 'resource' | 'dbType'>[]): Endpoint {
  return {
    file: 'test.yaml',
    method: 'POST',
    path: '/x',
    tags: [],
    resources: ['r'],
    params,
    statements: statements.map((s) => ({ resource: 'r', dbType, ...s })),
    result: 'transaction',
    formats: ['json'],
    conflict: 409,
    status: 200,
    countAs: 'count',
  };
}

const CALLER: Caller = { id: 'key-1', via: 'api-key', roles: ['reader', 'ops'], claims: { tenant: 'acme', level: 3, ok: true, tags: ['a'], nested: { b: 1 }, bad: NaN } };

function request(query: Obj, params: Obj, body: unknown, headers: Obj, caller?: Caller): FastifyRequest {
  return { query, params, body, headers, wt: { cid: 'cid-1', client: '127.0.0.1', start: 1234.5678, caller } } as unknown as FastifyRequest;
}

const PARAMS = [
  param('q', 'query'),
  param('flag', 'query', { type: 'boolean' }),
  param('id', 'path', { type: 'integer' }),
  param('b', 'body'),
  param('h', 'header', { type: 'string' }, 'x-h'),
  param('items', 'body', { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, on: { type: 'boolean' }, q: { type: 'string' } } } }),
];
const NAMES = ['q', 'flag', 'id', 'b', 'h', '_cid', '_client', '_now', '_caller', '_roles', '_claim_tenant', '_claim_level', '_claim_ok', '_claim_tags', '_claim_nested', '_claim_bad', '_claim_none', 'q'];

const REQUESTS: FastifyRequest[] = [
  request({ q: 'x', flag: true }, { id: 7 }, { b: 'body', items: [{ name: 'a', on: true }, { name: 'b', on: false, q: 'item q' }, {}] }, { 'x-h': 'hv' }, CALLER),
  request({}, {}, undefined, {}),
  request({ flag: false }, { id: 0 }, { b: null, items: [] }, { 'x-h': '' }),
  request({ q: "'; DROP TABLE x; --" }, { id: -1 }, { items: [{ name: null, on: null }] }, {}, { ...CALLER, roles: [], claims: {} }),
];

describe('the binder compiled per endpoint binds what the by-name lookup bound', () => {
  for (const dbType of ['sqlite', 'postgres', 'mysql'] as const) {
    it(`${dbType}: every location, reserved values, identity and claims, booleans, missing values`, () => {
      const ep = endpoint(dbType, PARAMS, [
        { sql: 'SELECT 1', names: NAMES },
        { sql: 'INSERT each', names: ['name', 'on', 'q', 'id', '_cid', 'name'], each: 'items' },
        { sql: 'SELECT 2', names: [] },
      ]);
      const bind = compileBinder(ep);
      for (const req of REQUESTS) expect(bind(req)).toEqual(reference(ep, req));
    });
  }

  it('a single statement without each (the rows, one and stream endpoints)', () => {
    const ep = endpoint('sqlite', PARAMS.slice(0, 3), [{ sql: 'SELECT ?', names: ['id', 'q', 'flag', '_now'] }]);
    const bind = compileBinder(ep);
    for (const req of REQUESTS) expect(bind(req)).toEqual(reference(ep, req));
    expect(bind(REQUESTS[0])).toEqual([{ sql: 'SELECT ?', params: [7, 'x', 1, sqlTime(performance.timeOrigin + 1234.5678)] }]);
  });

  it(':_now is the request start as UTC text every database reads', () => {
    expect(sqlTime(Date.UTC(2025, 0, 6, 12, 30, 1, 5))).toBe('2025-01-06 12:30:01.005');
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildSettings } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { loadEndpoints } from '../../src/endpoints/load.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-endpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function settings(endpoints: string[]) {
  return buildSettings(
    {
      resource_ids: ['lite', 'pgdb'],
      resources: { pgdb: { db_default_query_timeout: 5 } },
      secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'x.db') }, pgdb: { db_type: 'postgres', db_name: 'x' } },
      endpoints,
    },
    {},
    { env: {} },
  );
}

function file(name: string, endpoints: unknown[]): string {
  const path = join(dir, name);
  writeFileSync(path, stringify({ endpoints }));
  return path;
}

function problems(endpoints: string[]): string[] {
  try {
    loadEndpoints(settings(endpoints));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.replace(/^endpoint files refused, \d+ problem\(s\): /, '').split('; ');
  }
  return [];
}

const good = {
  method: 'GET',
  path: '/items/:id',
  resources: ['pgdb'],
  params: { id: { in: 'path', type: 'integer', minimum: 1, maximum: 1000 } },
  statements: [{ sql: { postgres: 'SELECT :id::int AS id, :_cid AS cid' } }],
  result: 'one',
  timeout: 2,
};

describe('endpoint files', () => {
  it('loads a good file: SQL compiled for the resource, params and defaults filled in', () => {
    const f = file('good.yaml', [good]);
    const [ep] = loadEndpoints(settings([join(dir, 'good*.yaml')]));
    expect(ep).toMatchObject({
      file: f,
      method: 'GET',
      path: '/items/:id',
      resources: ['pgdb'],
      result: 'one',
      formats: ['json'],
      conflict: 409,
      status: 200,
      timeout: 2,
      statements: [{ resource: 'pgdb', dbType: 'postgres', sql: 'SELECT ?::int AS id, ? AS cid', names: ['id', '_cid'] }],
      params: [{ name: 'id', in: 'path', required: true }],
    });
  });

  it('reports every problem at once, each naming file, endpoint and key', () => {
    const a = file('a.yaml', [
      { ...good, resources: ['nosuch'], statements: [{ resource: 'nosuch', sql: 'SELECT 1' }] },
      { ...good, path: '/things', params: { x: { type: 'integer', minimum: 0, maximum: 9 } }, statements: [{ sql: 'SELECT :y' }], result: 'rows' },
      { ...good, path: '/bad-schema', params: { s: { type: 'string', pattern: '(', minimum: 'x' } }, statements: [{ sql: { postgres: 'SELECT :s' } }] },
      { ...good, path: '/metrics/mine', params: {}, statements: [{ sql: { postgres: 'SELECT 1' } }] },
      { ...good, path: '/docs', params: {}, statements: [{ sql: { postgres: 'SELECT 1' } }] },
      { ...good, path: '/slow', params: {}, statements: [{ sql: { postgres: 'SELECT 1' } }], timeout: 6 },
      { ...good, path: '/nodialect', params: {}, statements: [{ sql: { mysql: 'SELECT 1' } }] },
      { ...good, path: '/q', params: { n: { type: 'integer' } }, statements: [{ sql: { postgres: 'SELECT :n, :_user' } }] },
    ]);
    const b = file('b.yaml', [{ ...good, path: '/items/:other', params: { other: { in: 'path', type: 'integer', minimum: 1, maximum: 2 } }, statements: [{ sql: { postgres: 'SELECT :other' } }] }]);
    const list = problems([join(dir, '[ab].yaml').replace('[ab]', '?')]);
    expect(list).toEqual([
      `${a}: GET /items/:id: resources: unknown resource nosuch (no secure.nosuch section)`,
      `${a}: GET /things: statements[0].sql: placeholder :y has no param`,
      `${a}: GET /things: params.x: is never used by a statement`,
      `${a}: GET /bad-schema: params.s.minimum: is not a key of a string param`,
      `${a}: GET /bad-schema: params.s.minimum: must be a number`,
      `${a}: GET /bad-schema: params.s.pattern: must be a valid regular expression`,
      `${a}: GET /metrics/mine: path: shadows the gateway's own /metrics`,
      `${a}: GET /docs: path: shadows the gateway's own /docs`,
      `${a}: GET /slow: timeout: 6 s is above resource pgdb's db_default_query_timeout (5 s)`,
      `${a}: GET /nodialect: statements[0].sql: has no postgres variant for resource pgdb`,
      `${a}: GET /q: params.n: an integer query param needs whole-number minimum and maximum`,
      `${a}: GET /q: statements[0].sql: :_user is not one of the reserved :_cid, :_client, :_now, :_caller, :_roles or :_claim_<claim>`,
      `${b}: GET /items/:other: path: duplicate method and path: already declared at ${a}: GET /items/:id`,
    ]);
  });

  it('names a pattern that matches nothing, a file that is not YAML, and unknown keys', () => {
    const bad = join(dir, 'broken.yml');
    writeFileSync(bad, 'endpoints: [\n');
    const c = file('c.yml', [{ ...good, path: '/c', param: {}, params: {}, statements: [{ sql: { postgres: 'SELECT 1' } }], formats: ['json', 'xml'] }]);
    const list = problems([join(dir, 'none*.yaml'), bad, c]);
    expect(list[0]).toBe(`endpoints pattern ${join(dir, 'none*.yaml')}: matches no file`);
    expect(list[1]).toMatch(new RegExp(`^${bad}: config file .* is not valid YAML`));
    expect(list.slice(2)).toEqual([`${c}: GET /c: param: unknown key`, `${c}: GET /c: formats: must be a list of json, ndjson, csv, psv`]);
  });

  it('checks declared columns', () => {
    const c = file('cols.yaml', [
      { ...good, columns: { id: 'integer', cid: ['string', 'null'], x: 'text', y: { type: 'string', min: 1 } } },
      { ...good, path: '/w/:id', method: 'DELETE', result: 'exec', columns: { id: 'integer' } },
    ]);
    expect(problems([c])).toEqual([
      `${c}: GET /items/:id: columns.x: must be one of string, integer, number, boolean, object, array, null, a list of them, or a mapping with type and description`,
      `${c}: GET /items/:id: columns.y: must be one of string, integer, number, boolean, object, array, null, a list of them, or a mapping with type and description`,
      `${c}: DELETE /w/:id: columns: has no meaning for result exec`,
    ]);
  });

  it('checks transactions: each names a body array of objects, one resource, json only', () => {
    const t = file('t.yaml', [
      {
        method: 'POST',
        path: '/t',
        resources: ['pgdb', 'lite'],
        params: { rows: { in: 'body', type: 'array', items: { type: 'object', properties: { id: { type: 'integer' } } } } },
        statements: [
          { resource: 'pgdb', sql: 'INSERT INTO t VALUES (:id)', each: 'rows' },
          { resource: 'lite', sql: 'INSERT INTO t VALUES (:id)', each: 'nope' },
        ],
        result: 'transaction',
        formats: ['csv'],
      },
      { method: 'GET', path: '/g', resources: ['lite'], params: { b: { in: 'body', type: 'string' } }, statements: [{ sql: 'SELECT :b' }] },
    ]);
    expect(problems([t])).toEqual([
      `${t}: POST /t: formats: result transaction answers json only`,
      `${t}: POST /t: statements[1].each: must name a body param of type array whose items are objects`,
      `${t}: POST /t: statements[1].sql: placeholder :id has no param`,
      `${t}: POST /t: statements: a transaction runs on one resource: its statements name different ones`,
      `${t}: GET /g: params.b.in: a GET request has no body`,
    ]);
  });
});

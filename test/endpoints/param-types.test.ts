/**
 * WatchTower's own param types and not_before: checked when the files load, then served by a real
 * gateway process on SQLite: a `timestamp` binds epoch seconds from epoch or ISO 8601 text, a
 * `bigint` keeps 64-bit values exact as decimal text, and every refusal is a 400 naming the param.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildSettings } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-param-types-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENDPOINTS = [
  {
    method: 'GET',
    path: '/at',
    resources: ['sqlite_traffic'],
    params: { from: { type: 'timestamp' }, to: { type: 'timestamp', not_before: 'from' } },
    statements: [{ sql: 'SELECT :from AS from_s, :to AS to_s' }],
    result: 'one',
  },
  {
    method: 'GET',
    path: '/big/:v',
    resources: ['sqlite_traffic'],
    params: { v: { in: 'path', type: 'bigint' }, h: { in: 'header', header: 'X-Big', type: 'bigint', minimum: 0, maximum: '9000000000000000000' } },
    statements: [{ sql: 'SELECT CAST(:v AS INTEGER) + 0 = CAST(:v AS INTEGER) AS same, :v AS v, :h AS h' }],
    result: 'one',
  },
  {
    method: 'POST',
    path: '/big',
    resources: ['sqlite_traffic'],
    params: { n: { in: 'body', type: 'bigint', minimum: 0, required: true } },
    statements: [{ sql: 'SELECT :n AS n, typeof(:n) AS kind' }],
    result: 'one',
  },
];

function problems(endpoints: unknown[]): string[] {
  const file = join(dir, `p${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify({ endpoints }));
  const settings = buildSettings({ resource_ids: ['lite'], secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'x.db') } }, endpoints: [file] }, {}, { env: {} });
  try {
    loadEndpoints(settings);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.replace(/^endpoint files refused, \d+ problem\(s\): /, '').split('; ').map((p) => p.slice(file.length + 2));
  }
  return [];
}

describe('timestamp and bigint params, and not_before, when the files load', () => {
  it('refuses bounds outside 64 bits, bounds in the wrong order, and not_before across types or to no param', () => {
    const ep = (params: Record<string, unknown>, sql: string) => ({ method: 'GET', path: '/x', resources: ['lite'], params, statements: [{ sql }] });
    expect(problems([ep({ a: { type: 'bigint', minimum: '9223372036854775808' } }, 'SELECT :a')])).toEqual([
      'GET /x: params.a.minimum: must be a whole number (decimal text beyond 2^53)',
    ]);
    expect(problems([ep({ a: { type: 'bigint', minimum: 5, maximum: '4' } }, 'SELECT :a')])).toEqual(['GET /x: params.a.minimum: is above maximum']);
    expect(problems([ep({ a: { type: 'timestamp', minimum: 5 } }, 'SELECT :a')])).toEqual(['GET /x: params.a.minimum: is not a key of a timestamp param']);
    expect(
      problems([ep({ a: { type: 'timestamp' }, b: { type: 'integer', minimum: 0, maximum: 9, not_before: 'a' }, c: { type: 'timestamp', not_before: 'zz' } }, 'SELECT :a, :b, :c')]),
    ).toEqual([
      'GET /x: params.b.not_before: compares two params of one type, integer, number or timestamp',
      'GET /x: params.c.not_before: names no other param: zz',
    ]);
    expect(problems([ep({ a: { type: 'timestamp' }, b: { type: 'timestamp', not_before: 'a' }, n: { type: 'bigint', minimum: 0 } }, 'SELECT :a, :b, :n')])).toEqual([]);
  });
});

describe('timestamp and bigint params on a real gateway', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      configPatch: (doc, d) => {
        writeFileSync(join(d, 'types.yaml'), stringify({ endpoints: ENDPOINTS }));
        Object.assign(doc, sqliteConfig(d), { endpoints: [join(d, 'types.yaml')] });
      },
    });
  }, 60_000);
  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${gw.url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const post = async (body: string) => {
    const res = await fetch(`${gw.url}/big`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('binds a timestamp as epoch seconds, from epoch or ISO 8601 text, UTC unless an offset is given', async () => {
    expect((await get('/at?from=1736121600&to=2025-01-06T03:00:00%2B02:00')).body).toEqual({ from_s: 1736121600, to_s: 1736121600 + 3600 });
    expect((await get('/at?from=2025-01-06&to=2025-01-06%2001:30')).body).toEqual({ from_s: 1736121600, to_s: 1736121600 + 5400 });
    expect((await get('/at')).body).toEqual({ from_s: null, to_s: null });
  });

  it('answers 400 naming the param for a date that does not exist, one beyond 1970-9999, and to before from', async () => {
    expect(await get('/at?from=2025-02-30')).toMatchObject({ status: 400, body: { detail: 'querystring/from is not a valid date-time: 2025-02-30' } });
    expect(await get('/at?to=1969-12-31')).toMatchObject({ status: 400, body: { detail: 'querystring/to must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z' } });
    expect(await get('/at?from=yesterday')).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/^querystring\/from must match pattern/) } });
    expect(await get('/at?from=2025-01-07&to=2025-01-06')).toMatchObject({ status: 400, body: { detail: 'querystring/from must not be after querystring/to' } });
  });

  it('keeps a bigint exact as decimal text in the path, a header and a body, within its bounds', async () => {
    expect((await get('/big/-9223372036854775808', { 'x-big': '9000000000000000000' })).body).toEqual({ same: 1, v: '-9223372036854775808', h: '9000000000000000000' });
    expect(await get('/big/9223372036854775808')).toMatchObject({ status: 400, body: { detail: 'params/v must be <= 9223372036854775807' } });
    expect(await get('/big/-9223372036854775809')).toMatchObject({ status: 400, body: { detail: 'params/v must be >= -9223372036854775808' } });
    expect(await get('/big/1', { 'x-big': '9000000000000000001' })).toMatchObject({ status: 400, body: { detail: 'headers/x-big must be <= 9000000000000000000' } });
    expect(await get('/big/1', { 'x-big': '-1' })).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/^headers\/x-big must match pattern/) } });
    expect(await get('/big/0x10')).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/^params\/v must match pattern/) } });
    expect((await post('{"n": "9223372036854775807"}')).body).toEqual({ n: '9223372036854775807', kind: 'text' });
    expect((await post('{"n": 9007199254740991}')).body).toMatchObject({ n: 9007199254740991 });
    // JSON.parse has already rounded a number beyond 2^53: refused rather than stored wrong.
    expect(await post('{"n": 9007199254740993}')).toMatchObject({ status: 400, body: { detail: 'body/n must be <= 9007199254740991' } });
    expect(await post('{"n": -1}')).toMatchObject({ status: 400, body: { detail: 'body/n must be >= 0' } });
    expect(await post('{"n": 1.5}')).toMatchObject({ status: 400 });
  });
});

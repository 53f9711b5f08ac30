/**
 * The endpoint loader's checks of `cache` and `invalidates` (src/cache/endpoint-cache.ts): each
 * refusal names the file, the endpoint and the key; and the cache id that keeps a changed
 * declaration from reading the entries of the old one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildSettings } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { cacheIdOf, invalidationTargets } from '../../src/cache/endpoint-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-cache-decl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = (endpoints: string[]) =>
  buildSettings({ resource_ids: ['lite'], secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'x.db') } }, endpoints }, {}, { env: {} });

let n = 0;
function file(endpoints: unknown[]): string {
  const path = join(dir, `f${n++}.yaml`);
  writeFileSync(path, stringify({ endpoints }));
  return path;
}

function problems(endpoints: unknown[]): { file: string; list: string[] } {
  const f = file(endpoints);
  try {
    loadEndpoints(settings([f]));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { file: f, list: (err as Error).message.replace(/^endpoint files refused, \d+ problem\(s\): /, '').split('; ') };
  }
  return { file: f, list: [] };
}

const read = { method: 'GET', path: '/items', resources: ['lite'], statements: [{ sql: 'SELECT 1 AS one' }], cache: { ttl: 5 } };
const write = { method: 'POST', path: '/items', resources: ['lite'], statements: [{ sql: 'DELETE FROM t' }], result: 'exec', invalidates: ['/items'] };

describe('cache and invalidates in endpoint files', () => {
  it('loads a cached read and a write that invalidates it, resolved to the read\'s cache id', () => {
    const f = file([read, write]);
    const eps = loadEndpoints(settings([f]));
    expect(eps[0].cache).toEqual({ ttl: 5 });
    expect(eps[1].invalidates).toEqual(['GET /items']);
    expect(invalidationTargets(eps).get('POST /items')).toEqual([cacheIdOf(eps[0])]);
  });

  it('refuses cache on a write, naming the file, the endpoint and the key', () => {
    const { file: f, list } = problems([{ ...write, invalidates: undefined, cache: { ttl: 5 } }]);
    expect(list).toEqual([`${f}: POST /items: cache: only a GET endpoint is cached, and a POST endpoint writes (its invalidates: clears the entries it changes)`]);
  });

  it('refuses a bad ttl, unknown keys in cache, and SQL binding per-request values', () => {
    expect(problems([{ ...read, cache: { ttl: 0 } }]).list[0]).toMatch(/: GET \/items: cache\.ttl: must be a number of seconds from 0\.001/);
    expect(problems([{ ...read, cache: { ttl: 5, size: 3 } }]).list[0]).toMatch(/: GET \/items: cache: must be a mapping \{ ttl: <seconds> \}$/);
    expect(problems([{ ...read, statements: [{ sql: 'SELECT :_now AS t, :_cid AS c' }] }]).list[0]).toMatch(/cache: the SQL binds :_cid and :_now, which differ on every request/);
  });

  it('refuses invalidates on a read or a stream, and naming an endpoint that is not cached or not declared', () => {
    expect(problems([{ ...read, invalidates: ['/items'] }]).list[0]).toMatch(/GET \/items: invalidates: a GET endpoint writes nothing/);
    expect(problems([read, { ...write, path: '/rows', result: 'stream', statements: [{ sql: 'SELECT 1 AS one' }] }]).list[0]).toMatch(/POST \/rows: invalidates: a stream answers before its statement ends/);
    const other = { ...read, path: '/other', cache: undefined };
    const { file: f, list } = problems([read, other, { ...write, invalidates: ['/other', 'GET /nowhere'] }]);
    expect(list).toEqual([
      `${f}: POST /items: invalidates: GET /other has no cache key, so nothing of it is cached`,
      `${f}: POST /items: invalidates: GET /nowhere is not a declared endpoint`,
    ]);
  });

  it('gives a changed declaration another cache id, and the same declaration the same one', () => {
    const [a] = loadEndpoints(settings([file([read])]));
    const [b] = loadEndpoints(settings([file([read])]));
    const [c] = loadEndpoints(settings([file([{ ...read, statements: [{ sql: 'SELECT 2 AS one' }] }])]));
    expect(cacheIdOf(a)).toBe(cacheIdOf(b));
    expect(cacheIdOf(c)).not.toBe(cacheIdOf(a));
  });
});

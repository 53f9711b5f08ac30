/**
 * A repeated cache hit is answered before Fastify validates the request again (src/cache/http.ts
 * preParsing, src/cache/params-memo.ts), over real HTTP on a real SQLite file: the same bytes and
 * headers as the hit after validation, the same entry for URLs that validate to the same params, a
 * format per Accept, and a 400 every time for a URL refused by validation or by a param hook.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { gatewayHttp } from '../../src/app.js';
import { ResponseCache } from '../../src/cache/response-cache.js';
import { buildSettings } from '../../src/config/index.js';
import { createConnector } from '../../src/db/index.js';
import { setLogDestination } from '../../src/log/index.js';
import { ResourceManager } from '../../src/resources/resource-manager.js';
import { closeInProcess, serveInProcess } from '../helpers/in-process.js';

const RID = 'lite';
const work = mkdtempSync(join(tmpdir(), 'wt-early-hit-'));

let app: FastifyInstance;
let resources: ResourceManager;
let cache: ResponseCache;
let url: string;
/** Requests that reached validation, by URL. */
const validated: string[] = [];
let queries = 0;
let hits = 0;

beforeAll(async () => {
  setLogDestination(new Writable({ write: (_c, _e, cb) => cb() }));
  const dbPath = join(work, 'items.db');
  const db = new Database(dbPath);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, at INTEGER NOT NULL)');
  for (let i = 1; i <= 5; i++) db.prepare('INSERT INTO items VALUES (?, ?, ?)').run(i, `n${i}`, 1_700_000_000 + i);
  db.close();
  const file = join(work, 'items.yaml');
  writeFileSync(
    file,
    stringify({
      endpoints: [
        {
          method: 'GET', path: '/items', resources: [RID],
          params: { min_id: { type: 'integer', minimum: 0, maximum: 1000, default: 0 } },
          statements: [{ sql: 'SELECT id, name FROM items WHERE id >= :min_id ORDER BY id' }],
          formats: ['json', 'csv'], cache: { ttl: 60 },
        },
        {
          method: 'GET', path: '/items/since', resources: [RID],
          params: { since: { type: 'timestamp', required: true } },
          statements: [{ sql: 'SELECT id FROM items WHERE at >= :since ORDER BY id' }],
          cache: { ttl: 60 },
        },
      ],
    }),
  );
  const settings = buildSettings(
    { resource_ids: [RID], pool_check_interval: 60, secure: { [RID]: { db_type: 'sqlite', db_path: dbPath } }, endpoints: [file] },
    {},
    { env: {} },
  );
  resources = new ResourceManager({ connectorFor: (rid) => createConnector(rid, settings.secure[rid]), settings: () => settings });
  cache = new ResponseCache(() => settings);
  cache.observer = { hit: () => hits++, miss() {}, evict() {}, redisError() {} };
  app = Fastify();
  // Registered before the gateway's plugin, so it runs for every route it adds.
  app.addHook('preValidation', (req, _reply, done) => {
    validated.push(req.url);
    done();
  });
  await app.register(gatewayHttp, {
    settings: () => settings,
    acquirer: resources,
    readiness: () => resources.readiness(),
    observer: { requestDone: () => undefined },
    onQuery: () => queries++,
    metricsPlugin: () => undefined,
    isShuttingDown: () => false,
    docs: false,
    version: 'test',
    responseCache: cache,
  });
  url = await serveInProcess(app, resources);
}, 60_000);

afterAll(async () => {
  await closeInProcess(app, resources);
  cache?.close();
  setLogDestination(process.stdout);
  rmSync(work, { recursive: true, force: true });
});

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text(), etag: res.headers.get('etag'), type: res.headers.get('content-type'), vary: res.headers.get('vary'), cacheControl: res.headers.get('cache-control') };
}

const count = (path: string) => validated.filter((u) => u === path).length;

describe('a cache hit answered before validation', () => {
  it('answers a URL it validated before at once, with the bytes and headers of the first answer', async () => {
    const miss = await get('/items?min_id=2');
    expect(count('/items?min_id=2')).toBe(1);
    const early = [await get('/items?min_id=2'), await get('/items?min_id=2')];
    expect(count('/items?min_id=2')).toBe(1);
    expect(miss.body).toBe('[{"id":2,"name":"n2"},{"id":3,"name":"n3"},{"id":4,"name":"n4"},{"id":5,"name":"n5"}]');
    for (const r of early) expect(r).toMatchObject({ status: 200, body: miss.body, etag: miss.etag, type: miss.type, vary: 'Accept' });
    expect(early[1].cacheControl).toMatch(/^max-age=(59|60)$/);
  });

  it('serves a URL that validates to the same params (a default given or left out) from the same entry, each URL validated once', async () => {
    const before = queries;
    const hitsBefore = hits;
    const bodies = [];
    for (const path of ['/items', '/items?min_id=0', '/items', '/items?min_id=0']) bodies.push((await get(path)).body);
    expect(bodies).toEqual(Array(4).fill(bodies[0]));
    expect(queries - before).toBe(1);
    expect(hits - hitsBefore).toBe(3);
    expect([count('/items'), count('/items?min_id=0')]).toEqual([1, 1]);
  });

  it('answers HEAD and If-None-Match from the early hit as after validation', async () => {
    const first = await get('/items?min_id=5');
    // HEAD learns apart from GET: its first is validated, the next answered early.
    await fetch(`${url}/items?min_id=5`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    const head = await fetch(`${url}/items?min_id=5`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe(first.etag);
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(first.body)));
    expect(await head.text()).toBe('');
    const conditional = await fetch(`${url}/items?min_id=5`, { headers: { 'if-none-match': first.etag! }, signal: AbortSignal.timeout(10_000) });
    expect(conditional.status).toBe(304);
    expect(await conditional.text()).toBe('');
    // The GET and the first HEAD were the only ones validated; the second HEAD and the conditional GET were answered early.
    expect(count('/items?min_id=5')).toBe(2);
  });

  it('keeps the format of each Accept apart', async () => {
    const json = await get('/items?min_id=4', { accept: 'application/json' });
    const csv = await get('/items?min_id=4', { accept: 'text/csv' });
    const again = [await get('/items?min_id=4', { accept: 'text/csv' }), await get('/items?min_id=4', { accept: 'application/json' })];
    expect(csv.body).toBe('id,name\r\n4,n4\r\n5,n5\r\n');
    expect(again[0]).toMatchObject({ body: csv.body, type: csv.type });
    expect(again[1]).toMatchObject({ body: json.body, type: json.type });
    expect(count('/items?min_id=4')).toBe(2);
  });

  it('answers a bad request with its 400 every time, from validation or from a param hook', async () => {
    for (let i = 0; i < 2; i++) expect((await get('/items?min_id=x')).status).toBe(400);
    expect(count('/items?min_id=x')).toBe(2);
    // Valid text, refused after validation by the timestamp hook: a date that does not exist.
    for (let i = 0; i < 2; i++) expect(await get('/items/since?since=2025-02-30')).toMatchObject({ status: 400, body: expect.stringMatching(/since/) });
    expect(count('/items/since?since=2025-02-30')).toBe(2);
    for (let i = 0; i < 3; i++) expect((await get('/items/since?since=1970-01-01T00:00:00Z')).body).toBe('[{"id":1},{"id":2},{"id":3},{"id":4},{"id":5}]');
    expect(count('/items/since?since=1970-01-01T00:00:00Z')).toBe(1);
  });
});

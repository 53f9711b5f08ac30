/**
 * The Server-Timing header over real HTTP, from a running gateway on SQLite and PostgreSQL: slot,
 * connection and query milliseconds, a stream's time to its first row, and no header once
 * `server_timing` is turned off by a reload.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { fileTarget } from '../helpers/test-data.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());

function endpoints(): unknown[] {
  return [
    { method: 'GET', path: '/lite/one', resources: ['lite'], public: true, statements: [{ sql: 'SELECT 1 AS n' }], result: 'one' },
    { method: 'GET', path: '/pg/sleep', resources: ['pgt'], public: true, statements: [{ sql: 'SELECT 1 AS n FROM pg_sleep(0.2)' }], result: 'one' },
    {
      method: 'GET', path: '/pg/stream', resources: ['pgt'], public: true, result: 'stream', formats: ['csv'],
      // Rows are fetched 500 at a time: the first batch comes after 0.2 s, the second 0.6 s later;
      // the header leaves with the first.
      statements: [{ sql: 'SELECT i, (SELECT 1 FROM pg_sleep(CASE WHEN i = 1 THEN 0.2 WHEN i = 501 THEN 0.6 ELSE 0 END)) AS s FROM generate_series(1, 1000) AS i' }],
    },
  ];
}

/** Parses `name;dur=1.5, ...` into milliseconds by name; fails on anything else. */
function parseTiming(header: string | null): Record<string, number> {
  expect(header).not.toBeNull();
  const out: Record<string, number> = {};
  for (const part of header!.split(',')) {
    const m = /^\s*([a-z]+);dur=(\d+(?:\.\d+)?)\s*$/.exec(part);
    expect(m, part).not.toBeNull();
    out[m![1]] = Number(m![2]);
  }
  return out;
}

let gw: GatewayProcess;

beforeAll(async () => {
  if (skipPg) return;
  gw = await startGateway({
    configPatch: (doc, dir) => {
      new Database(join(dir, 'lite.db')).close();
      const file = join(dir, 'timing-endpoints.yaml');
      writeFileSync(file, stringify({ endpoints: endpoints() }));
      Object.assign(doc, {
        resource_ids: ['lite', 'pgt'],
        resources: { lite: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 }, pgt: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 } },
        secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'lite.db') }, pgt: fileTarget(pgTarget()) },
        endpoints: [file],
      });
    },
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
});

describe.skipIf(skipPg)('Server-Timing', () => {
  it('names the slot and connection waits and the query time on SQLite', async () => {
    const res = await fetch(`${gw.url}/lite/one`);
    expect(res.status).toBe(200);
    const t = parseTiming(res.headers.get('server-timing'));
    expect(Object.keys(t).sort()).toEqual(['conn', 'query', 'slot']);
    const total = Number(res.headers.get('x-process-time')) * 1000;
    // Parts of the request's own time: none can be longer than all of it.
    for (const v of Object.values(t)) expect(v).toBeLessThanOrEqual(total + 0.1);
  });

  it('counts a PostgreSQL statement that sleeps 0.2 s as at least 200 ms of query', async () => {
    const res = await fetch(`${gw.url}/pg/sleep`);
    expect(res.status).toBe(200);
    const t = parseTiming(res.headers.get('server-timing'));
    expect(t.query).toBeGreaterThanOrEqual(200);
    expect(t.query).toBeLessThan(5000);
    expect(t.slot).toBeLessThan(200);
    expect(t.conn).toBeLessThan(200);
  });

  it('gives a stream the time to its first row, sent before the body', async () => {
    const res = await fetch(`${gw.url}/pg/stream?format=csv`);
    expect(res.status).toBe(200);
    const t = parseTiming(res.headers.get('server-timing'));
    expect(t.query).toBeGreaterThanOrEqual(200);
    expect(t.query).toBeLessThan(800);
    expect((await res.text()).trim().split('\n')).toHaveLength(1001);
  });

  it('is not sent by routes without a database, nor by any once server_timing is off', async () => {
    expect((await fetch(`${gw.url}/health/live`)).headers.get('server-timing')).toBeNull();
    const rec = await gw.reload({ server_timing: false });
    expect(rec.fields.tag).toBe('config-reload');
    for (const path of ['/lite/one', '/pg/sleep', '/pg/stream?format=csv']) {
      const res = await fetch(`${gw.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('server-timing'), path).toBeNull();
      await res.text();
    }
  });
});

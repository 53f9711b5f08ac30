/**
 * Declared SQLite answers are the same bytes whichever the connections run in (sqlite_workers:
 * threads or processes, two transports of the rows): every kind of value, exact integers past 2^53,
 * max_rows, result one, csv, and the values the worker channel carries tagged (BLOBs, infinities).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const ENDPOINTS = {
  endpoints: [
    { method: 'GET', path: '/t', resources: ['lite'], statements: [{ sql: { sqlite: 'SELECT id, big, r, s, n FROM t ORDER BY id' } }], result: 'rows', formats: ['json', 'csv'] },
    { method: 'GET', path: '/t-max', resources: ['lite'], statements: [{ sql: { sqlite: 'SELECT id, s FROM t ORDER BY id' } }], result: 'rows', max_rows: 3, formats: ['json'] },
    { method: 'GET', path: '/t-one', resources: ['lite'], statements: [{ sql: { sqlite: 'SELECT id, s FROM t WHERE id = 7' } }], result: 'one', formats: ['json'] },
    { method: 'GET', path: '/t-tagged', resources: ['lite'], statements: [{ sql: { sqlite: 'SELECT id, b, inf FROM t ORDER BY id' } }], result: 'rows', formats: ['json'] },
  ],
};

function config(dir: string, workers: string): Record<string, unknown> {
  const db = join(dir, 'lite.db');
  const file = new Database(db);
  file.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, r REAL, s TEXT, b BLOB, n INTEGER, inf REAL)');
  const insert = file.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)');
  const texts = ['plain', 'say "hi"', 'line\nbreak', 'ünïcødé ✓ \u2028', 'ctl\u0001\u001f', '', 'back\\slash', '</script>'];
  for (let i = 1; i <= 40; i++) {
    insert.run(i, i % 3 === 0 ? 9007199254740993n + BigInt(i) : -i * 1000, i / 7, texts[i % texts.length], i % 4 === 0 ? Buffer.from([i, 0, 255]) : null, i % 2 === 0 ? null : i, i % 5 === 0 ? Infinity : 1.5);
  }
  file.close();
  writeFileSync(join(dir, 'endpoints.yaml'), stringify(ENDPOINTS));
  return {
    log_level: 'INFO',
    resource_ids: ['lite'],
    resources: { lite: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 } },
    secure: { lite: { db_type: 'sqlite', db_path: db, sqlite_workers: workers } },
    endpoints: [join(dir, 'endpoints.yaml')],
  };
}

describe('declared SQLite answers from worker threads and from worker processes', () => {
  let threads: GatewayProcess;
  let processes: GatewayProcess;
  beforeAll(async () => {
    [threads, processes] = await Promise.all([
      startGateway({ configPatch: (doc, dir) => Object.assign(doc, config(dir, 'threads')) }),
      startGateway({ configPatch: (doc, dir) => Object.assign(doc, config(dir, 'processes')) }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([threads?.stop(), processes?.stop()]);
  });

  const body = async (g: GatewayProcess, path: string) => {
    const res = await fetch(`${g.url}${path}`);
    expect(res.status).toBe(200);
    return { type: res.headers.get('content-type'), text: await res.text() };
  };

  it.each(['/t', '/t-max', '/t-one', '/t-tagged', '/t?format=csv'])('%s: the same bytes and type', async (path) => {
    const [a, b] = await Promise.all([body(threads, path), body(processes, path)]);
    expect(a).toEqual(b);
  });

  it('keeps exact integers and every character as JSON.stringify would write them', async () => {
    const { text } = await body(threads, '/t');
    const rows = JSON.parse(text) as Record<string, unknown>[];
    expect(text).toBe(JSON.stringify(rows));
    expect(rows).toHaveLength(40);
    expect(rows[2]).toMatchObject({ id: 3, big: '9007199254740996', n: 3 });
    expect(rows[6]).toMatchObject({ r: 1, s: '</script>' });
    // Infinity, as JSON.stringify writes it (the worker channel carries it tagged).
    expect((JSON.parse((await body(threads, '/t-tagged')).text) as Record<string, unknown>[])[4].inf).toBeNull();
    expect(JSON.parse((await body(threads, '/t-max')).text)).toHaveLength(3);
  });
});

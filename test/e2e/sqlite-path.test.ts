/**
 * A SQLite db_path that does not exist: only a resource marked db_sample (the shipped sqlite_traffic)
 * is created, holding the sample table; any other stops start-up naming the key and the path, and
 * nothing is created, so a mistyped path is never served as a new empty database.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const started: GatewayProcess[] = [];
afterAll(async () => {
  for (const g of started) await g.stop();
});

function withPath(doc: Record<string, unknown>, dir: string, name: string, sample: boolean): void {
  const base = sqliteConfig(dir);
  const secure = base.secure as Record<string, Record<string, unknown>>;
  secure.sqlite_traffic = { db_type: 'sqlite', db_path: join(dir, name), ...(sample ? { db_sample: true } : {}) };
  Object.assign(doc, base);
}

describe('a SQLite db_path that does not exist', () => {
  it('stops start-up naming the key and the path, and creates nothing, unless db_sample is set', async () => {
    const g = await startGateway({ noWait: true, configPatch: (doc, dir) => withPath(doc, dir, 'trafic.db', false) });
    started.push(g);
    const code = await Promise.race([g.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    expect(code).toBe(1);
    const path = join(g.dir, 'trafic.db');
    const err = g.parsed().find((l) => l.fields.tag === 'config-err');
    expect(err?.fields.msg).toContain(`secure.sqlite_traffic.db_path: SQLite database file ${path} does not exist`);
    expect(err?.fields.keys).toBe('secure.sqlite_traffic.db_path');
    expect(existsSync(path)).toBe(false);
  }, 30_000);

  it('is created holding the sample table when the resource has db_sample: true', async () => {
    const g = await startGateway({ configPatch: (doc, dir) => withPath(doc, dir, 'fresh.db', true) });
    started.push(g);
    expect(existsSync(join(g.dir, 'fresh.db'))).toBe(true);
    const rows = (await (await fetch(`${g.url}/sqlite-json?limit=3`)).json()) as unknown[];
    expect(rows).toHaveLength(3);
  }, 30_000);
});

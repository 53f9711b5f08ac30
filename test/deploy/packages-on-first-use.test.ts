/**
 * Packages only some configurations use are loaded when first needed: a gateway serving SQLite
 * alone (the quick start) holds no database driver, Redis client or JWT library it does not use.
 * A real gateway process, with a hook that lists every package it loaded.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { sqliteConfig, startGateway } from '../helpers/gateway-process.js';
import { fileTarget } from '../helpers/test-data.js';

const ROOT = join(import.meta.dirname, '..', '..');
const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const ON_FIRST_USE = ['pg', 'pg-query-stream', 'mysql2', 'odbc', 'ioredis', 'redis-semaphore', 'jose'];

/** The packages a gateway with `config` loaded while it started, answered `path` and stopped. */
async function packagesLoaded(config: (dir: string) => Record<string, unknown>, path: string): Promise<string[]> {
  const file = join(mkdtempSync(join(tmpdir(), 'wt-packages-')), 'loaded.txt');
  const gw = await startGateway({
    extraArgs: ['--import', `${ROOT}/test/fixtures/report-packages.mjs`],
    env: { WT_LOADED_PACKAGES_FILE: file },
    configPatch: (cfg, dir) => Object.assign(cfg, config(dir)),
  });
  try {
    expect((await fetch(`${gw.url}${path}`)).status).toBe(200);
  } finally {
    expect(await gw.stop()).toBe(0);
  }
  return readFileSync(file, 'utf8').split('\n');
}

describe('packages loaded on first use', () => {
  it('a gateway serving SQLite alone loads no other driver, no Redis client and no JWT library', async () => {
    const loaded = await packagesLoaded((dir) => sqliteConfig(dir), '/sqlite-json');
    expect(loaded).toContain('better-sqlite3'); // the hook sees what is loaded
    expect(loaded.filter((p) => ON_FIRST_USE.includes(p))).toEqual([]);
  }, 60_000);

  it.skipIf(skipPg)('a PostgreSQL resource loads its driver', async () => {
    const loaded = await packagesLoaded(
      (dir) => {
        const cfg = sqliteConfig(dir);
        // No endpoint files: the pool's first connection at start-up is what loads the driver.
        return { ...cfg, endpoints: [], resource_ids: ['sqlite_traffic', 'pg_traffic'], secure: { ...(cfg.secure as object), pg_traffic: fileTarget(pgTarget()) } };
      },
      '/health/ready',
    );
    expect(loaded).toContain('pg');
    expect(loaded.filter((p) => ['mysql2', 'ioredis', 'jose'].includes(p))).toEqual([]);
  }, 60_000);
});

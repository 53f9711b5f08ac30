import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createConnector, targetFromUrl } from '../../src/db/index.js';
import { ensureSqliteSample, sampleRows, SAMPLE_START_EPOCH, seedSampleData } from '../../src/db/sample-data.js';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { mysqlAvailable, mysqlTarget, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';

const T = { timeoutSeconds: 30 };

describe('sample data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wt-sample-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is deterministic: 1008 hours × 5 ports from 2025-01-06T00:00Z, unique keys', () => {
    const rows = sampleRows();
    expect(rows).toHaveLength(5040);
    expect(sampleRows()).toEqual(rows);
    expect(rows[0].date_hour).toBe(SAMPLE_START_EPOCH);
    expect(new Date(SAMPLE_START_EPOCH * 1000).toISOString()).toBe('2025-01-06T00:00:00.000Z');
    expect(new Set(rows.map((r) => `${r.date_hour}/${r.port}`)).size).toBe(5040);
    // Counters are positive whole numbers (every flow has packets, every packet bytes).
    expect(rows.filter((r) => ![r.flows, r.pkts, r.bytes].every((v) => Number.isInteger(v) && v > 0))).toEqual([]);
  });

  it('creates the SQLite sample file once, readable by the driver', async () => {
    const path = join(dir, 'nested', 'traffic.db');
    expect(ensureSqliteSample(path)).toBe(true);
    expect(ensureSqliteSample(path)).toBe(false);
    const c = await createConnector('sqlite_traffic', targetFromUrl(`sqlite:${path}`)).connect(1, 5);
    try {
      const { rows } = await c.query('SELECT COUNT(*) AS n, MIN(date_hour) AS first FROM tcp_hourly', [], T);
      expect(rows).toEqual([{ n: 5040, first: SAMPLE_START_EPOCH }]);
      expect(await seedSampleData(c)).toBe(0); // idempotent
    } finally {
      await c.close();
    }
  });

  const servers: [string, () => Promise<boolean>, () => SecureResourceSettings, string][] = [
    ['PostgreSQL', async () => requireOrSkip('PostgreSQL', await pgAvailable()), pgTarget, '2025-01-06T00:00:00.000Z'],
    ['MySQL/MariaDB', async () => requireOrSkip('MySQL/MariaDB', await mysqlAvailable()), mysqlTarget, '2025-01-06 00:00:00'],
  ];
  for (const [name, skipped, target, firstHour] of servers) {
    it(`seeds ${name} idempotently`, async (ctx) => {
      if (await skipped()) return ctx.skip();
      const table = uniqueName('wt_sample');
      const c = await createConnector('seed', target()).connect(1, 5);
      try {
        expect(await seedSampleData(c, { table })).toBe(5040);
        expect(await seedSampleData(c, { table })).toBe(0);
        const { rows } = await c.query(`SELECT COUNT(*) AS n, MIN(date_hour) AS first FROM ${table}`, [], T);
        expect(Number(rows[0].n)).toBe(5040);
        const first = rows[0].first;
        expect(first instanceof Date ? first.toISOString() : first).toBe(firstHour);
      } finally {
        await c.query(`DROP TABLE IF EXISTS ${table}`, [], T).catch(() => undefined);
        await c.close();
      }
    });
  }
});

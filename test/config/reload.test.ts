import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { config, configEvents, initConfig, reloadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const base = 'resource_ids: [sqlite_traffic]\nsecure:\n  sqlite_traffic: {db_type: sqlite, db_path: a.db}\n';

describe('reloadConfig', () => {
  it('swaps in a valid override and reports each change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt-reload-'));
    const main = join(dir, 'main.yaml');
    const override = join(dir, 'override.yaml');
    writeFileSync(main, base);
    initConfig({ main, override });
    const seen: string[] = [];
    const listener = (_s: unknown, changes: { key: string }[]) => seen.push(...changes.map((c) => c.key));
    configEvents.on('reload', listener);
    writeFileSync(override, 'cid_len: 8\nresources:\n  sqlite_traffic: {db_max_conn_pool_size: 3}\n');
    const before = config();
    const changes = await reloadConfig();
    configEvents.off('reload', listener);
    expect(changes.map((c) => c.key)).toEqual(['cid_len', 'resources.sqlite_traffic.db_max_conn_pool_size']);
    expect(seen).toEqual(changes.map((c) => c.key));
    expect(config()).not.toBe(before);
    expect(config().cid_len).toBe(8);
  });

  it('refuses a main file whose non-reloadable or secure keys changed, keeping the running config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt-reload-'));
    const main = join(dir, 'main.yaml');
    writeFileSync(main, base);
    initConfig({ main });
    const before = config();
    writeFileSync(main, `port: 9999\nlog_level: DEBUG\n${base.replace('a.db', 'b.db')}`);
    const err = await reloadConfig().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).keys).toEqual(['port', 'secure']);
    expect(config()).toBe(before);
    expect(config().log_level).toBe('INFO');
  });
});

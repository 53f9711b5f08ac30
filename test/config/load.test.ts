import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSettings, diffSettings, loadSettings } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const main = {
  log_level: 'INFO',
  resource_ids: ['sqlite_traffic'],
  resources: { sqlite_traffic: { db_max_conn_pool_size: 4, db_min_conn_pool_size: 1 } },
  secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'data/x.db' } },
};

function refused(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('applies defaults and per-resource values', () => {
    const s = buildSettings(main, {}, { env: {} });
    expect(s.port).toBe(8000);
    expect(s.host).toBe('0.0.0.0');
    expect(s.resources.sqlite_traffic.db_max_conn_pool_size).toBe(4);
    expect(s.resources.sqlite_traffic.request_slot_timeout).toBe(20);
    expect(s.resources.sqlite_traffic.max_active_requests).toBeNull();
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('takes HOST, PORT and WT_WORKERS from the environment', () => {
    const s = buildSettings(main, {}, { env: { PORT: '9123', HOST: '127.0.0.1', WT_WORKERS: '3' } });
    expect([s.port, s.host, s.workers]).toEqual([9123, '127.0.0.1', 3]);
  });

  it('lets an override change reloadable keys, merged per resource', () => {
    const s = buildSettings(main, { log_level: 'DEBUG', resources: { sqlite_traffic: { max_pending_requests: 0 } } }, { env: {} });
    expect(s.log_level).toBe('DEBUG');
    expect(s.resources.sqlite_traffic.max_pending_requests).toBe(0);
    expect(s.resources.sqlite_traffic.db_max_conn_pool_size).toBe(4);
  });

  it('refuses an override touching secure or non-reloadable keys, naming them', () => {
    const e1 = refused(() => buildSettings(main, { secure: { sqlite_traffic: { db_path: '/etc/passwd' } } }, { env: {}, overrideFile: 'o.yaml' }));
    expect(e1.keys).toEqual(['secure']);
    expect(e1.file).toBe('o.yaml');
    const e2 = refused(() => buildSettings(main, { port: 1, resource_ids: ['x'] }, { env: {}, overrideFile: 'o.yaml' }));
    expect(e2.keys).toEqual(['port', 'resource_ids']);
  });

  it('refuses unknown keys and bad values, naming the key', () => {
    expect(refused(() => buildSettings({ ...main, log_levle: 'INFO' }, {}, { env: {} })).keys).toContain('log_levle');
    expect(refused(() => buildSettings({ ...main, cid_len: 99 }, {}, { env: {} })).keys).toContain('cid_len');
    const e = refused(() => buildSettings(main, { resources: { sqlite_traffic: { request_slot_timeout: -1 } } }, { env: {}, overrideFile: 'o.yaml' }));
    expect(e.keys).toContain('resources.sqlite_traffic.request_slot_timeout');
    expect(e.file).toBe('o.yaml');
  });

  it('refuses an inline read budget that is not a number of milliseconds from 0 to 100', () => {
    const withBudget = (v: unknown) => buildSettings({ ...main, secure: { ...main.secure, sqlite_traffic: { ...main.secure.sqlite_traffic, sqlite_inline_read_ms: v } } }, {}, { env: {} });
    for (const value of [-1, 101, Number.POSITIVE_INFINITY, Number.NaN, '1', '1ms', null, true]) {
      expect(refused(() => withBudget(value)).keys, String(value)).toContain('secure.sqlite_traffic.sqlite_inline_read_ms');
    }
    expect(withBudget(0).secure.sqlite_traffic.sqlite_inline_read_ms).toBe(0);
    expect(withBudget(2.5).secure.sqlite_traffic.sqlite_inline_read_ms).toBe(2.5);
  });

  it('refuses a switch that is not true or false instead of reading any text as true', () => {
    for (const value of ['x', 'no', 0, 'false']) {
      expect(refused(() => buildSettings({ ...main, docs_enabled: value }, {}, { env: {} })).keys, String(value)).toContain('docs_enabled');
    }
    expect(refused(() => buildSettings(main, { log_db_conn_durations: 'yes' }, { env: {}, overrideFile: 'o.yaml' })).keys).toContain('log_db_conn_durations');
    expect(buildSettings({ ...main, docs_enabled: false }, {}, { env: {} }).docs_enabled).toBe(false);
  });

  it('refuses text where a number belongs instead of reading its leading digits', () => {
    const e = refused(() => buildSettings(main, { resources: { sqlite_traffic: { request_slot_timeout: '20s' } } }, { env: {}, overrideFile: 'o.yaml' }));
    expect(e.keys).toEqual(['resources.sqlite_traffic.request_slot_timeout']);
    expect(e.message).not.toContain('20s');
    expect(refused(() => buildSettings({ ...main, port: '8080abc' }, {}, { env: {} })).keys).toEqual(['port']);
    // The environment is text by nature and still read as numbers.
    expect(buildSettings(main, {}, { env: { PORT: '9000' } }).port).toBe(9000);
  });

  it('refuses max_active_requests above db_max_conn_pool_size, naming both keys', () => {
    const e = refused(() => buildSettings(main, { resources: { sqlite_traffic: { max_active_requests: 5 } } }, { env: {} }));
    expect(e.keys).toEqual(['resources.sqlite_traffic.max_active_requests', 'resources.sqlite_traffic.db_max_conn_pool_size']);
    expect(e.message).toMatch(/deadlock/);
  });

  it('takes passwords only from the environment or a *_FILE', () => {
    const withPg = {
      ...main,
      secure: { ...main.secure, pg_traffic: { db_type: 'postgres', db_host: 'db', db_name: 'w', db_user: 'u' } },
    };
    expect(buildSettings(withPg, {}, { env: { pg_traffic__db_password: 's3cret' } }).secure.pg_traffic.db_password).toBe('s3cret');
    const dir = mkdtempSync(join(tmpdir(), 'wt-cfg-'));
    writeFileSync(join(dir, 'pw'), 'fromfile\n');
    expect(buildSettings(withPg, {}, { env: { pg_traffic__db_password_FILE: join(dir, 'pw') } }).secure.pg_traffic.db_password).toBe('fromfile');
    const inFile = { ...main, secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'x', db_password: 'no' } } };
    expect(refused(() => buildSettings(inFile, {}, { env: {} })).keys).toEqual(['secure.sqlite_traffic.db_password']);
  });

  it('takes resource_ids from env WT_RESOURCE_IDS (comma-separated) over the file, so no tracked file needs editing', () => {
    const withPg = { ...main, secure: { ...main.secure, pg_traffic: { db_type: 'postgres', db_name: 'w', db_user: 'u' } } };
    expect(buildSettings(withPg, {}, { env: { WT_RESOURCE_IDS: ' sqlite_traffic , pg_traffic,' } }).resource_ids).toEqual(['sqlite_traffic', 'pg_traffic']);
    expect(buildSettings(withPg, {}, { env: { WT_RESOURCE_IDS: '' } }).resource_ids).toEqual(['sqlite_traffic']);
    // The same rules as in a file: an enabled resource needs its connection target.
    const e = refused(() => buildSettings(main, {}, { env: { WT_RESOURCE_IDS: 'sqlite_traffic,mysql_traffic' } }));
    expect(e.keys).toEqual(['secure.mysql_traffic']);
  });

  it('reads an empty resources section as none', () => {
    expect(buildSettings({ ...main, resources: null }, { resources: null }, { env: {} }).resources.sqlite_traffic.db_max_conn_pool_size).toBe(10);
  });

  it('requires a secure section for every enabled resource', () => {
    expect(refused(() => buildSettings({ ...main, resource_ids: ['sqlite_traffic', 'pg_traffic'] }, {}, { env: {} })).keys).toEqual(['secure.pg_traffic']);
  });

  it('reads YAML files; a missing override is no override; broken YAML is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wt-cfg-'));
    const mainFile = join(dir, 'main.yaml');
    writeFileSync(mainFile, 'resource_ids: [sqlite_traffic]\nsecure:\n  sqlite_traffic: {db_type: sqlite, db_path: a.db}\n');
    expect(loadSettings({ main: mainFile, override: join(dir, 'missing.yaml') }, {}).log_level).toBe('INFO');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'log_level: [DEBUG\n');
    const e = refused(() => loadSettings({ main: mainFile, override: bad }, {}));
    expect(e.file).toBe(bad);
    expect(e.message).toMatch(/not valid YAML/);
  });

  it('diffs settings key by key', () => {
    const a = buildSettings(main, {}, { env: {} });
    const b = buildSettings(main, { log_level: 'ERROR', resources: { sqlite_traffic: { db_max_conn_pool_size: 6 } } }, { env: {} });
    expect(diffSettings(a, b)).toEqual([
      { key: 'log_level', from: 'INFO', to: 'ERROR' },
      { key: 'resources.sqlite_traffic.db_max_conn_pool_size', from: 4, to: 6 },
    ]);
  });
});

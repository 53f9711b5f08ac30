/**
 * The `watchtower` command (dist/cli.js) run as a real child process with its own temporary config:
 * `check` against real SQLite, PostgreSQL and MariaDB databases of its own, usage errors, help, and
 * `reload --pid` reaching a real gateway.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { mysqlAvailable, mysqlTarget, odbcAvailable, odbcTarget, pgAvailable, pgTarget, requireOrSkip, TEST_ODBC_DRIVER, uniqueName } from '../helpers/databases.js';
import { ROOT, startGateway } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const skipOdbc = skipMysql || requireOrSkip('MariaDB ODBC', await odbcAvailable());

const work = mkdtempSync(join(tmpdir(), 'wt-cli-'));
const dbName = uniqueName('wt_cli');
const pg = pgTarget({ db_name: dbName });
const my = mysqlTarget({ db_name: dbName });
/** The MariaDB database above, through ODBC. */
const odbc = odbcTarget({ db_name: dbName });
const missing = uniqueName('wt_no_table');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: work, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Writes a config naming `resources` and one endpoint file; returns the env that selects it. */
function writeConfig(name: string, resources: Record<string, SecureResourceSettings>, endpoints: unknown[]): Record<string, string> {
  const file = join(work, `${name}.yaml`);
  const epFile = join(work, `${name}-endpoints.yaml`);
  writeFileSync(epFile, stringify({ endpoints }));
  const rids = Object.keys(resources);
  writeFileSync(
    file,
    stringify({
      resource_ids: rids,
      resources: Object.fromEntries(rids.map((r) => [r, { db_conn_timeout: 5 }])),
      secure: Object.fromEntries(rids.map((r) => [r, fileTarget(resources[r])])),
      endpoints: [epFile],
      pid_file: join(work, `${name}.pid`),
    }),
  );
  const env: Record<string, string> = { WT_CONFIG: file, OVERRIDE_CONFIG_PATH: join(work, 'no-override.yaml') };
  // Passwords only ever come from the environment.
  for (const [rid, t] of Object.entries(resources)) if (t.db_password) env[`${rid}__db_password`] = t.db_password;
  return env;
}

function select(path: string, rid: string, table: string): Record<string, unknown> {
  return {
    method: 'GET',
    path,
    resources: [rid],
    params: { min_id: { type: 'integer', minimum: 0, maximum: 1000 } },
    statements: [{ sql: `SELECT id, name FROM ${table} WHERE id > :min_id` }],
  };
}

const sqlitePath = join(work, 'lite.db');
const lite: SecureResourceSettings = { db_type: 'sqlite', db_path: sqlitePath } as SecureResourceSettings;

beforeAll(async () => {
  const db = new Database(sqlitePath);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)');
  db.close();
  if (!skipPg) await seedSampleDatabase(pg, ['CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)']);
  if (!skipMysql) await seedSampleDatabase(my, ['CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(100))']);
}, 120_000);

afterAll(async () => {
  if (!skipPg) await dropDatabase(pg);
  if (!skipMysql) await dropDatabase(my);
  rmSync(work, { recursive: true, force: true });
});

describe('watchtower check', () => {
  it.skipIf(skipPg)('passes a clean config with valid endpoints on SQLite and PostgreSQL', async () => {
    const env = writeConfig('clean', { lite, pg }, [select('/lite/items', 'lite', 'items'), select('/pg/items', 'pg', 'items')]);
    const r = await runCli(['check'], env);
    expect(r.stdout).toContain('2 endpoints, 2 statements checked, 0 problems');
    expect(r.code).toBe(0);
  });

  const dbs = [
    { rid: 'lite', skip: false, target: () => lite },
    { rid: 'pg', skip: skipPg, target: () => pg },
    { rid: 'my', skip: skipMysql, target: () => my },
    { rid: 'odbc', skip: skipOdbc, target: () => odbc },
  ];
  for (const d of dbs) {
    it.skipIf(d.skip)(`reports the database's own error for a missing table on ${d.rid}`, async () => {
      const env = writeConfig(`missing-${d.rid}`, { [d.rid]: d.target() }, [select('/ok', d.rid, 'items'), select('/bad', d.rid, missing)]);
      const r = await runCli(['check'], env);
      const line = r.stdout.split('\n').find((l) => l.includes(`GET /bad: statements[0] on ${d.rid}: `));
      expect(line, r.stdout + r.stderr).toBeDefined();
      expect(line).toContain(missing);
      expect(r.stdout).toContain('2 endpoints, 2 statements checked, 1 problems');
      expect(r.code).toBe(1);
    });
  }

  it.skipIf(skipOdbc)('prepares ODBC statements where the driver names no database with a known EXPLAIN', async () => {
    // The same MariaDB driver named by its library file, which says nothing of the database behind it.
    const library = /^Driver=(.+)$/m.exec(execFileSync('odbcinst', ['-q', '-d', '-n', TEST_ODBC_DRIVER], { encoding: 'utf8' }))?.[1].trim();
    expect(library).toBeDefined();
    const generic = { ...odbc, db_driver: library! };
    const env = writeConfig('odbc-prepare', { generic }, [select('/ok', 'generic', 'items'), select('/bad', 'generic', missing)]);
    const r = await runCli(['check'], env);
    const line = r.stdout.split('\n').find((l) => l.includes('GET /bad: statements[0] on generic: '));
    expect(line, r.stdout + r.stderr).toContain(`${missing}' doesn't exist`);
    expect(r.stdout).toContain('2 endpoints, 2 statements checked, 1 problems');
    expect(r.code).toBe(1);
  });

  it('lists every static problem at once', async () => {
    const env = writeConfig('static', { lite }, [
      { method: 'GET', path: '/a', resources: ['ghost'], statements: [{ sql: 'SELECT 1' }] },
      { method: 'GET', path: '/b', resources: ['lite'], statements: [{ sql: 'SELECT :nope' }] },
      select('/c', 'lite', 'items'),
      select('/c', 'lite', 'items'),
      { method: 'GET', path: '/metrics', resources: ['lite'], statements: [{ sql: 'SELECT 1' }] },
    ]);
    const r = await runCli(['check'], env);
    expect(r.stdout).toMatch(/GET \/a: .*ghost/);
    expect(r.stdout).toMatch(/GET \/b: .*nope/);
    expect(r.stdout).toMatch(/GET \/c: .*/);
    expect(r.stdout).toMatch(/GET \/metrics: /);
    expect(r.stdout).toMatch(/, [4-9] problems\n$/);
    expect(r.code).toBe(1);
  });

  it('names a resource it cannot reach', async () => {
    const env = writeConfig('unreachable', { lite: { ...lite, db_path: join(work, 'mistyped.db') } }, [select('/a', 'lite', 'items')]);
    const r = await runCli(['check'], env);
    expect(r.stdout).toContain(`resource lite: cannot connect to sqlite ${join(work, 'mistyped.db')}`);
    expect(r.code).toBe(1);
  });
});

describe('watchtower usage', () => {
  it('exits 2 naming an unknown subcommand or option', async () => {
    const sub = await runCli(['frobnicate']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain("unknown command 'frobnicate'");
    const opt = await runCli(['check', '--verbose']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain('--verbose');
  });

  it('--help lists the subcommands and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const sub of ['start', 'check', 'reload']) expect(r.stdout).toMatch(new RegExp(`^  ${sub} `, 'm'));
    const sub = await runCli(['reload', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--pid');
  });
});

describe('watchtower reload', () => {
  it('makes a running gateway reload its config', async () => {
    const gw = await startGateway();
    try {
      const from = gw.lines.length;
      const r = await runCli(['reload', '--pid', String(gw.child.pid)]);
      expect(r.code).toBe(0);
      const record = await gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 10_000, from);
      expect(record.fields.tag).toBe('config-reload');
    } finally {
      await gw.stop();
    }
  });

  it('exits 1 when there is no such process', async () => {
    const r = await runCli(['reload', '--pid', '999999999']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no process with pid 999999999');
  });
});

/**
 * `watchtower check --replicas N` (dist/cli.js as a child process) against the real PostgreSQL and
 * MariaDB: the connection limit each server reports, read here on a connection of the test's own,
 * against N × workers × the pool sizes of the resources on that server added up. A number of
 * replicas that fits exits 0, one more exits 1, each with its arithmetic; SQLite and ODBC are said
 * not to apply, and a server whose limit cannot be read is a problem.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { closedPort, mysqlAvailable, mysqlTarget, odbcTarget, pgAvailable, pgTarget, requireOrSkip, TEST_MYSQL_URL, TEST_PG_URL } from '../helpers/databases.js';
import { ROOT } from '../helpers/gateway-process.js';
import { fileTarget } from '../helpers/test-data.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const skipMysql = requireOrSkip('MariaDB', await mysqlAvailable());
const work = mkdtempSync(join(tmpdir(), 'wt-replicas-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface CliResult { code: number; stdout: string; stderr: string }

function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: work, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A config of these resources (pool maximum, target), no endpoint files; the env that selects it. */
function writeConfig(name: string, resources: Record<string, [pool: number, target: SecureResourceSettings]>): Record<string, string> {
  const file = join(work, `${name}.yaml`);
  const rids = Object.keys(resources);
  writeFileSync(
    file,
    stringify({
      resource_ids: rids,
      resources: Object.fromEntries(rids.map((r) => [r, { db_min_conn_pool_size: 0, db_max_conn_pool_size: resources[r][0], db_conn_timeout: 5 }])),
      secure: Object.fromEntries(rids.map((r) => [r, fileTarget(resources[r][1])])),
      pid_file: '',
    }),
  );
  const env: Record<string, string> = { WT_CONFIG: file, OVERRIDE_CONFIG_PATH: join(work, 'no-override.yaml') };
  for (const [rid, [, t]] of Object.entries(resources)) if (t.db_password) env[`${rid}__db_password`] = t.db_password;
  return env;
}

/** The line of the arithmetic for one server. */
const serverLine = (out: string, server: string) => out.split('\n').find((l) => l.startsWith(`${server}: `));

describe.skipIf(skipPg)('check --replicas on PostgreSQL', async () => {
  // What the server says, read without the gateway's code.
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  const setting = async (name: string) => Number((await client.query(`SHOW ${name}`)).rows[0][name]);
  const max = await setting('max_connections');
  const su = await setting('superuser_reserved_connections');
  const hasReserved = (await client.query("SELECT 1 FROM pg_settings WHERE name = 'reserved_connections'")).rowCount === 1;
  const reserved = hasReserved ? await setting('reserved_connections') : 0;
  await client.end();
  const allowed = max - su - reserved;
  const limitText = `max_connections ${max} - superuser_reserved_connections ${su}${hasReserved ? ` - reserved_connections ${reserved}` : ''} = ${allowed}`;

  // Two resources on the one server (two databases of it) share its limit: 2 workers × (4 + 3) per replica.
  const t = pgTarget();
  const server = `postgres ${t.db_host}:${t.db_port || 5432}`;
  const env = {
    ...writeConfig('pg', { lite: [5, { db_type: 'sqlite', db_path: join(work, 'lite.db'), db_sample: true } as SecureResourceSettings], pg_a: [4, t], pg_b: [3, pgTarget({ db_name: 'postgres' })] }),
    WT_WORKERS: '2',
  };
  const perReplica = 2 * 7;
  const fitting = Math.floor(allowed / perReplica);

  it(`${fitting} replicas fit (${fitting} × 2 × 7 <= ${allowed}): exit 0, with the arithmetic`, async () => {
    expect(fitting).toBeGreaterThan(0);
    const r = await runCli(['check', '--replicas', String(fitting)], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(serverLine(r.stdout, server)).toBe(
      `${server}: ${fitting} × 2 × db_max_conn_pool_size (pg_a 4 + pg_b 3 = 7) = ${fitting * perReplica} connections; the server allows ${limitText}: fits, ${allowed - fitting * perReplica} left for other clients`,
    );
    expect(r.stdout).toContain(`sizing: ${fitting} replicas × 2 workers each`);
    expect(r.stdout).toMatch(/^lite: sqlite, not applicable/m);
  });

  it(`${fitting + 1} replicas do not fit: exit 1, naming the server and how many would`, async () => {
    const n = fitting + 1;
    const r = await runCli(['check', '--replicas', String(n)], env);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(serverLine(r.stdout, server)).toBe(
      `${server}: ${n} × 2 × db_max_conn_pool_size (pg_a 4 + pg_b 3 = 7) = ${n * perReplica} connections; the server allows ${limitText}: does not fit, ${n * perReplica - allowed} too many`,
    );
    expect(r.stdout).toContain(`${server}: ${n} replicas need ${n * perReplica} connections, the server allows ${allowed}: at most ${plural(fitting)} fit`);
  });

  it('a server whose limit cannot be read is a problem (exit 1)', async () => {
    const port = await closedPort();
    const r = await runCli(['check', '--replicas', '1'], writeConfig('pg-down', { pg_down: [2, pgTarget({ db_port: port })] }));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain(`postgres ${t.db_host}:${port}: cannot read the connection limit: pg_down: `);
  });
});

const plural = (n: number) => `${n} replica${n === 1 ? '' : 's'}`;

describe.skipIf(skipMysql)('check --replicas on MariaDB', async () => {
  const conn = await mysql.createConnection(TEST_MYSQL_URL);
  const [rows] = await conn.query('SELECT @@max_connections AS m');
  const max = Number((rows as { m: number }[])[0].m);
  await conn.end();

  const t = mysqlTarget();
  const server = `mysql ${t.db_host}:${t.db_port || 3306}`;
  // workers from the config this time (1); an ODBC resource is not applicable even on the same server.
  const env = writeConfig('my', { my_a: [6, t], my_odbc: [2, odbcTarget()] });
  const fitting = Math.floor(max / 6);

  it(`${fitting} replicas fit and ${fitting + 1} do not (max_connections ${max}, 1 worker × 6 each)`, async () => {
    const ok = await runCli(['check', '--replicas', String(fitting)], env);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(serverLine(ok.stdout, server)).toBe(
      `${server}: ${fitting} × 1 × db_max_conn_pool_size (my_a 6) = ${fitting * 6} connections; the server allows max_connections ${max}: fits, ${max - fitting * 6} left for other clients`,
    );
    expect(ok.stdout).toMatch(new RegExp(`^my_odbc: odbc, not applicable .*: it may receive ${fitting} × 1 × 2 = ${fitting * 2} connections`, 'm'));

    const over = await runCli(['check', '--replicas', String(fitting + 1)], env);
    expect(over.code, over.stdout + over.stderr).toBe(1);
    expect(serverLine(over.stdout, server)).toContain(`= ${(fitting + 1) * 6} connections; the server allows max_connections ${max}: does not fit`);
  });
});

describe('check --replicas usage', () => {
  it('refuses a count that is not a whole number from 1 (exit 2, nothing checked)', async () => {
    for (const bad of ['0', '-1', '2.5', 'many']) {
      const r = await runCli(['check', `--replicas=${bad}`], { WT_CONFIG: join(work, 'none.yaml') });
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain(`--replicas must be a whole number from 1 to 999999, not '${bad}'`);
    }
  });
});

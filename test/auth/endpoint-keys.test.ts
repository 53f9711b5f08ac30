/**
 * The loader's checks of the auth keys of declared endpoints (auth, public, pg_role_claim) and of
 * the identity params, each problem naming file, endpoint and key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildSettings } from '../../src/config/index.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-auth-endpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(endpoints: unknown[], sqlClaims: string[] = []) {
  const file = join(dir, 'e.yaml');
  writeFileSync(file, stringify({ endpoints }));
  const settings = buildSettings(
    {
      resource_ids: [],
      secure: { pg: { db_type: 'postgres', db_name: 'x' }, lite: { db_type: 'sqlite', db_path: join(dir, 'x.db') } },
      endpoints: [file],
      auth: { sql_claims: sqlClaims },
    },
    {},
    { env: {} },
  );
  return { file, run: () => loadEndpoints(settings) };
}

function problems(endpoints: unknown[], sqlClaims: string[] = []): string[] {
  const { file, run } = load(endpoints, sqlClaims);
  try {
    run();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message.replace(/^endpoint files refused, \d+ problem\(s\): /, '').split('; ').map((p) => p.replace(`${file}: `, ''));
  }
  return [];
}

const pg = (path: string, extra: Record<string, unknown>, sql = 'SELECT 1 AS one') => ({ method: 'GET', path, statements: [{ resource: 'pg', sql }], ...extra });

describe('declared endpoints: auth keys', () => {
  it('keeps auth, public and pg_role_claim on the endpoint', () => {
    const { run } = load([pg('/a', { auth: { roles: ['reader'] }, pg_role_claim: 'db.role' }), pg('/b', { public: true })]);
    const [a, b] = run();
    expect([a.auth, a.public, a.pgRoleClaim]).toEqual([{ roles: ['reader'] }, undefined, 'db.role']);
    expect([b.auth, b.public, b.pgRoleClaim]).toEqual([undefined, true, undefined]);
  });

  it('names every problem of auth, public and pg_role_claim', () => {
    expect(
      problems([
        pg('/a', { auth: { roles: [] } }),
        pg('/b', { auth: { roles: ['ok'], users: ['x'] } }),
        pg('/c', { auth: ['reader'] }),
        pg('/d', { public: 'yes' }),
        pg('/e', { public: true, auth: { roles: ['reader'] } }),
        pg('/f', { public: true, pg_role_claim: 'role' }),
        pg('/g', { pg_role_claim: 'no spaces', result: 'stream' }),
        pg('/h', { pg_role_claim: 'role', result: 'stream' }),
        { method: 'GET', path: '/i', pg_role_claim: 'role', statements: [{ resource: 'lite', sql: 'SELECT 1' }] },
      ]),
    ).toEqual([
      'GET /a: auth.roles: must be a list of at least one role name (/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/)',
      'GET /b: auth: has only roles',
      'GET /c: auth: must be a mapping { roles: [...] }',
      'GET /d: public: must be true or false',
      'GET /e: public: true and auth.roles contradict each other: a public route asks no role',
      'GET /f: pg_role_claim: needs a caller: a public endpoint may be called without one',
      'GET /g: pg_role_claim: must be a claim path (names separated by dots), e.g. role',
      'GET /h: pg_role_claim: is not available for result stream',
      'GET /i: pg_role_claim: sets a PostgreSQL role: resource lite is sqlite',
    ]);
  });

  it('binds :_caller and :_roles, and :_claim_<name> only for claims auth.sql_claims lists', () => {
    expect(problems([pg('/a', {}, 'SELECT :_caller AS c, :_roles AS r, :_claim_tenant AS t')], ['tenant'])).toEqual([]);
    expect(problems([pg('/a', {}, 'SELECT :_claim_tenant AS t')])).toEqual(['GET /a: statements[0].sql: :_claim_tenant binds a claim auth.sql_claims does not list']);
  });
});

/**
 * The caller's identity in PostgreSQL, through a running gateway: an endpoint with pg_role_claim
 * runs its statement in a transaction as the database role its token names, with the token's
 * claims in request.jwt.claims, so a row-level security policy shows each tenant its own rows only
 * and refuses a row written for another; once the request is over the pooled connection is the
 * gateway's own user again. :_claim_tenant filters rows without RLS. The test's own database and
 * roles, dropped afterwards.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase } from '../../src/db/sample-data.js';
import { pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget } from '../helpers/test-data.js';
import { asymmetricKey, AUDIENCE, claims, ISSUER } from './tokens.js';

const skip = requireOrSkip('PostgreSQL', await pgAvailable());

const target = pgTarget({ db_name: uniqueName('wt_rls') });
const role = uniqueName('wt_tenant');
let gw: GatewayProcess;
let key: Awaited<ReturnType<typeof asymmetricKey>>;

async function admin(sql: string[], db = target): Promise<void> {
  const conn = await createConnector('rls-setup', db).connect(0, 10);
  try {
    for (const s of sql) await conn.query(s, [], { timeoutSeconds: 30 });
  } finally {
    await conn.close();
  }
}

describe.skipIf(skip)('row-level security through pg_role_claim', () => {
  beforeAll(async () => {
    await ensureDatabase(target);
    // The role the tokens name: no login, no BYPASSRLS; the gateway's user (a superuser here) may become it.
    await admin(
      [
        `CREATE ROLE ${role} NOLOGIN`,
        'CREATE TABLE docs (tenant text NOT NULL, title text NOT NULL)',
        "INSERT INTO docs VALUES ('a', 'a-plan'), ('a', 'a-budget'), ('b', 'b-secret')",
        'ALTER TABLE docs ENABLE ROW LEVEL SECURITY',
        `CREATE POLICY own_rows ON docs TO ${role} USING (tenant = current_setting('request.jwt.claims', true)::json->>'tenant')`,
        `GRANT SELECT, INSERT ON docs TO ${role}`,
      ],
      target,
    );
    key = await asymmetricKey('rs1', 'RS256');
    gw = await startGateway({
      configPatch: (doc, dir) => {
        for (const k of Object.keys(doc)) delete doc[k];
        const jwks = join(dir, 'jwks.json');
        writeFileSync(jwks, JSON.stringify({ keys: [key.jwk] }));
        const rid = 'pg_rls';
        const statement = (sql: string) => [{ resource: rid, sql }];
        writeFileSync(
          join(dir, 'endpoints.yaml'),
          stringify({
            endpoints: [
              { method: 'GET', path: '/notes', pg_role_claim: 'db.role', statements: statement('SELECT tenant, title FROM docs ORDER BY title') },
              {
                method: 'POST',
                path: '/notes',
                pg_role_claim: 'db.role',
                params: { tenant: { in: 'body', type: 'string', maxLength: 10, required: true }, title: { in: 'body', type: 'string', maxLength: 40, required: true } },
                statements: statement('INSERT INTO docs (tenant, title) VALUES (:tenant, :title)'),
                result: 'exec',
              },
              { method: 'GET', path: '/filtered', statements: statement('SELECT title FROM docs WHERE tenant = :_claim_tenant ORDER BY title') },
              { method: 'GET', path: '/session', statements: statement("SELECT current_user::text AS db_user, coalesce(current_setting('request.jwt.claims', true), '') AS claims") },
            ],
          }),
        );
        Object.assign(doc, {
          log_level: 'INFO',
          resource_ids: [rid],
          // One connection, so every request reuses the one the role was set on.
          resources: { [rid]: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1 } },
          secure: { [rid]: fileTarget(target) },
          endpoints: [join(dir, 'endpoints.yaml')],
          auth: { jwt_jwks_file: jwks, jwt_issuer: ISSUER, jwt_audience: AUDIENCE, sql_claims: ['tenant'] },
        });
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await dropDatabase(target);
    await admin([`DROP ROLE IF EXISTS ${role}`], pgTarget({ db_name: 'postgres' }));
  });

  const tokenOf = (tenant: string, dbRole: string | null = role) => key.sign(claims(`user-${tenant}`, { tenant, ...(dbRole ? { db: { role: dbRole } } : {}) }));
  async function call(path: string, token: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(gw.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, json: await res.json() };
  }

  it('each tenant sees its own rows only', async () => {
    expect(await call('/notes', await tokenOf('a'))).toEqual({ status: 200, json: [{ tenant: 'a', title: 'a-budget' }, { tenant: 'a', title: 'a-plan' }] });
    expect(await call('/notes', await tokenOf('b'))).toEqual({ status: 200, json: [{ tenant: 'b', title: 'b-secret' }] });
    expect(await call('/notes', await tokenOf('c'))).toEqual({ status: 200, json: [] });
  });

  it('a write runs under the policy too: its own tenant is written, another tenant refused and nothing written', async () => {
    const a = await tokenOf('a');
    expect(await call('/notes', a, { tenant: 'a', title: 'a-new' })).toEqual({ status: 200, json: { affected: 1 } });
    const refused = await call('/notes', a, { tenant: 'b', title: 'planted' });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect((await call('/notes', await tokenOf('b'))).json).toEqual([{ tenant: 'b', title: 'b-secret' }]);
    expect((await call('/notes', a)).json).toEqual([
      { tenant: 'a', title: 'a-budget' },
      { tenant: 'a', title: 'a-new' },
      { tenant: 'a', title: 'a-plan' },
    ]);
  });

  it('a token naming no database role is refused with 403; the role a token names must be a plain name', async () => {
    const none = await call('/notes', await tokenOf('a', null));
    expect(none.status).toBe(403);
    expect((none.json as { detail: string }).detail).toMatch(/names no database role/);
    expect((await call('/notes', await tokenOf('a', 'postgres; DROP TABLE docs'))).status).toBe(403);
  });

  it('after such a request the pooled connection is the gateway user again, with no claims set', async () => {
    await call('/notes', await tokenOf('a'));
    expect(await call('/session', await tokenOf('a'))).toEqual({ status: 200, json: [{ db_user: target.db_user, claims: '' }] });
  });

  it(':_claim_tenant filters rows by the caller without row-level security', async () => {
    expect(await call('/filtered', await tokenOf('b'))).toEqual({ status: 200, json: [{ title: 'b-secret' }] });
  });
});

/**
 * The auth section of the config: the key entries of the config and of the keys file, the JWKS
 * file, what a reload may change, and what errors and reload records say (names, never hashes).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKey, keyFileLine, KeyTable } from '../../src/auth/api-keys.js';
import { buildSettings, diffSettings, isReloadable } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-auth-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const build = (auth: Record<string, unknown>, override: Record<string, unknown> = {}) =>
  buildSettings({ resource_ids: [], auth }, override, { env: {}, mainFile: 'main.yaml', overrideFile: 'override.yaml' });

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('auth settings', () => {
  it('without an auth section there is no credential source and nothing to read', () => {
    const s = buildSettings({ resource_ids: [] }, {}, { env: {} });
    expect(s.auth).toMatchObject({ required: false, api_keys: [], jwks: [], jwt_algorithms: ['HS256', 'RS256', 'ES256', 'EdDSA'] });
  });

  it('reads the entries of the config and of the keys file together', () => {
    const a = createKey();
    const b = createKey();
    const file = join(dir, 'keys.yaml');
    writeFileSync(file, `keys:\n${keyFileLine({ id: 'b', sha256: b.sha256, roles: ['reader'], expires: '2030-01-02T03:04:05Z' })}\n`);
    const s = build({ api_keys_file: file, api_keys: [{ id: 'a', sha256: a.sha256, roles: ['ops'], claims: { tenant: 'x' } }] });
    expect(s.auth!.api_keys.map((k) => [k.id, k.roles, k.expiresAt, k.claims])).toEqual([
      ['a', ['ops'], undefined, { tenant: 'x' }],
      ['b', ['reader'], Date.parse('2030-01-02T03:04:05Z'), {}],
    ]);
    const table = new KeyTable(s.auth!.api_keys);
    expect(table.check(a.key)).toMatchObject({ ok: true, entry: { id: 'a' } });
    expect(table.check(b.key, Date.parse('2030-01-02T03:04:05Z'))).toMatchObject({ ok: false, reason: 'expired' });
    expect(table.check(createKey().key)).toEqual({ ok: false, reason: 'unknown' });
    expect(table.check(a.sha256)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses bad entries all at once, by position and id, never quoting a hash', () => {
    const k = createKey();
    const err = refusal(() =>
      build({
        api_keys: [
          { id: 'ok', sha256: k.sha256, roles: ['r'] },
          { id: 'dup', sha256: k.sha256.replace(/^./, '0'), roles: ['r'] },
          { id: 'dup', sha256: 'beef', roles: 'r', expires: 'soon' },
          { id: 'anonymous', sha256: k.sha256.replace(/^./, '1') },
          { sha256: k.sha256, roles: ['a b'], claims: { sub: 'x' } },
        ],
      }),
    );
    expect(err.message).toContain('auth.api_keys[2] (dup).sha256: must be the SHA-256');
    expect(err.message).toContain('auth.api_keys[2] (dup).roles: must be a list of role names');
    expect(err.message).toContain('auth.api_keys[2] (dup).expires: must be an ISO 8601 date');
    expect(err.message).toContain('auth.api_keys[3] (anonymous).id: anonymous is reserved');
    expect(err.message).toContain('auth.api_keys[4].id: must match');
    expect(err.message).toContain('auth.api_keys[4].claims: a claim name');
    expect(err.message).not.toContain(k.sha256.slice(1));
    expect(err.message).not.toContain('beef');
  });

  it('refuses two entries with one hash, and one id twice', () => {
    const k = createKey();
    const other = createKey();
    const err = refusal(() => build({ api_keys: [{ id: 'a', sha256: k.sha256 }, { id: 'b', sha256: k.sha256 }, { id: 'a', sha256: other.sha256 }] }));
    expect(err.message).toContain('API key b has the same sha256 as another key');
    expect(err.message).toContain('API key id a is given twice');
  });

  it('JWT: issuer and audience are required with a key source; private keys and short secrets are refused', () => {
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ kty: 'RSA', kid: 'r', n: 'AQAB', e: 'AQAB', d: 'secret' }, { kty: 'oct', kid: 'h', k: 'c2hvcnQ' }, { kty: 'weird' }] }));
    const err = refusal(() => build({ jwt_jwks_file: jwks }));
    expect(err.message).toContain('keys[0]: holds a private key');
    expect(err.message).toContain('keys[1]: an oct key (HS*) needs k, base64url, of at least 32 bytes');
    expect(err.message).toContain('keys[2].kty: must be RSA, EC, OKP or oct');
    expect(err.message).toContain('auth.jwt_issuer and auth.jwt_audience must be set');
    expect(err.message).not.toContain('secret');
    expect(refusal(() => build({ jwt_jwks_url: 'http://idp.example.com/jwks' })).message).toContain('auth.jwt_jwks_url: must be an https:// URL');
    expect(refusal(() => build({ jwt_algorithms: ['none'] })).message).toContain('jwt_algorithms[0] is not one of');
    // One text for issuer and audience is a list of one.
    const s = build({ jwt_jwks_url: 'https://idp.example.com/jwks', jwt_issuer: 'https://idp.example.com/', jwt_audience: 'wt' });
    expect([s.auth!.jwt_issuer, s.auth!.jwt_audience]).toEqual([['https://idp.example.com/'], ['wt']]);
  });

  it('unknown auth keys are named; an override may change reloadable auth keys, not required or sql_claims', () => {
    expect(refusal(() => build({ api_key: [] })).message).toContain('unknown keys: auth.api_key');
    expect(refusal(() => build({}, { auth: { required: true, sql_claims: ['t'] } })).keys).toEqual(['auth.required', 'auth.sql_claims']);
    const s = build({ metrics_roles: ['ops'] }, { auth: { docs_roles: ['dev'] } });
    expect([s.auth!.metrics_roles, s.auth!.docs_roles]).toEqual([['ops'], ['dev']]);
    expect(isReloadable('auth.api_keys_file')).toBe(true);
    expect(isReloadable('auth.required')).toBe(false);
  });

  it('a reload record names the key ids and kids that changed, never a hash or a key', () => {
    const [a, b, c, c2] = [createKey(), createKey(), createKey(), createKey()];
    const before = build({ api_keys: [{ id: 'a', sha256: a.sha256 }, { id: 'b', sha256: b.sha256 }, { id: 'c', sha256: c.sha256 }] });
    const after = build({ api_keys: [{ id: 'a', sha256: a.sha256 }, { id: 'c', sha256: c2.sha256 }, { id: 'd', sha256: b.sha256 }], metrics_roles: ['ops'] });
    const changes = diffSettings(before, after);
    expect(changes).toContainEqual({ key: 'auth.api_keys', from: undefined, to: undefined, summary: 'API keys added d; removed b; changed c' });
    expect(changes).toContainEqual({ key: 'auth.metrics_roles', from: [], to: ['ops'] });
    const text = JSON.stringify(changes);
    for (const k of [a, b, c, c2]) expect(text).not.toContain(k.sha256);
  });
});

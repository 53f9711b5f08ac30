/**
 * Authentication and authorization over real HTTP against a running gateway (dist/main.js): API
 * keys from the config and a keys file, JWTs verified with the keys of a JWKS file (RS256, ES256,
 * EdDSA, and an HS256 secret), every kind of bad credential, roles per endpoint, /metrics roles,
 * path spellings that must not slip past a rule, the caller's identity in SQL, and SIGUSR1 revoking
 * a key and a JWT key from the next request.
 */
import { request as httpRequest } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createKey, keyFileLine } from '../../src/auth/api-keys.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { asymmetricKey, AUDIENCE, claims, hmacKey, hs256With, ISSUER, unsignedToken, type SigningKey } from './tokens.js';

const ENDPOINTS = {
  endpoints: [
    // Declares nothing: any authenticated caller.
    { method: 'GET', path: '/rows', statements: [{ resource: 'sqlite_traffic', sql: 'SELECT port FROM tcp_hourly ORDER BY port LIMIT 1' }] },
    {
      method: 'GET',
      path: '/reports/:port',
      auth: { roles: ['reader'] },
      params: { port: { in: 'path', type: 'integer', minimum: 0, maximum: 65535 } },
      statements: [{ resource: 'sqlite_traffic', sql: 'SELECT :port AS port' }],
      result: 'one',
    },
    {
      method: 'GET',
      path: '/whoami',
      public: true,
      statements: [{ resource: 'sqlite_traffic', sql: 'SELECT :_caller AS caller, :_roles AS roles, :_claim_tenant AS tenant' }],
      result: 'one',
    },
    // A write that declares nothing: never public.
    { method: 'POST', path: '/notes', statements: [{ resource: 'sqlite_traffic', sql: 'UPDATE tcp_hourly SET port = port WHERE 0' }], result: 'exec' },
  ],
};

let gw: GatewayProcess;
let keysFile: string;
let jwksFile: string;
const keys = { reader: createKey(), writer: createKey(), ops: createKey(), old: createKey(), gone: createKey(), inline: createKey() };
let rs: Awaited<ReturnType<typeof asymmetricKey>>;
let rsImpostor: Awaited<ReturnType<typeof asymmetricKey>>;
let es: SigningKey;
let ed: SigningKey;
let hs: ReturnType<typeof hmacKey>;

function keysDoc(ids: (keyof typeof keys)[]): string {
  const roles: Record<string, string[]> = { reader: ['reader'], writer: ['writer'], ops: ['ops'], old: ['reader'], gone: ['reader'] };
  return `keys:\n${ids.map((id) => keyFileLine({ id, sha256: keys[id].sha256, roles: roles[id], ...(id === 'old' ? { expires: '2020-01-01' } : {}) })).join('\n')}\n`;
}

beforeAll(async () => {
  [rs, rsImpostor, es, ed] = await Promise.all([asymmetricKey('rs1', 'RS256'), asymmetricKey('rs1', 'RS256'), asymmetricKey('es1', 'ES256'), asymmetricKey('ed1', 'EdDSA')]);
  hs = hmacKey('hs1');
  gw = await startGateway({
    configPatch: (doc, dir) => {
      Object.assign(doc, sqliteConfig(dir));
      keysFile = join(dir, 'keys.yaml');
      jwksFile = join(dir, 'jwks.json');
      writeFileSync(keysFile, keysDoc(['reader', 'writer', 'ops', 'old', 'gone']));
      writeFileSync(jwksFile, JSON.stringify({ keys: [rs.jwk, es.jwk, ed.jwk, hs.jwk] }));
      writeFileSync(join(dir, 'endpoints.yaml'), stringify(ENDPOINTS));
      doc.endpoints = [join(dir, 'endpoints.yaml')];
      doc.auth = {
        api_keys_file: keysFile,
        api_keys: [{ id: 'inline', sha256: keys.inline.sha256, roles: ['reader'], claims: { tenant: 'acme' } }],
        jwt_jwks_file: jwksFile,
        jwt_issuer: ISSUER,
        jwt_audience: AUDIENCE,
        jwt_roles_claim: 'realm.roles',
        jwt_clock_skew: 30,
        sql_claims: ['tenant'],
        metrics_roles: ['ops'],
      };
    },
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
});

interface Answer {
  status: number;
  body: string;
  headers: Headers;
}

async function call(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const res = await fetch(gw.url + path, { method, headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A request with the path exactly as given (fetch would normalise it). */
function rawCall(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: gw.port, path, method, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function expectRefused(a: Answer, detail: RegExp, credential?: string): void {
  expect(a.status, a.body).toBe(401);
  expect(JSON.parse(a.body).detail).toMatch(detail);
  expect(a.headers.get('www-authenticate')).toMatch(/^Bearer realm="watchtower"/);
  if (credential !== undefined) {
    // Nothing of the credential comes back: not the whole, not a part long enough to mean anything.
    for (const part of credential.split('.').filter((p) => p.length >= 8)) expect(a.body).not.toContain(part.slice(0, 16));
  }
}

describe('API keys', () => {
  it('a key from the keys file or the config, as Bearer or X-API-Key, calls the endpoint as its id', async () => {
    expect((await call('/rows', { ...bearer(keys.reader.key), 'x-correlation-id': 'auth-reader-1' })).status).toBe(200);
    // The request's records name the caller (client_id), set before they are written.
    for (const tag of ['request', 'request-stats']) {
      const line = await gw.waitForLine((l) => l.fields.tag === tag && l.fields.cid === 'auth-reader-1', 5000);
      expect(line.fields.client_id, tag).toBe('reader');
    }
    expect((await call('/rows', { 'x-api-key': keys.writer.key })).status).toBe(200);
    const who = await call('/whoami', { 'x-api-key': keys.inline.key });
    expect(JSON.parse(who.body)).toEqual({ caller: 'inline', roles: 'reader', tenant: 'acme' });
  });

  it('no credential: 401 with WWW-Authenticate naming the realm and no error', async () => {
    const a = await call('/rows');
    expectRefused(a, /authentication required/);
    expect(a.headers.get('www-authenticate')).toBe('Bearer realm="watchtower"');
  });

  it('an unknown key, a malformed one, two credentials at once: 401 saying which, never the key', async () => {
    const unknown = createKey().key;
    expectRefused(await call('/rows', { 'x-api-key': unknown }), /^the API key is not valid$/, unknown);
    expectRefused(await call('/rows', bearer('wtk_short')), /^the API key is malformed$/, 'wtk_short');
    expectRefused(await call('/rows', { 'x-api-key': keys.reader.key, ...bearer(keys.writer.key) }), /send one credential/);
    // A key's hash is not a key.
    expectRefused(await call('/rows', { 'x-api-key': keys.reader.sha256 }), /malformed/);
  });

  it('an expired key: 401 "has expired"', async () => {
    const a = await call('/rows', { 'x-api-key': keys.old.key });
    expectRefused(a, /^the API key has expired$/, keys.old.key);
    expect(a.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('JWT', () => {
  it('RS256, ES256, EdDSA and HS256 tokens are accepted; roles come from the configured claim path, claims reach SQL', async () => {
    for (const key of [rs, es, ed, hs]) {
      const token = await key.sign(claims(`user-${key.alg}`, { realm: { roles: ['reader', 'bad role', 'x'] }, tenant: 't1' }));
      const who = await call('/whoami', bearer(token));
      expect(who.status, `${key.alg}: ${who.body}`).toBe(200);
      expect(JSON.parse(who.body)).toEqual({ caller: `user-${key.alg}`, roles: 'reader,x', tenant: 't1' });
      expect((await call('/reports/7', bearer(token))).status).toBe(200);
    }
  });

  it('within the clock skew an exp just past and an nbf just ahead are accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await call('/rows', bearer(await rs.sign(claims('skew', { exp: now - 10 }))))).status).toBe(200);
    expect((await call('/rows', bearer(await rs.sign(claims('skew', { nbf: now + 10 }))))).status).toBe(200);
  });

  it('refuses every bad token with 401, saying only which kind of problem', async () => {
    const now = Math.floor(Date.now() / 1000);
    const valid = claims('mallory');
    const cases: [string, string, RegExp][] = [
      ['malformed (two parts)', 'abc.def', /^the bearer token is malformed$/],
      ['malformed (not base64url JSON)', 'a.b.c', /^the bearer token is malformed$/],
      ['expired', await rs.sign(claims('mallory', { exp: now - 120 })), /^the bearer token has expired$/],
      ['not yet valid', await rs.sign(claims('mallory', { nbf: now + 600 })), /^the bearer token is not valid yet$/],
      ['wrong issuer', await rs.sign(claims('mallory', { iss: 'https://evil.test/' })), /^the bearer token is not valid$/],
      ['wrong audience', await rs.sign(claims('mallory', { aud: 'another-service' })), /^the bearer token is not valid$/],
      ['no exp', await rs.sign({ ...valid, exp: undefined }), /^the bearer token is not valid$/],
      ['no sub', await rs.sign({ ...valid, sub: undefined }), /^the bearer token is not valid$/],
      ['wrong signature (another key with the same kid)', await rsImpostor.sign(valid), /^the bearer token is not valid$/],
      ['unknown kid', await rsImpostor.sign(valid, { kid: 'nobody' }), /^the bearer token is not valid$/],
      ['alg none', unsignedToken(valid), /^the bearer token is not valid$/],
      ['alg none, signature kept', unsignedToken(valid) + 'c2ln', /^the bearer token is not valid$/],
      // Algorithm confusion: HS256 keyed with what is public, the RSA key's PEM or its JWK.
      ['HS256 keyed with the RSA public key (PEM), kid rs1', hs256With(rs.publicPem, valid, { kid: 'rs1' }), /^the bearer token is not valid$/],
      ['HS256 keyed with the RSA public key (PEM), no kid', hs256With(rs.publicPem, valid), /^the bearer token is not valid$/],
      ['HS256 keyed with the RSA JWK', hs256With(JSON.stringify(rs.jwk), valid, { kid: 'rs1' }), /^the bearer token is not valid$/],
      ['HS256 with another secret, kid hs1', hs256With(Buffer.alloc(32, 7), valid, { kid: 'hs1' }), /^the bearer token is not valid$/],
    ];
    for (const [name, token, detail] of cases) {
      const a = await call('/rows', bearer(token));
      expect(a.status, `${name}: ${a.body}`).toBe(401);
      expectRefused(a, detail, token);
      expect(a.body, name).not.toMatch(/signature|issuer|audience|kid|alg/i);
    }
  });

  it('the server record of a refusal names the reason the client is not told', async () => {
    // A route no other test sends a bad token to: records are summarised per route and reason.
    const a = await call('/whoami', bearer(await rs.sign(claims('mallory', { aud: 'another-service' }))));
    expect(a.body).not.toMatch(/aud/);
    const line = await gw.waitForLine((l) => l.fields.tag === 'auth-refused' && (l.fields.msg ?? '').startsWith('GET /whoami'), 5000);
    expect(line.fields.msg).toBe('GET /whoami: token refused: claim aud refused');
    expect(line.fields.client).toBe('127.0.0.1');
  });
});

describe('authorization', () => {
  it('roles: a caller without one of the endpoint roles gets 403 saying so; with one, 200', async () => {
    expect((await call('/reports/22', bearer(keys.reader.key))).status).toBe(200);
    const a = await call('/reports/22', bearer(keys.writer.key));
    expect(a.status, a.body).toBe(403);
    expect(JSON.parse(a.body).detail).toBe("the caller's roles do not allow GET /reports/:port");
    expect(a.headers.get('www-authenticate')).toBe('Bearer realm="watchtower", error="insufficient_scope"');
    const token = await es.sign(claims('no-roles'));
    expect((await call('/reports/22', bearer(token))).status).toBe(403);
  });

  it('a write endpoint that declares nothing needs a caller; a public one answers anyone, and checks a credential that comes', async () => {
    expect((await call('/notes', {}, 'POST')).status).toBe(401);
    expect((await call('/notes', bearer(keys.writer.key), 'POST')).status).toBe(200);
    const anon = await call('/whoami');
    expect(anon.status).toBe(200);
    expect(JSON.parse(anon.body)).toEqual({ caller: null, roles: null, tenant: null });
    expect((await call('/whoami', { 'x-api-key': createKey().key })).status).toBe(401);
  });

  it('/metrics asks the roles of auth.metrics_roles; /health never asks', async () => {
    expect((await call('/metrics')).status).toBe(401);
    expect((await call('/metrics', bearer(keys.reader.key))).status).toBe(403);
    const ok = await call('/metrics', bearer(keys.ops.key));
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('wt_');
    expect((await call('/health/live')).status).toBe(200);
  });

  it('no spelling of a path reaches a route without its rule', async () => {
    // Each variant either reaches /reports/:port, and then is refused like it, or reaches no route.
    const variants = [
      '/reports/22',
      '/REPORTS/22',
      '/Reports/22',
      '/reports/22/',
      '/reports//22',
      '//reports/22',
      '/reports/22//',
      '/report%73/22',
      '/%72eports/22',
      '/reports%2F22',
      '/reports/%32%32',
      '/reports/22?format=json',
      '/reports/22%3Fx',
      '/reports/./22',
      '/./reports/22',
      '/x/../reports/22',
      '/reports/22;x',
      '/reports/22%00',
      '/reports/22#x',
    ];
    const reached: string[] = [];
    for (const path of variants) {
      for (const method of ['GET', 'HEAD']) {
        const anonymous = await rawCall(path, {}, method);
        const wrongRole = await rawCall(path, { 'x-api-key': keys.writer.key }, method);
        const right = await rawCall(path, { 'x-api-key': keys.reader.key }, method);
        const where = `${method} ${path}: ${anonymous.status}/${wrongRole.status}/${right.status}`;
        if (anonymous.status === 401) {
          // The route was reached, and its rule applied: the wrong role refused, the right one let
          // through (to the answer, or to the param's validation).
          reached.push(`${method} ${path}`);
          expect(wrongRole.status, where).toBe(403);
          expect([200, 400], where).toContain(right.status);
        } else {
          // No route: answered the same whoever asks, nothing behind it (404, or 400 from the router).
          expect([400, 404], where).toContain(anonymous.status);
          expect(wrongRole.status, where).toBe(anonymous.status);
          expect(right.status, where).toBe(anonymous.status);
        }
      }
    }
    // The plain path, and those the router decodes to it (a rule read off the raw URL would miss these).
    expect(reached).toEqual(expect.arrayContaining(['GET /reports/22', 'HEAD /reports/22', 'GET /report%73/22', 'GET /%72eports/22', 'GET /reports/%32%32']));
  });
});

describe('SIGUSR1', () => {
  it('a key removed from the keys file is refused from the next request; the record names it, never a key or hash', async () => {
    expect((await call('/rows', bearer(keys.gone.key))).status).toBe(200);
    const from = gw.lines.length;
    writeFileSync(keysFile, keysDoc(['reader', 'writer', 'ops', 'old']));
    gw.signal('SIGUSR1');
    const record = await gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 5000, from);
    expect(record.fields.tag).toBe('config-reload');
    expect(record.fields.changes).toContain('auth.api_keys: API keys removed gone');
    const after = gw.lines.slice(from).join('\n');
    for (const k of Object.values(keys)) {
      expect(after).not.toContain(k.sha256);
      expect(after).not.toContain(k.key);
    }
    expectRefused(await call('/rows', bearer(keys.gone.key)), /^the API key is not valid$/);
    expect((await call('/rows', bearer(keys.reader.key))).status).toBe(200);
  });

  it('a JWT key removed from the JWKS file is refused from the next request, also for a token verified before', async () => {
    const token = await es.sign(claims('cached'));
    expect((await call('/rows', bearer(token))).status).toBe(200);
    expect((await call('/rows', bearer(token))).status).toBe(200);
    const from = gw.lines.length;
    writeFileSync(jwksFile, JSON.stringify({ keys: [rs.jwk, ed.jwk, hs.jwk] }));
    gw.signal('SIGUSR1');
    const record = await gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 5000, from);
    expect(record.fields.changes).toContain('auth.jwks: JWT keys removed es1');
    expect(gw.lines.slice(from).join('\n')).not.toContain(String(es.jwk.x));
    expectRefused(await call('/rows', bearer(token)), /^the bearer token is not valid$/);
    expect((await call('/rows', bearer(await rs.sign(claims('still'))))).status).toBe(200);
  });

  it('a broken keys file is refused whole: the running keys keep working, the error names file and entry, not the hash', async () => {
    const from = gw.lines.length;
    const before = readFileSync(keysFile, 'utf8');
    writeFileSync(keysFile, `${before}  - { id: 'bad', sha256: 'abc', roles: ['reader'] }\n`);
    gw.signal('SIGUSR1');
    const record = await gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 5000, from);
    expect(record.fields.tag).toBe('config-err');
    expect(record.fields.msg).toMatch(/keys\[4\] \(bad\)\.sha256: must be the SHA-256/);
    expect((await call('/rows', bearer(keys.reader.key))).status).toBe(200);
    writeFileSync(keysFile, before);
  });
});

/**
 * JWT keys from a JWKS URL, against a running gateway and a JWKS server of the test's own on
 * loopback: the set is fetched once and kept for every token, fetched again after SIGUSR1 (a key
 * rotated at the provider is then accepted and the old one refused) and once older than
 * jwt_jwks_cache, and while it cannot be fetched
 * a token is answered 503, never let through. /docs asks auth.docs_roles.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { asymmetricKey, AUDIENCE, claims, ISSUER } from './tokens.js';

let gw: GatewayProcess;
let jwks: Server;
let published: object = { keys: [] };
let fetches = 0;
let down = false;

beforeAll(async () => {
  jwks = createServer((req, res) => {
    fetches++;
    if (down) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(published));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  const { port } = jwks.address() as { port: number };
  gw = await startGateway({
    configPatch: (doc, dir) => {
      Object.assign(doc, sqliteConfig(dir));
      doc.auth = { jwt_jwks_url: `http://127.0.0.1:${port}/jwks.json`, jwt_issuer: ISSUER, jwt_audience: AUDIENCE, docs_roles: ['dev'] };
    },
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await new Promise((resolve) => jwks?.close(resolve));
});

const call = async (path: string, token?: string) => {
  const res = await fetch(gw.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
};

/** Sends SIGUSR1 and waits for its record. */
async function reload(): Promise<void> {
  const from = gw.lines.length;
  gw.signal('SIGUSR1');
  const record = await gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 5000, from);
  expect(record.fields.tag).toBe('config-reload');
}

describe('JWKS URL', () => {
  it('fetches the set when first needed and keeps it for every token', async () => {
    const key = await asymmetricKey('k1', 'ES256');
    published = { keys: [key.jwk] };
    expect(fetches).toBe(0);
    for (let i = 0; i < 5; i++) expect((await call('/sqlite-json', await key.sign(claims(`user-${i}`)))).status).toBe(200);
    expect(fetches).toBe(1);
  });

  it('SIGUSR1 fetches it again: a key rotated at the provider is accepted, the retired one refused', async () => {
    const old = await asymmetricKey('k1', 'ES256');
    const next = await asymmetricKey('k2', 'RS256');
    published = { keys: [old.jwk] };
    await reload();
    const oldToken = await old.sign(claims('rotating'));
    expect((await call('/sqlite-json', oldToken)).status).toBe(200);
    published = { keys: [next.jwk] };
    await reload();
    expect((await call('/sqlite-json', await next.sign(claims('rotating'))))).toMatchObject({ status: 200 });
    expect((await call('/sqlite-json', oldToken)).status).toBe(401);
  });

  it('a set that cannot be fetched: 503 to retry later, never let through', async () => {
    const key = await asymmetricKey('k3', 'ES256');
    published = { keys: [key.jwk] };
    down = true;
    try {
      await reload();
      const a = await call('/sqlite-json', await key.sign(claims('outage')));
      expect(a.status).toBe(503);
      expect(JSON.parse(a.body).detail).toBe('bearer tokens cannot be verified right now; retry later');
    } finally {
      down = false;
    }
    await reload();
    expect((await call('/sqlite-json', await key.sign(claims('outage'))))).toMatchObject({ status: 200 });
  });

  it('a set older than jwt_jwks_cache is fetched again by itself, so a rotated key is accepted without a reload', async () => {
    const old = await asymmetricKey('k5', 'ES256');
    const next = await asymmetricKey('k6', 'ES256');
    published = { keys: [old.jwk] };
    const record = await gw.reload({ auth: { jwt_jwks_cache: 1 } });
    expect(record.fields.changes).toBe('auth.jwt_jwks_cache: 600 -> 1');
    try {
      const before = fetches;
      expect((await call('/sqlite-json', await old.sign(claims('a'))))).toMatchObject({ status: 200 });
      published = { keys: [next.jwk] };
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect((await call('/sqlite-json', await next.sign(claims('b'))))).toMatchObject({ status: 200 });
      expect(fetches - before).toBe(2);
    } finally {
      await gw.reload({});
    }
  });

  it('/docs asks the roles of auth.docs_roles', async () => {
    const key = await asymmetricKey('k4', 'ES256');
    published = { keys: [key.jwk] };
    await reload();
    expect((await call('/docs/json')).status).toBe(401);
    expect((await call('/docs/json', await key.sign(claims('someone', { roles: ['ops'] })))).status).toBe(403);
    const ok = await call('/docs/json', await key.sign(claims('developer', { roles: ['dev'] })));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).openapi).toMatch(/^3\./);
    expect((await call('/health/live')).status).toBe(200);
  });
});

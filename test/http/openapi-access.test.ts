/**
 * The access rules in the OpenAPI document: with a credential source configured, every guarded
 * operation lists 401 (with WWW-Authenticate) and its security requirement, an operation naming
 * roles 403, one behind an address list 403, a rate-limited one 429 with the RateLimit headers;
 * the gateway's real refusals conform to what is listed. Without a credential source none of it
 * is listed (the routes are open).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createKey } from '../../src/auth/api-keys.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { conformance, type Answer, type OpenApiDocument } from '../helpers/openapi.js';

const ROW = { resource: 'sqlite_traffic', sql: 'SELECT port FROM tcp_hourly ORDER BY port LIMIT 1' };
const ENDPOINTS = {
  endpoints: [
    { method: 'GET', path: '/rows', statements: [ROW] },
    { method: 'GET', path: '/reports', auth: { roles: ['reader'] }, statements: [ROW] },
    { method: 'GET', path: '/open', public: true, statements: [ROW] },
    { method: 'GET', path: '/limited', public: true, rate_limit: { requests: 1, interval: 600 }, statements: [ROW] },
    { method: 'GET', path: '/fenced', public: true, deny: ['127.0.0.0/8'], statements: [ROW] },
  ],
};

const reader = createKey();
const writer = createKey();

async function gateway(auth: boolean): Promise<GatewayProcess> {
  return startGateway({
    configPatch: (doc, dir) => {
      Object.assign(doc, sqliteConfig(dir));
      writeFileSync(join(dir, 'endpoints.yaml'), stringify(ENDPOINTS));
      doc.endpoints = [join(dir, 'endpoints.yaml')];
      if (auth) {
        doc.auth = {
          api_keys: [
            { id: 'reader', sha256: reader.sha256, roles: ['reader'] },
            { id: 'writer', sha256: writer.sha256, roles: ['writer'] },
          ],
        };
      }
    },
  });
}

async function documentOf(gw: GatewayProcess): Promise<OpenApiDocument> {
  const res = await fetch(`${gw.url}/docs/json`);
  expect(res.status).toBe(200);
  return (await res.json()) as OpenApiDocument;
}

async function answer(gw: GatewayProcess, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(gw.url + path, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

describe('access rules in the OpenAPI document, with API keys configured', () => {
  let gw: GatewayProcess;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    gw = await gateway(true);
    doc = await documentOf(gw);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  const op = (path: string) => doc.paths[path].get;

  it('names the credential schemes and asks for one on guarded operations only', () => {
    expect(doc.components?.securitySchemes).toMatchObject({ ApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' }, Bearer: { type: 'http', scheme: 'bearer' } });
    expect(op('/rows').security).toEqual([{ ApiKey: [] }, { Bearer: [] }]);
    // Public: a request may bring no credential ({}), or one that is then checked.
    expect(op('/open').security).toEqual([{ ApiKey: [] }, { Bearer: [] }, {}]);
    expect(op('/health/live').security).toBeUndefined();
    expect(Object.keys(op('/health/live').responses)).not.toContain('401');
  });

  it('lists 401 with WWW-Authenticate, 403 for roles and address lists, 429 with the RateLimit headers', () => {
    expect(op('/rows').responses['401'].headers?.['WWW-Authenticate']?.required).toBe(true);
    expect(op('/rows').responses['403']).toBeUndefined();
    expect(op('/reports').responses['403'].description).toContain('reader');
    expect(op('/fenced').responses['403'].description).toContain('address');
    expect(Object.keys(op('/limited').responses['429'].headers ?? {})).toEqual(expect.arrayContaining(['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'Retry-After']));
    // The slots' own 429 is still described beside the rate limit's.
    expect(op('/rows').responses['429']).toBeDefined();
  });

  it("the gateway's refusals conform to the operations that list them", async () => {
    const cases: [string, Record<string, string>, number][] = [
      ['/rows', {}, 401],
      ['/rows', { 'x-api-key': 'wt_not-a-key' }, 401],
      ['/reports', { 'x-api-key': writer.key }, 403],
      ['/reports', { 'x-api-key': reader.key }, 200],
      ['/fenced', {}, 403],
      ['/limited', {}, 200],
      ['/limited', {}, 429],
    ];
    for (const [path, headers, status] of cases) {
      const a = await answer(gw, path, headers);
      expect(a.status, `${path} ${JSON.stringify(headers)}: ${a.body}`).toBe(status);
      expect(conformance(doc, 'get', path, a)).toEqual([]);
    }
  });
});

describe('access rules in the OpenAPI document, without a credential source', () => {
  let gw: GatewayProcess;
  afterAll(async () => {
    await gw?.stop();
  });

  it('lists no 401 and asks for no credential: the routes are open', async () => {
    gw = await gateway(false);
    const doc = await documentOf(gw);
    expect(doc.components?.securitySchemes).toBeUndefined();
    for (const path of ['/rows', '/open']) {
      expect(doc.paths[path].get.security).toBeUndefined();
      expect(Object.keys(doc.paths[path].get.responses)).not.toContain('401');
    }
    // A route naming roles refuses everyone when nobody can be authenticated.
    expect(Object.keys(doc.paths['/reports'].get.responses)).toEqual(expect.arrayContaining(['401', '403']));
    const a = await answer(gw, '/reports');
    expect(a.status).toBe(401);
    expect(conformance(doc, 'get', '/reports', a)).toEqual([]);
  }, 60_000);
});

/**
 * Answers given before a request reaches the app (the HTTP parser's 400/431, a URL that is not valid
 * percent-encoding, a Host-less HTTP/1.1 request, an unsupported Expect) and the refusals of
 * /metrics carry X-Correlation-ID and X-Process-Time and a {"detail", "cid"} body like every other
 * response, and their cid is in the log. Sent as raw bytes to a real gateway process, since an HTTP
 * client would refuse to send most of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { openRaw, rawRequest, type RawResponse } from '../helpers/raw-http.js';

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await startGateway({
    configPatch: (doc, dir) => Object.assign(doc, sqliteConfig(dir), { metrics_allow: ['10.9.8.7'], http_headers_timeout: 1 }),
  });
}, 30_000);
afterAll(async () => {
  await gw?.stop();
});

/**
 * The promise every error response keeps: headers and a JSON {detail, cid} body; and, unless the
 * path writes no records (/metrics), a log record with that cid.
 */
async function expectErrorReply(res: RawResponse, status: number, detail: RegExp, logged = true): Promise<void> {
  expect(res.status, res.body).toBe(status);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  const cid = res.headers['x-correlation-id'];
  expect(cid).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  expect(res.headers['x-process-time']).toMatch(/^\d+\.\d{3}$/);
  const body = JSON.parse(res.body) as { detail: string; cid: string };
  expect(Object.keys(body).sort()).toEqual(['cid', 'detail']);
  expect(body.cid).toBe(cid);
  expect(body.detail).toMatch(detail);
  if (logged) await gw.waitForLine((l) => l.fields.cid === cid, 5_000);
}

const get = (target: string, headerLines: string[] = ['Host: x']) => `GET ${target} HTTP/1.1\r\n${headerLines.map((h) => `${h}\r\n`).join('')}\r\n`;

describe('answers given before the app sees the request', () => {
  it('431 for a 100 KB URL and for a 100 KB header', async () => {
    await expectErrorReply(await rawRequest(gw.port, get(`/sqlite-json?x=${'a'.repeat(100_000)}`)), 431, /^request line and headers exceed \d+ bytes$/);
    await expectErrorReply(await rawRequest(gw.port, get('/sqlite-json', ['Host: x', `X-Big: ${'b'.repeat(100_000)}`])), 431, /^request line and headers exceed/);
  });

  it('400 naming the fault for a bare CR, a bare LF or a NUL in a header, a bad method or version', async () => {
    const cases: [string, RegExp][] = [
      [get('/sqlite-json', ['Host: x', 'X-A: a\rb']), /^malformed HTTP request: /],
      [get('/sqlite-json', ['Host: x', 'X-A: a\nb']), /^malformed HTTP request: .*CR/],
      [get('/sqlite-json', ['Host: x', 'X-A: a\u0000b']), /^malformed HTTP request: Invalid header value char$/],
      ['FOO /sqlite-json HTTP/1.1\r\nHost: x\r\n\r\n', /^malformed HTTP request: /],
      ['GET /sqlite-json HTTP/9.1\r\nHost: x\r\n\r\n', /^malformed HTTP request: /],
    ];
    for (const [bytes, detail] of cases) await expectErrorReply(await rawRequest(gw.port, bytes), 400, detail);
  });

  it('400 for a URL that is not valid percent-encoding, and for an HTTP/1.1 request without Host', async () => {
    await expectErrorReply(await rawRequest(gw.port, get('/sqlite-json%')), 400, /^malformed URL: not valid percent-encoding$/);
    await expectErrorReply(await rawRequest(gw.port, get('/sqlite-json', [])), 400, /^an HTTP\/1.1 request needs a Host header$/);
    // HTTP/1.0 has no Host requirement.
    expect((await rawRequest(gw.port, 'GET /health/live HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it('408 for headers that do not end within http_headers_timeout', async () => {
    const conn = await openRaw(gw.port);
    try {
      conn.send('GET /sqlite-json HTTP/1.1\r\nHost: x\r\nX-Slow: a');
      await expectErrorReply(await conn.response(5_000), 408, /^the request was not received in time$/);
    } finally {
      conn.close();
    }
  });

  it("417 for an Expect it cannot meet, keeping the client's own correlation id", async () => {
    const res = await rawRequest(gw.port, get('/sqlite-json', ['Host: x', 'Expect: teapot', 'X-Correlation-ID: client-id.1']));
    await expectErrorReply(res, 417, /^expectation not supported: teapot$/);
    expect(res.headers['x-correlation-id']).toBe('client-id.1');
  });
});

describe('refusals of /metrics', () => {
  it('403 for a client outside metrics_allow', async () => {
    await expectErrorReply(await rawRequest(gw.port, get('/metrics')), 403, /^client 127\.0\.0\.1 is not allowed to read \/metrics$/, false);
  });

  it('401 without basic-auth credentials, with WWW-Authenticate', async () => {
    const authGw = await startGateway({ env: { WT_METRICS_USER: 'prom', WT_METRICS_PASSWORD: 's3cret' } });
    try {
      const res = await rawRequest(authGw.port, get('/metrics'));
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="metrics"/);
      await expectErrorReply(res, 401, /^authentication required for \/metrics$/, false);
      const auth = `Authorization: Basic ${Buffer.from('prom:s3cret').toString('base64')}`;
      expect((await rawRequest(authGw.port, get('/metrics', ['Host: x', auth]))).status).toBe(200);
    } finally {
      await authGw.stop();
    }
  }, 30_000);
});

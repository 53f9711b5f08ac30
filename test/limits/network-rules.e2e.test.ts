/**
 * Network rules in a running gateway (dist/main.js) listening on :: (dual stack), called from
 * several loopback addresses (127.0.0.2, 127.0.0.3 as ::ffff:127.0.0.x, and ::1): the allow and
 * deny lists of declared endpoints and the global ones (reloaded with SIGUSR1), 403 with an
 * access-denied record, and which address they judge: the peer's unless trust_proxy names it, in
 * which case the client its X-Forwarded-For names.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import type { ParsedLine } from '../helpers/logfmt-parse.js';
import { call, detailOf, type Answer, type RequestOptions } from './client.js';

const TWO = '127.0.0.2';
const THREE = '127.0.0.3';
const endpoint = (path: string, extra: Record<string, unknown> = {}) => ({
  method: 'GET',
  path,
  resources: ['sqlite_traffic'],
  statements: [{ sql: 'SELECT 1 AS one' }],
  ...extra,
});

let gw: GatewayProcess;
let v6: string;

beforeAll(async () => {
  gw = await startGateway({
    env: { HOST: '::' },
    configPatch: (doc, dir) => {
      Object.assign(doc, sqliteConfig(dir), { endpoints: [join(dir, 'limits.yaml')] });
      const endpoints = [endpoint('/open'), endpoint('/only-two', { allow: [TWO, '::1'] }), endpoint('/not-three', { deny: [`${THREE}/32`] })];
      writeFileSync(join(dir, 'limits.yaml'), stringify({ endpoints }));
    },
  });
  v6 = `http://[::1]:${gw.port}`;
});
afterAll(async () => {
  expect(await gw?.stop()).toBe(0);
});

/**
 * A request, and the records the gateway wrote for it: once its request-stats record is out (for
 * the quiet paths, which write none, its access-denied record).
 */
async function hit(path: string, opts: RequestOptions & { base?: string } = {}): Promise<{ answer: Answer; records: ParsedLine[] }> {
  const answer = await call(`${opts.base ?? gw.url}${path}`, opts);
  const cid = String(answer.headers['x-correlation-id']);
  const last = path.startsWith('/health') ? 'access-denied' : 'request-stats';
  await gw.waitForLine((l) => l.fields.tag === last && l.fields.cid === cid, 5000);
  return { answer, records: gw.parsed().filter((l) => l.fields.cid === cid) };
}

function denial(records: ParsedLine[]): Record<string, string> | undefined {
  return records.find((l) => l.fields.tag === 'access-denied')?.fields;
}

function clientOf(records: ParsedLine[]): string | undefined {
  return records.find((l) => l.fields.tag === 'request-stats')?.fields.client;
}

async function reload(doc: Record<string, unknown>): Promise<void> {
  const line = await gw.reload(doc);
  expect(line.fields.tag, line.fields.msg).toBe('config-reload');
}

describe('network rules of a running gateway', () => {
  it('a declared endpoint\'s allow and deny lists refuse other addresses with 403 and an access-denied record, IPv4 and IPv6', async () => {
    const ok = await hit('/only-two', { from: TWO });
    expect(ok.answer.status).toBe(200);
    expect(clientOf(ok.records)).toBe(`::ffff:${TWO}`);
    expect((await hit('/only-two', { base: v6 })).answer.status).toBe(200);

    const refused = await hit('/only-two', { from: THREE });
    expect(refused.answer.status).toBe(403);
    expect(detailOf(refused.answer)).toBe(`client ::ffff:${THREE} may not call this endpoint`);
    expect(denial(refused.records)).toMatchObject({ rule: 'allow', scope: 'endpoint', client: `::ffff:${THREE}` });
    expect(refused.records.find((l) => l.fields.tag === 'access-denied')?.level).toBe('WARNING');
    expect(refused.records.some((l) => l.fields.tag === 'query-stats')).toBe(false);

    const denied = await hit('/not-three', { from: THREE });
    expect(denied.answer.status).toBe(403);
    expect(denial(denied.records)).toMatchObject({ rule: 'deny', scope: 'endpoint' });
    expect((await hit('/not-three', { from: TWO })).answer.status).toBe(200);
    expect((await hit('/not-three', { base: v6 })).answer.status).toBe(200);
    // Another endpoint's rules are not this one's.
    expect((await hit('/open', { from: THREE })).answer.status).toBe(200);
    expect(denial((await hit('/open', { from: THREE })).records)).toBeUndefined();
  });

  it('the global lists apply to every path, narrow the endpoint\'s, and change with a reload', async () => {
    try {
      await reload({ deny: [TWO, '::1/128'] });
      for (const path of ['/open', '/health/live', '/no-such-route']) {
        const r = await hit(path, { from: TWO });
        expect(r.answer.status, path).toBe(403);
        expect(denial(r.records), path).toMatchObject({ rule: 'deny', scope: 'global' });
      }
      expect((await hit('/open', { base: v6 })).answer.status).toBe(403);
      // Deny wins over the endpoint's allow.
      expect((await hit('/only-two', { from: TWO })).answer.status).toBe(403);
      expect((await hit('/open', { from: THREE })).answer.status).toBe(200);

      await reload({ allow: [THREE, '::1'] });
      expect(denial((await hit('/open', { from: TWO })).records)).toMatchObject({ rule: 'allow', scope: 'global' });
      expect((await hit('/open', { from: THREE })).answer.status).toBe(200);
      expect((await hit('/open', { base: v6 })).answer.status).toBe(200);
      // Both lists must let a client through: THREE passes the global one, not the endpoint's.
      expect(denial((await hit('/only-two', { from: THREE })).records)).toMatchObject({ rule: 'allow', scope: 'endpoint' });
      expect((await hit('/only-two', { base: v6 })).answer.status).toBe(200);

      // A list that cannot be read is refused whole, naming the entry by position; the rules in force stay.
      const bad = await gw.reload({ allow: [THREE, 'gateway.example'] });
      expect(bad.fields.tag).toBe('config-err');
      expect(bad.fields.msg).toContain('allow[1] is not an IP address or CIDR block');
      expect(bad.fields.msg).not.toContain('gateway.example');
      expect((await hit('/open', { from: TWO })).answer.status).toBe(403);
    } finally {
      await reload({});
    }
    expect((await hit('/open', { from: TWO })).answer.status).toBe(200);
  });

  it('without trust_proxy a spoofed X-Forwarded-For changes nothing: the peer is the client', async () => {
    try {
      await reload({ deny: [TWO] });
      const spoofed = await hit('/open', { from: TWO, headers: { 'X-Forwarded-For': '10.1.2.3' } });
      expect(spoofed.answer.status).toBe(403);
      expect(clientOf(spoofed.records)).toBe(`::ffff:${TWO}`);
      // Nor does it get a client into an allow list.
      const into = await hit('/only-two', { from: THREE, headers: { 'X-Forwarded-For': TWO, Forwarded: `for=${TWO}` } });
      expect(into.answer.status).toBe(403);
      expect(clientOf(into.records)).toBe(`::ffff:${THREE}`);
    } finally {
      await reload({});
    }
  });

  it('with trust_proxy, X-Forwarded-For is honoured from a trusted proxy only, and only up to the first untrusted hop', async () => {
    try {
      await reload({ trust_proxy: [TWO], deny: ['10.6.6.6'] });
      // Through the trusted proxy: the client it names is judged and recorded.
      const proxied = await hit('/open', { from: TWO, headers: { 'X-Forwarded-For': '10.6.6.6' } });
      expect(proxied.answer.status).toBe(403);
      expect(denial(proxied.records)).toMatchObject({ client: '10.6.6.6', rule: 'deny', scope: 'global' });
      expect(proxied.records.find((l) => l.fields.tag === 'request')?.fields.client).toBe('10.6.6.6');
      // The same header from anyone else is ignored.
      const direct = await hit('/open', { from: THREE, headers: { 'X-Forwarded-For': '10.6.6.6' } });
      expect(direct.answer.status).toBe(200);
      expect(clientOf(direct.records)).toBe(`::ffff:${THREE}`);
      // A client's own X-Forwarded-For, to which the proxy appended the address it saw: the
      // appended one is the client, the spoofed entry left of it is not believed.
      const appended = await hit('/open', { from: TWO, headers: { 'X-Forwarded-For': '10.6.6.6, 10.7.7.7' } });
      expect(appended.answer.status).toBe(200);
      expect(clientOf(appended.records)).toBe('10.7.7.7');
      // What a trusted proxy forwards that is no address is refused by any rule, a deny list too.
      const junk = await hit('/open', { from: TWO, headers: { 'X-Forwarded-For': 'unknown' } });
      expect(junk.answer.status).toBe(403);
      expect(denial(junk.records)).toMatchObject({ client: 'unknown', rule: 'deny' });
      // The proxy's own address is no longer the client: an endpoint allowing it refuses the client behind it.
      expect((await hit('/only-two', { from: TWO, headers: { 'X-Forwarded-For': '10.7.7.7' } })).answer.status).toBe(403);
      expect((await hit('/only-two', { from: TWO })).answer.status).toBe(200);

      // Two trusted hops (a CIDR block): the client is the first untrusted address from the right.
      await reload({ trust_proxy: ['127.0.0.0/30'], deny: ['10.6.6.6'] });
      const chain = await hit('/open', { from: TWO, headers: { 'X-Forwarded-For': `10.6.6.6, ${THREE}` } });
      expect(chain.answer.status).toBe(403);
      expect(clientOf(chain.records)).toBe('10.6.6.6');
    } finally {
      await reload({});
    }
    // Off again: the header is ignored at once.
    const off = await hit('/open', { from: TWO, headers: { 'X-Forwarded-For': '10.6.6.6' } });
    expect(clientOf(off.records)).toBe(`::ffff:${TWO}`);
  });
});

/**
 * W3C traceparent over real HTTP, through a running gateway: a valid header's trace id becomes the
 * correlation id (unless X-Correlation-ID names one) and comes back in a traceparent with a new span
 * id and the same flags; an invalid one is ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const DATA = '/sqlite-json?limit=1';

let gw: GatewayProcess;
beforeAll(async () => {
  gw = await startGateway();
}, 30_000);
afterAll(async () => {
  await gw?.stop();
});

const get = (path: string, headers: Record<string, string>) => fetch(`${gw.url}${path}`, { headers });

describe('traceparent', () => {
  it('takes a valid trace id as the correlation id and answers with a child span of the same trace and flags', async () => {
    for (const flags of ['01', '00']) {
      const res = await get(DATA, { traceparent: `00-${TRACE}-${PARENT}-${flags}` });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-correlation-id')).toBe(TRACE);
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(res.headers.get('traceparent') ?? '');
      expect(m).not.toBeNull();
      expect(m![1]).toBe(TRACE);
      expect(m![2]).not.toBe(PARENT);
      expect(m![2]).not.toBe('0'.repeat(16));
      expect(m![3]).toBe(flags);
    }
    // A new span per request, and the trace id is the cid of errors too.
    const a = await get('/no/such/route', { traceparent: `00-${TRACE}-${PARENT}-01` });
    const b = await get('/no/such/route', { traceparent: `00-${TRACE}-${PARENT}-01` });
    expect(a.status).toBe(404);
    expect(((await a.json()) as { cid: string }).cid).toBe(TRACE);
    expect(a.headers.get('traceparent')).not.toBe(b.headers.get('traceparent'));
  });

  it('keeps a valid X-Correlation-ID as the cid and still answers within the trace', async () => {
    const res = await get(DATA, { traceparent: `00-${TRACE}-${PARENT}-01`, 'x-correlation-id': 'my-cid-1' });
    expect(res.headers.get('x-correlation-id')).toBe('my-cid-1');
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  });

  it('reads a later version as version 00, its extra fields ignored, and answers in version 00', async () => {
    const res = await get(DATA, { traceparent: `cc-${TRACE}-${PARENT}-01-what-comes-later` });
    expect(res.headers.get('x-correlation-id')).toBe(TRACE);
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  });

  it('ignores an invalid traceparent: a new random cid and no traceparent back', async () => {
    const invalid = [
      `ff-${TRACE}-${PARENT}-01`, // forbidden version
      `0-${TRACE}-${PARENT}-01`, // version not two digits
      `00-${TRACE}-${PARENT}-01-extra`, // version 00 has exactly four fields
      `00-${'0'.repeat(32)}-${PARENT}-01`, // all-zero trace id
      `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero parent id
      `00-${TRACE.toUpperCase()}-${PARENT}-01`, // uppercase hex
      `00-${TRACE.slice(0, 31)}g-${PARENT}-01`, // not hex
      `00-${TRACE.slice(0, 30)}-${PARENT}-01`, // short trace id
      `00-${TRACE}-${PARENT}-1`, // short flags
      `00_${TRACE}_${PARENT}_01`, // wrong separators
    ];
    for (const tp of invalid) {
      const res = await get(DATA, { traceparent: tp });
      expect(res.status, tp).toBe(200);
      expect(res.headers.get('x-correlation-id'), tp).toMatch(/^[0-9a-f]{12}$/);
      expect(res.headers.get('traceparent'), tp).toBeNull();
    }
  });
});

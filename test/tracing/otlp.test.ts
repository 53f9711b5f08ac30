/**
 * OpenTelemetry tracing end to end: a gateway process on SQLite and PostgreSQL with `otel_traces`
 * on exports over OTLP/HTTP to a receiver in this test. Each request is a SERVER span, a child of the
 * caller's traceparent when one came, answered in `traceparent`; each acquisition and each statement
 * is a child of it, naming its resource, a statement also its row count, a failed one its error.
 * With tracing off nothing is sent, and no traceparent is answered to a request that sent none.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { freePort, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { sampleEndpointFiles } from '../helpers/sample-endpoints.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';
import { waitFor } from '../helpers/wait.js';
import { SPAN_KIND, STATUS_ERROR, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

/** An endpoint whose statement outlives its timeout: 504, and a failed statement span. */
const SLOW_ENDPOINT = { method: 'GET', path: '/pg/slow', resources: ['pg_traffic'], public: true, timeout: 0.3, statements: [{ sql: 'SELECT 1 AS n FROM pg_sleep(2)' }], result: 'rows' };
/** On a resource of one slot that waits 0.2 s for it: a second request while one sleeps gets 504. */
const TIGHT_ENDPOINT = { method: 'GET', path: '/tight/sleep', resources: ['pg_tight'], public: true, statements: [{ sql: 'SELECT 1 AS n FROM pg_sleep(0.8)' }], result: 'rows' };

/** The spans of one trace, once its request span and `children` children have arrived. */
function traceOf(receiver: OtlpReceiver, traceId: string, children: number): Promise<ReceivedSpan[]> {
  return waitFor(`${children + 1} spans of trace ${traceId}`, () => {
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    return spans.length >= children + 1 ? spans : undefined;
  });
}

/** The request span (the trace's only SERVER span) and its children, checked to nest within it. */
function split(spans: ReceivedSpan[]): { request: ReceivedSpan; acquisitions: ReceivedSpan[]; statements: ReceivedSpan[] } {
  const servers = spans.filter((s) => s.kind === SPAN_KIND.server);
  expect(servers).toHaveLength(1);
  const request = servers[0];
  const children = spans.filter((s) => s !== request);
  for (const c of children) {
    expect(c.parentSpanId, c.name).toBe(request.spanId);
    expect(c.startNs >= request.startNs, `${c.name} starts within the request`).toBe(true);
    expect(c.endNs <= request.endNs, `${c.name} ends within the request`).toBe(true);
    expect(c.endNs >= c.startNs).toBe(true);
  }
  return {
    request,
    acquisitions: children.filter((s) => s.kind === SPAN_KIND.internal),
    statements: children.filter((s) => s.kind === SPAN_KIND.client),
  };
}

describe.skipIf(skipPg)('OpenTelemetry tracing', () => {
  const db = uniqueName('wt_otel');
  let receiver: OtlpReceiver;
  let gw: GatewayProcess;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    await seedSampleDatabase(pgTarget({ db_name: db }));
    gw = await startGateway({
      // Exports every 100 ms rather than every 5 s, so the test waits little.
      env: { OTEL_BSP_SCHEDULE_DELAY: '100' },
      configPatch: (doc, dir) => {
        const file = join(dir, 'slow.yaml');
        writeFileSync(file, stringify({ endpoints: [SLOW_ENDPOINT, TIGHT_ENDPOINT] }));
        const secure = { sqlite_traffic: { db_type: 'sqlite', db_path: join(dir, 'traffic.db'), db_sample: true }, pg_traffic: fileTarget(pgTarget({ db_name: db })) };
        Object.assign(doc, {
          resource_ids: ['sqlite_traffic', 'pg_traffic', 'pg_tight'],
          resources: {
            sqlite_traffic: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 },
            pg_traffic: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 },
            pg_tight: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1, request_slot_timeout: 0.2 },
          },
          secure: { ...secure, pg_tight: secure.pg_traffic },
          endpoints: [...sampleEndpointFiles(secure), file],
          otel_traces: true,
          otel_exporter_otlp_endpoint: receiver.url,
          otel_service_name: 'wt-otel-test',
        });
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await receiver?.close();
    if (!skipPg) await dropDatabase(pgTarget({ db_name: db }));
  });

  it('makes the request a child of the incoming traceparent, with a span per acquisition and per statement', async () => {
    const res = await fetch(`${gw.url}/traffic/compare?limit=5&port=80`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
    expect(res.status).toBe(200);
    await res.json();
    // Two resources: an acquisition and a statement each.
    const { request, acquisitions, statements } = split(await traceOf(receiver, TRACE_ID, 4));

    expect(request.parentSpanId).toBe(PARENT_ID);
    expect(res.headers.get('traceparent')).toBe(`00-${TRACE_ID}-${request.spanId}-01`);
    expect(res.headers.get('x-correlation-id')).toBe(TRACE_ID);
    expect(request.name).toBe('GET /traffic/compare');
    expect(request.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/traffic/compare',
      'http.response.status_code': 200,
      'url.path': '/traffic/compare',
      'wt.cid': TRACE_ID,
      'wt.client_id': 'anonymous',
    });
    expect(request.statusCode).not.toBe(STATUS_ERROR);
    expect(request.resource).toMatchObject({ 'service.name': 'wt-otel-test' });

    // Acquired in resource-id order, one after the other.
    expect(acquisitions.map((a) => a.attributes['wt.resource_id'])).toEqual(['pg_traffic', 'sqlite_traffic']);
    expect(acquisitions[1].startNs >= acquisitions[0].endNs).toBe(true);
    for (const a of acquisitions) expect(typeof a.attributes['wt.slot_wait_seconds']).toBe('number');

    const byResource = Object.fromEntries(statements.map((s) => [s.attributes['wt.resource_id'], s]));
    expect(Object.keys(byResource).sort()).toEqual(['pg_traffic', 'sqlite_traffic']);
    expect(byResource.pg_traffic.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'db.response.returned_rows': 5 });
    expect(byResource.sqlite_traffic.attributes).toMatchObject({ 'db.system.name': 'sqlite', 'db.response.returned_rows': 5 });
    expect(String(byResource.pg_traffic.attributes['db.query.text'])).toMatch(/^SELECT/);
    // Each statement runs once its resource is held.
    const acquiredPg = acquisitions[0];
    expect(byResource.pg_traffic.startNs >= acquiredPg.endNs).toBe(true);
  });

  it('starts a trace of its own without a traceparent, its id the correlation id', async () => {
    const res = await fetch(`${gw.url}/pg-json?limit=3`);
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveLength(3);
    const header = res.headers.get('traceparent');
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(header ?? '');
    expect(m, String(header)).not.toBeNull();
    const [, traceId, spanId] = m!;
    expect(res.headers.get('x-correlation-id')).toBe(traceId);
    const { request, acquisitions, statements } = split(await traceOf(receiver, traceId, 2));
    expect(request.spanId).toBe(spanId);
    expect(request.parentSpanId).toBe('');
    expect(request.attributes['http.route']).toBe('/pg-json');
    expect(acquisitions.map((a) => a.attributes['wt.resource_id'])).toEqual(['pg_traffic']);
    expect(statements).toHaveLength(1);
    expect(statements[0].attributes).toMatchObject({ 'wt.resource_id': 'pg_traffic', 'db.response.returned_rows': 3 });
  });

  it('counts the rows a stream sent', async () => {
    const traceId = '12'.repeat(16);
    const res = await fetch(`${gw.url}/pg-psv?limit=7`, { headers: { traceparent: `00-${traceId}-${PARENT_ID}-01` } });
    expect(res.status).toBe(200);
    expect((await res.text()).trimEnd().split('\n')).toHaveLength(7);
    const { statements } = split(await traceOf(receiver, traceId, 2));
    expect(statements).toHaveLength(1);
    expect(statements[0].attributes).toMatchObject({ 'wt.resource_id': 'pg_traffic', 'db.response.returned_rows': 7 });
  });

  it('marks a statement that failed, and the request it failed, as errors', async () => {
    const res = await fetch(`${gw.url}/pg/slow`, { headers: { traceparent: `00-${'ab'.repeat(16)}-${PARENT_ID}-01` } });
    expect(res.status).toBe(504);
    await res.text();
    const { request, statements } = split(await traceOf(receiver, 'ab'.repeat(16), 2));
    expect(request.statusCode).toBe(STATUS_ERROR);
    expect(request.attributes['http.response.status_code']).toBe(504);
    expect(request.attributes['error.type']).toBeDefined();
    expect(statements).toHaveLength(1);
    expect(statements[0].statusCode).toBe(STATUS_ERROR);
    expect(statements[0].attributes['db.response.returned_rows']).toBeUndefined();
    expect(statements[0].attributes['wt.resource_id']).toBe('pg_traffic');
  });

  it('marks an acquisition that timed out as an error, naming its resource', async () => {
    const holder = fetch(`${gw.url}/tight/sleep`);
    // The first request holds the one slot (its statement sleeps 0.8 s) before the second asks.
    await waitFor('the slot of pg_tight taken', async () => /^wt_in_progress_requests\{resource_id="pg_tight"\} 1$/m.test(await (await fetch(`${gw.url}/metrics`)).text()));
    const traceId = '78'.repeat(16);
    const res = await fetch(`${gw.url}/tight/sleep`, { headers: { traceparent: `00-${traceId}-${PARENT_ID}-01` } });
    expect(res.status).toBe(504);
    await res.text();
    expect((await holder).status).toBe(200);
    const { request, acquisitions, statements } = split(await traceOf(receiver, traceId, 1));
    expect(request.statusCode).toBe(STATUS_ERROR);
    expect(statements).toEqual([]);
    expect(acquisitions).toHaveLength(1);
    expect(acquisitions[0].statusCode).toBe(STATUS_ERROR);
    expect(acquisitions[0].attributes).toMatchObject({ 'wt.resource_id': 'pg_tight', 'error.type': request.attributes['error.type'] });
    // It waited for the slot for the 0.2 s it was allowed.
    expect(Number(acquisitions[0].endNs - acquisitions[0].startNs) / 1e6).toBeGreaterThanOrEqual(150);
  });

  it('records nothing for a caller that asked not to be sampled, nor for probes and scrapes', async () => {
    const probe = await fetch(`${gw.url}/health/live`);
    expect(probe.headers.get('traceparent')).toBeNull();
    await probe.text();
    await (await fetch(`${gw.url}/metrics`)).text();
    const unsampled = 'cd'.repeat(16);
    const res = await fetch(`${gw.url}/sqlite-json?limit=1`, { headers: { traceparent: `00-${unsampled}-${PARENT_ID}-00` } });
    expect(res.status).toBe(200);
    await res.text();
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`));
    // A sampled request sent after it is exported; the unsampled one, exported before it if at all, is not there.
    const after = 'ef'.repeat(16);
    await (await fetch(`${gw.url}/sqlite-json?limit=1`, { headers: { traceparent: `00-${after}-${PARENT_ID}-01` } })).text();
    await traceOf(receiver, after, 2);
    expect(receiver.spans.filter((s) => s.traceId === unsampled)).toEqual([]);
    expect(receiver.spans.filter((s) => /^\/(health|metrics)/.test(String(s.attributes['url.path'])))).toEqual([]);
  });
});

describe('tracing at shutdown', () => {
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });

  afterAll(async () => {
    await receiver?.close();
  });

  /**
   * A SQLite gateway tracing to the receiver, exporting only once a minute: what it sends before then,
   * shutdown sent. shutdown_timeout 2 also bounds the wait for the receiver to 2 s (else 5 s).
   */
  const start = () =>
    startGateway({
      env: { OTEL_BSP_SCHEDULE_DELAY: '60000' },
      configPatch: (doc) => Object.assign(doc, { otel_traces: true, otel_exporter_otlp_endpoint: receiver.url, shutdown_timeout: 2 }),
    });

  it('sends the spans still queued before it exits', async () => {
    const gw = await start();
    const traceId = '34'.repeat(16);
    await (await fetch(`${gw.url}/sqlite-json?limit=2`, { headers: { traceparent: `00-${traceId}-${PARENT_ID}-01` } })).text();
    expect(receiver.spans.filter((s) => s.traceId === traceId)).toEqual([]);
    expect(await gw.stop()).toBe(0);
    const { statements } = split(receiver.spans.filter((s) => s.traceId === traceId));
    expect(statements[0].attributes['db.response.returned_rows']).toBe(2);
  });

  it('gives up on a receiver that does not answer in time, and still exits cleanly', async () => {
    receiver.stalled = true;
    const gw = await start();
    await (await fetch(`${gw.url}/sqlite-json?limit=1`)).text();
    const t0 = Date.now();
    expect(await gw.stop()).toBe(0);
    // 2 s for the spans, and the rest of the shutdown; without the bound the exporter's own timeout, 10 s.
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(receiver.posts).toBeGreaterThan(0);
    expect(gw.parsed().some((l) => l.fields.tag === 'otel-shutdown')).toBe(true);
  }, 20_000);
});

describe('tracing to a receiver that cannot be reached', () => {
  it('serves the requests, drops their spans and says so', async () => {
    // A port nobody listens on.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const gw = await startGateway({
      env: { OTEL_BSP_SCHEDULE_DELAY: '100' },
      configPatch: (doc) => Object.assign(doc, { otel_traces: true, otel_exporter_otlp_endpoint: closed, shutdown_timeout: 2 }),
    });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${gw.url}/sqlite-json?limit=1`);
        expect(res.status).toBe(200);
        await res.text();
      }
      const warning = await gw.waitForLine((l) => l.fields.tag === 'otel-export-err');
      expect(warning.level).toBe('WARNING');
      expect(warning.fields.url).toBe(`${closed}/v1/traces`);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  }, 30_000);
});

describe('tracing off (the default)', () => {
  let receiver: OtlpReceiver;
  let gw: GatewayProcess;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The receiver named where the exporter would look, yet otel_traces is not set.
    gw = await startGateway({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' } });
  }, 30_000);

  afterAll(async () => {
    await gw?.stop();
    await receiver?.close();
  });

  it('sends no span and answers traceparent only to a caller that sent one', async () => {
    const plain = await fetch(`${gw.url}/sqlite-json?limit=1`);
    expect(plain.status).toBe(200);
    await plain.text();
    expect(plain.headers.get('traceparent')).toBeNull();
    const traced = await fetch(`${gw.url}/sqlite-json?limit=1`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
    await traced.text();
    expect(traced.headers.get('traceparent')).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    // Ten export intervals of a tracing gateway: had anything been queued, it would have been sent.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(receiver.posts).toBe(0);
    expect(gw.parsed().some((l) => l.fields.tag === 'otel-start')).toBe(false);
  });
});

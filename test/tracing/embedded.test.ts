/**
 * Tracing in the embeddable plugin: an app of the test's own with `otel_traces` on traces the
 * plugin's endpoints, and app.close() sends the spans still queued (the batch interval here is the
 * default 5 s, longer than the test waits before closing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSettings } from '../../src/config/index.js';
import { fastifyOptions, setLogDestination, watchtower } from '../../src/index.js';
import { sampleEndpointFiles } from '../helpers/sample-endpoints.js';
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-otel-plugin-'));
let receiver: OtlpReceiver;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  setLogDestination({ write: () => undefined });
  receiver = await startOtlpReceiver();
  const secure = { sqlite_traffic: { db_type: 'sqlite', db_path: join(dir, 'traffic.db'), db_sample: true } };
  const config = buildSettings(
    {
      resource_ids: ['sqlite_traffic'],
      docs_enabled: false,
      resources: { sqlite_traffic: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2 } },
      secure,
      endpoints: sampleEndpointFiles(secure),
      otel_traces: true,
      otel_exporter_otlp_endpoint: receiver.url,
    },
    {},
    { env: {} },
  );
  app = Fastify({ ...fastifyOptions(config) });
  await app.register(watchtower, { config });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
}, 30_000);

afterAll(async () => {
  await app?.close();
  await receiver?.close();
  setLogDestination(process.stdout);
  rmSync(dir, { recursive: true, force: true });
});

describe('tracing in the embedded plugin', () => {
  it('traces its endpoints and sends the queued spans when the app closes', async () => {
    const traceId = '56'.repeat(16);
    const res = await fetch(`${url}/sqlite-json?limit=4`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(res.status).toBe(200);
    await res.text();
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(receiver.spans.filter((s) => s.traceId === traceId)).toEqual([]);
    await app.close();
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const request = spans.find((s) => s.kind === SPAN_KIND.server);
    expect(request?.attributes['http.route']).toBe('/sqlite-json');
    const statement = spans.find((s) => s.kind === SPAN_KIND.client);
    expect(statement?.parentSpanId).toBe(request?.spanId);
    expect(statement?.attributes).toMatchObject({ 'wt.resource_id': 'sqlite_traffic', 'db.response.returned_rows': 4 });
    expect(spans.filter((s) => s.kind === SPAN_KIND.internal).map((s) => s.attributes['wt.resource_id'])).toEqual(['sqlite_traffic']);
  });
});

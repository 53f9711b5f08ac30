/**
 * Scrapes, docs and probes are not requests of the service: like the original, wt_requests_total and
 * the request durations leave out /metrics, /docs* and /health/*, or a 1 s scrape would add a request
 * per second to every per-URL panel. Their responses still carry X-Correlation-ID. A real gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { parseExposition } from './exposition.js';

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await startGateway();
}, 30_000);
afterAll(async () => {
  await gw?.stop();
});

const QUIET = ['/metrics', '/health/live', '/health/ready', '/docs/json', '/docs', '/docs/static/index.html'];
const REQUEST_METRICS = ['wt_requests_total', 'wt_request_duration_seconds_count', 'wt_request_duration_summary_seconds_count'];

describe('request metrics', () => {
  it('count the service routes and unmatched URLs, never /metrics, /docs* or /health/*', async () => {
    for (const path of QUIET) {
      const res = await fetch(`${gw.url}${path}`);
      await res.arrayBuffer();
      expect(res.headers.get('x-correlation-id'), path).toMatch(/^[0-9a-f]{12}$/);
    }
    for (let i = 0; i < 2; i++) expect((await fetch(`${gw.url}/sqlite-json`)).status).toBe(200);
    expect((await fetch(`${gw.url}/no-such-route`)).status).toBe(404);
    // Another scrape after the first: it must not count itself or the first.
    await (await fetch(`${gw.url}/metrics`)).text();

    const samples = parseExposition(await (await fetch(`${gw.url}/metrics`)).text()).samples;
    for (const name of REQUEST_METRICS) {
      const endpoints = samples.filter((s) => s.name === name).map((s) => s.labels.endpoint);
      for (const endpoint of endpoints) expect(endpoint, name).not.toMatch(/^\/(metrics|docs|health\/)/);
    }
    const requests = (endpoint: string) => samples.find((s) => s.name === 'wt_requests_total' && s.labels.endpoint === endpoint)?.value;
    expect(requests('/sqlite-json')).toBe(2);
    expect(requests('unmatched')).toBe(1);
  });
});

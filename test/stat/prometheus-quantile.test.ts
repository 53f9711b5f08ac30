/**
 * `watchtower stat`'s rates and percentiles against Prometheus' own, on the same data. Two running
 * gateways (as two replicas) are read twice, under different load in between; those four exposition
 * texts are computed by stat's code and, unchanged but for an `instance` label and a timestamp per
 * line, backfilled into a TSDB with promtool (T0 and T1 = T0 + 5 s). A real Prometheus on that TSDB
 * then evaluates `histogram_quantile(q, sum by (le, <label>) (rate(<histogram>_bucket[5s])))` and
 * `sum by (<label>) (rate(<counter>[5s]))` at T1. Live scraping would not compare like with like
 * (Prometheus would read the gateways at other moments than stat); the backfill gives both the same
 * two snapshots. Prometheus 2.x's range [T1 - 5s, T1] holds exactly the two samples (checked), so
 * rate() has nothing to extrapolate and is the increase over the 5 s, as stat computes it.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- Prometheus API answers are untyped JSON */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REQUEST_DURATION_BUCKETS } from '../../src/metrics/catalogue.js';
import { parseExposition } from '../../src/stat/exposition.js';
import type { Scrape } from '../../src/stat/scrape.js';
import { computeView, type StatView } from '../../src/stat/view.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { runLoad } from '../helpers/load-client.js';
import { waitFor } from '../helpers/wait.js';
import { describeWith, freePort } from '../stack/helpers.js';

type OkScrape = Extract<Scrape, { ok: true }>;
const WINDOW_MS = 5000;

/** One exposition text as OpenMetrics lines of the instance, stamped `seconds`: comments dropped, nothing else touched. */
function stamped(text: string, instance: string, seconds: number): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0];
    const rest = line.slice(name.length);
    const labelled = rest.startsWith('{') ? `${name}{instance="${instance}",${rest.slice(1)}` : `${name}{instance="${instance}"}${rest}`;
    out.push(`${labelled} ${seconds.toFixed(3)}`);
  }
  return out;
}

describeWith('stat percentiles and rates against Prometheus on the same two scrapes', ['prometheus', 'promtool'], () => {
  let dir: string;
  let prom: ChildProcess | undefined;
  let promPort: number;
  const gateways: GatewayProcess[] = [];
  let view: StatView;
  let t1: number;

  const query = async (expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const url = `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}&time=${t1 / 1000}`;
    const body = (await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).json()) as any;
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  };
  /** label value → Prometheus' number (NaN as NaN). */
  const byLabel = async (expr: string, label: string): Promise<Map<string, number>> =>
    new Map((await query(expr)).map((r) => [r.metric[label], Number(r.value[1])]));

  /** stat's value (null: no observations) equals Prometheus' (NaN: none) to float precision. */
  const same = (ours: number | null, theirs: number | undefined, what: string) => {
    expect(theirs, `${what}: Prometheus has no value`).not.toBeUndefined();
    if (Number.isNaN(theirs)) {
      expect(ours, what).toBeNull();
      return;
    }
    expect(ours, what).not.toBeNull();
    expect(Math.abs(ours! - theirs!), `${what}: stat ${ours}, Prometheus ${theirs}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(theirs!)));
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wt-stat-prom-'));
    for (let i = 0; i < 2; i++) gateways.push(await startGateway());
    const read = async (g: GatewayProcess) => (await fetch(`${g.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    // Some traffic before the first read, so every bucket already has counts (as on a gateway in service).
    await Promise.all(gateways.map((g) => runLoad({ url: g.url, paths: ['/sqlite-json'], clients: 2, durationMs: 1000 })));
    const before = await Promise.all(gateways.map(read));
    // Different traffic on each replica: only their sum is what Prometheus' sum by () sees.
    await Promise.all([
      runLoad({ url: gateways[0].url, paths: ['/sqlite-json', '/sqlite-json?limit=1000', '/nope'], clients: 3, durationMs: 3000 }),
      runLoad({ url: gateways[1].url, paths: ['/sqlite-psv?limit=5000', '/sqlite-json?limit=200', '/sqlite-dataframe'], clients: 3, durationMs: 3000 }),
    ]);
    const after = await Promise.all(gateways.map(read));

    // Whole seconds, two minutes back: inside the TSDB's retention, and the query time is exact.
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;
    t1 = t0 + WINDOW_MS;
    const names = gateways.map((g) => g.url);
    const previous = new Map<string, OkScrape>(before.map((text, i) => [names[i], { target: names[i], ok: true, at: t0, samples: parseExposition(text) }]));
    view = computeView(previous, after.map((text, i) => ({ target: names[i], ok: true, at: t1, samples: parseExposition(text) })), 100);

    const lines = [...before.flatMap((text, i) => stamped(text, `gw${i}`, t0 / 1000)), ...after.flatMap((text, i) => stamped(text, `gw${i}`, t1 / 1000)), '# EOF', ''];
    writeFileSync(join(dir, 'scrapes.om'), lines.join('\n'));
    const backfill = await new Promise<string | undefined>((resolve) =>
      execFile('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'scrapes.om'), join(dir, 'tsdb')], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve(err ? `${err.message}\n${stdout}${stderr}` : undefined),
      ),
    );
    expect(backfill, 'promtool backfill').toBeUndefined();

    promPort = await freePort();
    writeFileSync(join(dir, 'prometheus.yml'), 'global: {scrape_interval: 1m}\n');
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: 'ignore' });
    await waitFor('prometheus ready', async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`).catch(() => undefined))?.ok, { timeout: 30_000, interval: 250 });
  }, 120_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    await Promise.all(gateways.map((g) => g.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the window holds both scrapes of every series, so rate() is the plain increase', async () => {
    const counts = await query(`count_over_time(wt_queries_total[${WINDOW_MS}ms])`);
    // ...and both replicas ran queries in it, so a sum that left one out would show.
    expect((await query(`rate(wt_queries_total[${WINDOW_MS}ms]) > 0`)).length).toBe(2);
    expect(counts.map((r) => [r.metric.instance, r.value[1]]).sort()).toEqual([['gw0', '2'], ['gw1', '2']]);
  });

  it('query time p50, p95 and p99 per resource, and queries per second', async () => {
    expect(view.resources.map((r) => r.id)).toEqual(['sqlite_traffic']);
    for (const [key, q] of [['p50', 0.5], ['p95', 0.95], ['p99', 0.99]] as const) {
      const theirs = await byLabel(`histogram_quantile(${q}, sum by (le, resource_id) (rate(wt_query_duration_seconds_bucket[${WINDOW_MS}ms])))`, 'resource_id');
      for (const r of view.resources) same(r.queryTime[key], theirs.get(r.id), `${r.id} ${key}`);
    }
    const qps = await byLabel(`sum by (resource_id) (rate(wt_queries_total[${WINDOW_MS}ms]))`, 'resource_id');
    for (const r of view.resources) same(r.queriesPerSecond, qps.get(r.id), `${r.id} queries/s`);
    expect(view.resources[0].queriesPerSecond).toBeGreaterThan(0);
  });

  it('p99, requests, 4xx and 5xx per second per endpoint, added up over both replicas', async () => {
    const p99 = await byLabel(`histogram_quantile(0.99, sum by (le, endpoint) (rate(wt_request_duration_seconds_bucket[${WINDOW_MS}ms])))`, 'endpoint');
    const rate = await byLabel(`sum by (endpoint) (rate(wt_requests_total[${WINDOW_MS}ms]))`, 'endpoint');
    const cls = async (c: string) => byLabel(`sum by (endpoint) (rate(wt_request_duration_summary_seconds_count{status_code="${c}"}[${WINDOW_MS}ms]))`, 'endpoint');
    const [c4, c5] = [await cls('4xx'), await cls('5xx')];
    expect(view.endpoints.map((e) => e.endpoint).sort()).toEqual([...rate.keys()].sort());
    for (const e of view.endpoints) {
      same(e.p99, p99.get(e.endpoint), `${e.endpoint} p99`);
      same(e.requestsPerSecond, rate.get(e.endpoint), `${e.endpoint} requests/s`);
      same(e.clientErrorsPerSecond, c4.get(e.endpoint), `${e.endpoint} 4xx/s`);
      same(e.serverErrorsPerSecond, c5.get(e.endpoint), `${e.endpoint} 5xx/s`);
    }
    // The data is not trivial: several endpoints answered, 404s among them, and a p99 fell inside a bucket.
    const busy = view.endpoints.filter((e) => e.requestsPerSecond > 0);
    expect(busy.length).toBeGreaterThanOrEqual(4);
    expect(busy.filter((e) => e.p99 !== null && !REQUEST_DURATION_BUCKETS.includes(e.p99)).length).toBeGreaterThan(0);
    expect(view.endpoints.find((e) => e.endpoint === 'unmatched')?.clientErrorsPerSecond).toBeGreaterThan(0);
  });

  it('requests and p99 per caller', async () => {
    const p99 = await byLabel(`histogram_quantile(0.99, sum by (le, client_id) (rate(wt_client_request_duration_seconds_bucket[${WINDOW_MS}ms])))`, 'client_id');
    const rate = await byLabel(`sum by (client_id) (rate(wt_client_requests_total[${WINDOW_MS}ms]))`, 'client_id');
    expect(view.clients.byRequests.length).toBeGreaterThan(0);
    for (const c of view.clients.byRequests) {
      same(c.requestsPerSecond, rate.get(c.clientId), `${c.clientId} requests/s`);
      same(c.p99, p99.get(c.clientId), `${c.clientId} p99`);
    }
  });
});

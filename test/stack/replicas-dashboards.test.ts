/**
 * Several replicas behind one scrape job, as the PodMonitor of deploy/kubernetes makes them: a real
 * Prometheus scrapes two running gateways as two targets of job "watchtower" (1 s scrapes, the
 * repository's recording rules), and every dashboard, recording-rule and alert expression is
 * evaluated on what it collected. A series that still carries the scrape target (`instance`) is one
 * replica's: its panel legend or alert text must name that target, or the replicas' series could
 * not be told apart (in Kubernetes their processes often have the same pid). Everything else must
 * be added up across the replicas, so no two series of one panel may have the same legend.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the JSON documents and API answers read here are untyped by nature */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MAIN, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { ownRedis, type OwnRedis } from '../helpers/redis-server.js';
import { sampleEndpointFiles } from '../helpers/sample-endpoints.js';
import { waitFor } from '../helpers/wait.js';
import { describeWith, freePort, readYaml, REPO } from './helpers.js';

const RID = 'sqlite_traffic';
const ENDPOINT = '/sqlite-json';
/** A cached endpoint beside the sample's, so the cache panels have series to add up. */
const CACHED = '/cached-one';
/** max_active_requests_global of RID, shared by the replicas through a Redis of the test's own. */
const GLOBAL_LIMIT = 3;

interface Series { metric: Record<string, string>; value: [number, string] }

/** Grafana's legend: {{label}} replaced by the series' value of that label. */
const legendOf = (format: string, labels: Record<string, string>) => format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l: string) => labels[l] ?? '');

const subst = (e: string) => e.replaceAll('$__rate_interval', '15s').replaceAll('$__range', '5m').replaceAll('$__interval', '5s')
  .replaceAll('$resource_id', RID).replaceAll('$client_id', 'anonymous');

/** The value of the dashboards' $endpoint for a panel: the cached endpoint in the cache row, the sample's elsewhere. */
const endpointFor = (panelTitle: string) => (panelTitle.startsWith('Cache') ? CACHED : ENDPOINT);

describeWith('several replicas: one Prometheus job scraping two gateways', ['prometheus'], () => {
  let dir: string;
  let prom: ChildProcess | undefined;
  let promPort: number;
  const gateways: GatewayProcess[] = [];
  let redis: OwnRedis | undefined;

  const query = async (expr: string): Promise<Series[]> => {
    const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    const body = (await r.json()) as any;
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data.result as Series[];
  };
  /** The value of a single-series query (NaN when it returns none). */
  const value = async (expr: string): Promise<number> => Number((await query(expr))[0]?.value[1] ?? NaN);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wt-replicas-prom-'));
    redis = await ownRedis();
    await redis.start();
    const cachedFile = join(dir, 'cached.yaml');
    writeFileSync(cachedFile, stringify({
      endpoints: [{ method: 'GET', path: CACHED, resources: [RID], statements: [{ sql: 'SELECT 1 AS one' }], result: 'one', cache: { ttl: 60 } }],
    }));
    for (let i = 0; i < 2; i++) {
      gateways.push(await startGateway({
        configPatch: (doc) => {
          Object.assign(doc, { process_metrics_interval: 1, global_limits_redis: redis!.url, endpoints: [...sampleEndpointFiles(doc.secure), cachedFile] });
          Object.assign((doc.resources as Record<string, Record<string, unknown>>)[RID], { max_active_requests_global: GLOBAL_LIMIT });
        },
      }));
    }
    promPort = await freePort();
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'rules/recording.yml'), readFileSync(join(REPO, 'prometheus/rules/recording.yml'), 'utf8').replace(/interval: 15s/, 'interval: 1s'));
    const targets = gateways.map((g) => `'127.0.0.1:${g.port}'`).join(', ');
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'rule_files: [rules/recording.yml]',
      `scrape_configs: [{job_name: watchtower, static_configs: [{targets: [${targets}]}]}]`, '',
    ].join('\n'));
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: 'ignore' });
    await waitFor('prometheus ready', async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`).catch(() => undefined))?.ok, { timeout: 30_000, interval: 250 });
    // Requests on both replicas, while both are scraped.
    for (let round = 0; round < 5; round++) {
      await Promise.all(gateways.flatMap((g) => Array.from({ length: 4 }, async () => (await fetch(`${g.url}${ENDPOINT}`)).arrayBuffer())));
      // The first of a replica misses, the rest hit its cache.
      await Promise.all(gateways.map(async (g) => (await fetch(`${g.url}${CACHED}`)).arrayBuffer()));
    }
    await waitFor('both replicas counted, their percentiles recorded', async () =>
      (await value(`count(count by (instance) (wt_resource_requests_total{resource_id="${RID}"}))`)) === 2 &&
      (await query('resource_id:wt_query_duration_seconds:p50_5m')).length > 0, { timeout: 30_000, interval: 500 });
  }, 120_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    await Promise.all(gateways.map((g) => g.stop()));
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every dashboard panel adds the replicas up, or names the replica in its legend', async () => {
    const problems: string[] = [];
    let perReplica = 0;
    let totals = 0;
    for (const f of readdirSync(join(REPO, 'grafana/dashboards'))) {
      const d = JSON.parse(readFileSync(join(REPO, 'grafana/dashboards', f), 'utf8'));
      for (const p of d.panels) for (const t of p.targets ?? []) {
        const series = await query(subst(t.expr).replaceAll('$endpoint', endpointFor(p.title)));
        if (series.length === 0) problems.push(`${f} / ${p.title}: ${t.expr}: no series (a metric or label the gateway does not expose?)`);
        const format: string = t.legendFormat ?? '';
        const seen = new Set<string>();
        for (const s of series) {
          if ('instance' in s.metric) {
            perReplica++;
            if (!/\{\{\s*instance\s*\}\}/.test(format)) problems.push(`${f} / ${p.title}: ${t.expr}: one series per replica, legend "${format}" does not name it`);
          } else totals++;
          const legend = legendOf(format, s.metric);
          if (seen.has(legend)) problems.push(`${f} / ${p.title}: ${t.expr}: two series with the legend "${legend}"`);
          seen.add(legend);
        }
      }
    }
    expect(problems).toEqual([]);
    // Both kinds were there to check: the process panels (one series per replica) and the totals.
    expect(perReplica).toBeGreaterThanOrEqual(2);
    expect(totals).toBeGreaterThan(10);
  }, 60_000);

  it('a panel total is the sum over both replicas', async () => {
    const total = await value(`sum(wt_resource_requests_total{resource_id="${RID}"})`);
    const each = await Promise.all(gateways.map(async (g) => {
      const text = await (await fetch(`${g.url}/metrics`)).text();
      const m = new RegExp(`^wt_resource_requests_total\\{[^}]*resource_id="${RID}"[^}]*\\} (\\d+)`, 'm').exec(text);
      return Number(m?.[1] ?? NaN);
    }));
    expect(each.every((n) => n > 0)).toBe(true);
    // Scraped a moment before: at most what the replicas say now, at least what was sent before the wait.
    expect(total).toBeLessThanOrEqual(each[0] + each[1]);
    expect(total).toBeGreaterThanOrEqual(40);
  });

  it('the configured maxima, the shared limit and the cache add the replicas up', async () => {
    // sqliteConfig: db_max_conn_pool_size 4 and max_active_requests empty, in each of two replicas.
    expect(await value(`sum(wt_max_active_requests{resource_id="${RID}"})`)).toBe(2 * 4);
    expect(await value(`sum(wt_max_connections{resource_id="${RID}"})`)).toBe(2 * 4);
    expect(await value(`sum(wt_global_limit_fallback{resource_id="${RID}"})`)).toBe(0);
    // Every request that ran a query (20 of the sample's and one cache miss per replica) took a lease
    // and gave it back; each wait was observed.
    await waitFor('the lease waits scraped', async () => (await value(`sum(wt_global_lease_wait_seconds_count{resource_id="${RID}"})`)) === 2 * 21, { timeout: 15_000, interval: 250 });
    expect(await value(`sum(wt_global_leases{resource_id="${RID}"})`)).toBe(0);
    // Five rounds on each replica: its first request missed, the four after it hit.
    await waitFor('the cache counts scraped', async () =>
      (await value(`sum(wt_cache_hits_total{endpoint="${CACHED}"})`)) === 2 * 4 && (await value(`sum(wt_cache_misses_total{endpoint="${CACHED}"})`)) === 2,
    { timeout: 15_000, interval: 250 });
    expect(await value(`sum(wt_cache_bytes{endpoint="${CACHED}"})`)).toBeGreaterThan(0);
  }, 30_000);

  it('recording rules aggregate across replicas; an alert left per replica names the replica', async () => {
    const problems: string[] = [];
    for (const r of readYaml('prometheus/rules/recording.yml').groups.flatMap((g: any) => g.rules)) {
      for (const s of await query(r.expr)) if ('instance' in s.metric) problems.push(`${r.record}: a series per replica`);
    }
    for (const r of readYaml('prometheus/rules/alerts.yml').groups.flatMap((g: any) => g.rules)) {
      // The expression without its threshold, so it returns series whether or not the alert fires.
      const m = /^([\s\S]*?)\s*(?:>|<|==|>=|<=)\s*[-\d.e+]+\s*$/.exec(r.expr.trim());
      if (!m || /\b(and|or|unless)\b/.test(m[1])) continue;
      const text = `${r.annotations?.summary ?? ''} ${r.annotations?.description ?? ''}`;
      for (const s of await query(m[1])) {
        if ('instance' in s.metric && !text.includes('$labels.instance')) problems.push(`${r.alert}: a series per replica, its text does not name the replica`);
      }
    }
    expect(problems).toEqual([]);
  }, 60_000);
}, () => (existsSync(MAIN) ? undefined : 'dist/main.js not built (run npm run build)'));

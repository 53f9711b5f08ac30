/**
 * End to end against a running gateway (skipped until `npm run build` produced dist/main.js):
 * a real Prometheus (1 s scrape and evaluation, a copy of our rules with `for: 0s`) scrapes the
 * gateway while the test drives overload and slot timeouts; the matching alerts must reach a real
 * Alertmanager running alertmanager/alertmanager.yml; every dashboard expression must evaluate
 * without error and return data; the gateway's real stdout lines must parse with the JavaScript
 * emulation of our Fluent Bit parsers (Fluent Bit itself does not run here). Everything listens on
 * 127.0.0.1, in a temporary directory, and is stopped afterwards.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the YAML and JSON documents checked here are untyped by nature */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor as waitUntil } from '../helpers/wait.js';
import { describeWith, freePort, parseGatewayLine, REPO } from './helpers.js';

const MAIN = join(REPO, 'dist/main.js');
const RID = 'sqlite_traffic';
/** A cached endpoint, so the dashboards' response-cache panels have series (its counters start at zero). */
const CACHED = '/cached-one';

async function get(url: string): Promise<any> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return r.headers.get('content-type')?.includes('json') ? r.json() : r.text();
}
/** Waits for the slower parts of this stack (process starts, scrapes every second): 30 s by default, probing every 250 ms. */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> => waitUntil(what, fn, { timeout: ms, interval: 250 });

describeWith('live: gateway -> Prometheus -> Alertmanager, dashboards, log lines', ['prometheus', 'prometheus-alertmanager'], () => {
  let dir: string;
  const procs: ChildProcess[] = [];
  let gw: ChildProcess;
  let gwPort: number, promPort: number, amPort: number;
  const stdout: string[] = [];
  const statuses: Record<number, number> = {};

  const gwUrl = (p: string) => `http://127.0.0.1:${gwPort}${p}`;
  const promQuery = async (expr: string) => get(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const metricValue = async (expr: string) => Number((await promQuery(expr)).data.result[0]?.value[1] ?? 'NaN');
  async function burst(n: number, path = '/sqlite-json') {
    await Promise.all(Array.from({ length: n }, async () => {
      const r = await fetch(gwUrl(path), { signal: AbortSignal.timeout(10_000) });
      await r.arrayBuffer();
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }));
  }
  function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, onLine?: (l: string) => void) {
    const p = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    p.stdout!.on('data', (d) => {
      buf += String(d);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine?.(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    p.stderr!.resume();
    procs.push(p);
    return p;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wt-live-'));
    [gwPort, promPort, amPort] = [await freePort(), await freePort(), await freePort()];

    // Sample data: tcp_hourly in a fresh SQLite file.
    const Database = createRequire(import.meta.url)('better-sqlite3');
    const db = new Database(join(dir, 'traffic.db'));
    db.exec('CREATE TABLE tcp_hourly (date_hour INTEGER, port INTEGER, flows INTEGER, pkts INTEGER, bytes INTEGER)');
    const ins = db.prepare('INSERT INTO tcp_hourly VALUES (?, ?, ?, ?, ?)');
    for (let i = 0; i < 200; i++) ins.run(1_700_000_000 + i * 3600, [22, 80, 443][i % 3], i, i * 10, i * 1000);
    db.close();

    // Phase 1 settings: one connection, no queue -> concurrent requests are rejected as overload.
    writeFileSync(join(dir, 'watchtower.yaml'), [
      'log_level: INFO', 'process_metrics_interval: 1', 'pool_check_interval: 1', `resource_ids: [${RID}]`,
      'resources:', `  ${RID}:`, '    db_min_conn_pool_size: 1', '    db_max_conn_pool_size: 1',
      '    max_pending_requests: 0', '    request_slot_timeout: 5',
      // Retire each connection after one use, so every next request finds the pool empty.
      '    db_conn_max_uses: 1',
      'secure:', `  ${RID}:`, '    db_type: sqlite', '    db_sample: true', `    db_path: ${join(dir, 'traffic.db')}`,
      // Every statement in a fresh connection's worker, so concurrent requests overlap: reads on the
      // event loop end before the next request arrives, and a burst would seldom find the slot taken.
      '    sqlite_inline_read_ms: 0',
      `endpoints: [${join(REPO, 'config', 'endpoints', 'traffic-sqlite.yaml')}, ${join(dir, 'cached.yaml')}]`, '',
    ].join('\n'));
    writeFileSync(join(dir, 'cached.yaml'), [
      'endpoints:', `  - { method: GET, path: ${CACHED}, resources: [${RID}], statements: [{ sql: 'SELECT 1 AS one' }], result: one, cache: { ttl: 60 } }`, '',
    ].join('\n'));
    writeFileSync(join(dir, 'override.yaml'), '{}\n');

    gw = start('node', [MAIN], { WT_CONFIG: join(dir, 'watchtower.yaml'), OVERRIDE_CONFIG_PATH: join(dir, 'override.yaml'), HOST: '127.0.0.1', PORT: String(gwPort), WT_WORKERS: '1' }, (l) => stdout.push(l));
    await waitFor('gateway /health/live', async () => (await fetch(gwUrl('/health/live'))).ok);

    // Rules under test: the repository's, with every `for:` shortened so alerts fire at once.
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'rules/alerts.yml'), readFileSync(join(REPO, 'prometheus/rules/alerts.yml'), 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 0s'));
    writeFileSync(join(dir, 'rules/recording.yml'), readFileSync(join(REPO, 'prometheus/rules/recording.yml'), 'utf8').replace(/interval: 15s/, 'interval: 1s'));
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'rule_files: [rules/recording.yml, rules/alerts.yml]',
      `alerting: {alertmanagers: [{static_configs: [{targets: ['127.0.0.1:${amPort}']}]}]}`,
      `scrape_configs: [{job_name: watchtower, static_configs: [{targets: ['127.0.0.1:${gwPort}']}]}]`, '',
    ].join('\n'));

    start('prometheus-alertmanager', [`--config.file=${join(REPO, 'alertmanager/alertmanager.yml')}`, `--storage.path=${join(dir, 'am')}`,
      `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address=', '--log.level=warn']);
    start('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn']);
    await waitFor('alertmanager ready', async () => (await fetch(`http://127.0.0.1:${amPort}/-/ready`)).ok);
    await waitFor('prometheus ready', async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok);
    await waitFor('first scrape', async () => (await metricValue('up{job="watchtower"}')) === 1);

    // Phase 1: overload (429).
    for (let i = 0; i < 5; i++) await burst(25);
    await burst(5, '/sqlite-psv');
    // Phase 2: a queue, but a tiny slot timeout -> 504 slot timeouts. Applied by reload (SIGUSR1).
    writeFileSync(join(dir, 'override.yaml'), `resources:\n  ${RID}:\n    max_pending_requests: 100\n    request_slot_timeout: 0.001\n`);
    gw.kill('SIGUSR1');
    await waitFor('config reload', async () => {
      const text: string = await get(gwUrl('/metrics'));
      return /wt_config_reloads_total\{[^}]*result="(?:success|ok)"[^}]*\} [1-9]/.test(text);
    }, 10_000);
    for (let i = 0; i < 5; i++) await burst(25);
  }, 120_000);

  afterAll(async () => {
    const running = () => procs.filter((p) => p.exitCode === null && p.signalCode === null);
    for (const p of running().reverse()) p.kill('SIGTERM');
    await waitFor('every process to exit on SIGTERM', async () => running().length === 0, 5000).catch(() => undefined);
    for (const p of running()) p.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('drove overload (429) and slot timeouts (504)', () => {
    expect(statuses[429] ?? 0, JSON.stringify(statuses)).toBeGreaterThan(5);
    expect(statuses[504] ?? 0, JSON.stringify(statuses)).toBeGreaterThan(5);
  });

  it('counts every request of the load under the caller anonymous, and a full queue\'s 429 as no rate limit', async () => {
    const sent = Object.values(statuses).reduce((a, b) => a + b, 0);
    // Scraped after the load: wait for the counter to catch up with what was sent.
    await expect.poll(() => metricValue('sum(wt_client_requests_total{client_id="anonymous"})'), { timeout: 15_000, interval: 500 }).toBeGreaterThanOrEqual(sent);
    expect(await metricValue('sum(wt_client_requests_total{client_id="anonymous",status_code="4xx"})')).toBeGreaterThanOrEqual(statuses[429] ?? 0);
    expect(await metricValue('sum(wt_rate_limited_total)')).toBe(0);
    expect(await metricValue('sum(wt_auth_failures_total)')).toBe(0);
  }, 30_000);

  it('the matching alerts reach Alertmanager', async () => {
    const want = ['RequestSlotOverload', 'RequestSlotTimeouts', 'ConnectionPoolEmpty'];
    const pool = await metricValue(`sum(wt_pool_exhausted_total{resource_id="${RID}"})`);
    if (pool > 0) want.push('ConnectionPoolExhausted');
    else console.warn('[live] wt_pool_exhausted_total stayed 0 (max_active_requests <= pool size prevents it): ConnectionPoolExhausted not checked end to end');
    const alerts = await waitFor('alerts in Alertmanager', async () => {
      const list: any[] = await get(`http://127.0.0.1:${amPort}/api/v2/alerts`);
      const names = new Set(list.map((a) => a.labels.alertname));
      return want.every((n) => names.has(n)) ? list : undefined;
    }, 30_000);
    const overload = alerts.find((a) => a.labels.alertname === 'RequestSlotOverload');
    expect(overload.labels).toMatchObject({ resource_id: RID, severity: 'warning' });
    expect(overload.annotations.summary).toContain(RID);
  }, 40_000);

  it('every dashboard expression evaluates without error and returns data', async () => {
    const subst = (e: string) => e.replaceAll('$__rate_interval', '15s').replaceAll('$__range', '5m').replaceAll('$__interval', '5s')
      .replaceAll('$endpoint', '/sqlite-json').replaceAll('$resource_id', RID).replaceAll('$client_id', 'anonymous');
    /** Every variable query and panel expression that fails or returns nothing (yet: rates need a few scrapes after the load). */
    const withoutData = async () => {
      const missing: string[] = [];
      for (const f of readdirSync(join(REPO, 'grafana/dashboards'))) {
        const d = JSON.parse(readFileSync(join(REPO, 'grafana/dashboards', f), 'utf8'));
        for (const v of d.templating.list) {
          const r = await promQuery(v.query.query.replace(/^label_values\((\w+), (\w+)\)$/, 'count by ($2) ($1)'));
          if (r.data.result.length === 0) missing.push(`${f} variable ${v.name}: no values`);
        }
        for (const p of d.panels) for (const t of p.targets ?? []) {
          const r = await promQuery(subst(p.title.startsWith('Cache') ? t.expr.replaceAll('$endpoint', CACHED) : t.expr));
          if (r.status !== 'success') missing.push(`${f} / ${p.title}: ${t.expr}: ${r.status} ${r.error ?? ''}`);
          else if (r.data.result.length === 0) missing.push(`${f} / ${p.title}: ${t.expr}: no data`);
        }
      }
      return missing;
    };
    await expect.poll(withoutData, { timeout: 30_000, interval: 1000 }).toEqual([]);
  }, 60_000);

  it("the gateway's real stdout lines parse with the JavaScript emulation of the Fluent Bit parsers (Fluent Bit not run)", () => {
    const lines = stdout.filter((l) => l.startsWith('['));
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      const rec = parseGatewayLine(line);
      expect(rec, line).toBeDefined();
      for (const k of ['pid', 'level', 'source', 'tag', 'msg']) expect(rec![k], `${k} in ${line}`).toBeTruthy();
    }
    const stats = lines.map((l) => parseGatewayLine(l)!).filter((r) => r.tag === 'request-stats');
    expect(stats.length).toBeGreaterThan(0);
    for (const r of stats) expect(r.cid).toMatch(/^[0-9a-f]{12}$/);
    for (const r of stats) expect(r.client_id).toBe('anonymous');
  });
}, () => (existsSync(MAIN) ? undefined : 'dist/main.js not built (run npm run build)'));

/**
 * Cluster mode end to end: the built gateway (dist/main.js) as a real primary with 2 workers,
 * real HTTP on loopback, real signals. Bounded in requests and time. Each request uses its own
 * connection, so the primary's round-robin spreads them and a recycled worker drains quickly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import type { ParsedLine } from '../helpers/logfmt-parse.js';
import { waitFor } from '../helpers/wait.js';
import { parseExposition, sumOf } from '../metrics/exposition.js';

const ENDPOINT = '/sqlite-json';

interface Outcome {
  status?: number;
  body?: string;
  error?: string;
}

/** One GET on its own connection (no keep-alive), bounded by a timeout. */
function get(port: number, path: string, timeoutMs = 10_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (err) => resolve({ status: res.statusCode, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

/** Sends `total` requests with `concurrency` in flight, or until `until()` says stop. */
async function load(port: number, total: number, concurrency: number, until: (sent: number) => boolean = () => false): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let sent = 0;
  const lane = async () => {
    while (sent < total && !until(sent)) {
      sent += 1;
      outcomes.push(await get(port, ENDPOINT));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return outcomes;
}

async function scrape(port: number): Promise<ReturnType<typeof parseExposition>> {
  const res = await get(port, '/metrics');
  if (res.status !== 200 || res.body === undefined) throw new Error(`scrape failed: ${res.status} ${res.error ?? res.body}`);
  return parseExposition(res.body);
}

const pidsWith = (gw: GatewayProcess, pred: (l: ParsedLine) => boolean): Set<string> => new Set(gw.parsed().filter(pred).map((l) => l.pid));

async function startCluster(extra: Record<string, unknown>): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'wt-cluster-'));
  dirs.push(dir);
  const gw = await startGateway({ config: sqliteConfig(dir, { workers: 2, shutdown_timeout: 5, ...extra }) });
  running.push(gw);
  await waitFor('two listening workers', () => pidsWith(gw, (l) => l.fields.tag === 'listening').size >= 2, { timeout: 20_000 });
  return gw;
}

const running: GatewayProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  // Every test ends with the primary exiting 0 on SIGTERM (if it has not already).
  for (const gw of running.splice(0)) expect(await gw.stop()).toBe(0);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('cluster mode (2 workers)', () => {
  it('recycles workers every ~50 requests without failing a request; the summed counter never decreases and equals what was sent', async () => {
    const gw = await startCluster({ max_requests: 50, max_requests_jitter: 5 });
    // Replacing a worker takes a process start-up, so load runs until two workers were recycled
    // (and at least 300 requests), capped at 1500 requests.
    const recycled = () => gw.parsed().filter((l) => l.fields.tag === 'worker-exit' && l.level === 'INFO').length;
    let loading = true;
    const seen: number[] = [];
    const scraper = (async () => {
      while (loading) {
        seen.push(sumOf(await scrape(gw.port), 'wt_requests_total', { endpoint: ENDPOINT }));
        await new Promise((r) => setTimeout(r, 200)); // a sample every 200 ms while the load runs (not a wait)
      }
    })();
    const outcomes = await load(gw.port, 1_500, 6, (sent) => sent >= 300 && recycled() >= 2);
    loading = false;
    await scraper;
    const total = outcomes.length;

    const failed = outcomes.filter((o) => o.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    expect(recycled()).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i], `scrape ${i} of ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(seen[i - 1]);
    expect(seen.length).toBeGreaterThan(2);

    // A request is counted just after the client has its answer: the last ones may take a moment.
    await expect.poll(async () => sumOf(await scrape(gw.port), 'wt_requests_total', { endpoint: ENDPOINT }), { timeout: 5_000 }).toBe(total);
    expect(gw.parsed().some((l) => l.fields.tag === 'worker-exit' && l.level === 'ERROR')).toBe(false);
  }, 90_000);

  it('SIGUSR1 to the primary reloads the config in every worker', async () => {
    const gw = await startCluster({});
    const from = gw.lines.length;
    gw.writeOverride({ cid_len: 16 });
    gw.signal('SIGUSR1');
    const workers = pidsWith(gw, (l) => l.fields.tag === 'listening');
    await waitFor('a config-reload record from each worker', () => {
      const reloaded = new Set(gw.parsed().slice(from).filter((l) => l.fields.tag === 'config-reload').map((l) => l.pid));
      return [...workers].every((p) => reloaded.has(p));
    });
    const e = await scrape(gw.port);
    expect(sumOf(e, 'wt_config_reloads_total', { result: 'success' })).toBe(2);
    expect(sumOf(e, 'wt_config_reloads_total', { result: 'error' })).toBe(0);
  }, 60_000);

  it('SIGTERM under load: every request a worker started is answered, and the primary exits 0', async () => {
    const gw = await startCluster({ log_level: 'INFO' });
    let stop = false;
    const pending = load(gw.port, 2_000, 6, () => stop);
    await waitFor('some load', () => gw.parsed().filter((l) => l.fields.tag === 'request-stats').length >= 30, { timeout: 15_000 });
    gw.signal('SIGTERM');
    const code = await Promise.race([gw.exited, new Promise<string>((r) => setTimeout(() => r('no exit'), 20_000))]);
    stop = true;
    const outcomes = await pending;
    expect(code).toBe(0);

    // Server side: each request that arrived got its completion record.
    const lines = gw.parsed();
    const arrived = lines.filter((l) => l.fields.tag === 'request' && l.fields.cid !== undefined).map((l) => l.fields.cid);
    const done = new Map(lines.filter((l) => l.fields.tag === 'request-stats').map((l) => [l.fields.cid, l.fields.status_code]));
    expect(arrived.filter((cid) => !done.has(cid))).toEqual([]);
    // Client side: every answer is a complete 200 (or the documented 503 while shutting down);
    // the rest never reached a worker (connection refused or closed before any response).
    const answered = outcomes.filter((o) => o.status !== undefined);
    for (const o of answered) {
      expect([200, 503]).toContain(o.status);
      expect(o.error).toBeUndefined();
      if (o.status === 200) expect((JSON.parse(o.body ?? '') as unknown[]).length).toBe(10);
    }
    const ok = answered.filter((o) => o.status === 200).length;
    expect(ok).toBe([...done.values()].filter((s) => s === '200').length);
  }, 60_000);
  it('replaces a crashed worker (logged, counters kept) and restarts all workers one at a time on SIGHUP', async () => {
    const gw = await startCluster({});
    const first = [...pidsWith(gw, (l) => l.fields.tag === 'listening')];
    expect((await load(gw.port, 40, 4)).every((o) => o.status === 200)).toBe(true);
    const before = sumOf(await scrape(gw.port), 'wt_requests_total', { endpoint: ENDPOINT });
    expect(before).toBe(40);

    process.kill(Number(first[0]), 'SIGKILL');
    const crash = await gw.waitForLine((l) => l.fields.tag === 'worker-exit' && l.fields.pid === first[0], 10_000);
    expect(crash.level).toBe('ERROR');
    expect(crash.fields.signal).toBe('SIGKILL');
    await waitFor('a replacement worker', () => pidsWith(gw, (l) => l.fields.tag === 'listening').size >= 3, { timeout: 20_000 });
    // The crashed worker's requests are still counted, and nothing was counted twice.
    expect(sumOf(await scrape(gw.port), 'wt_requests_total', { endpoint: ENDPOINT })).toBe(before);

    const live = [...pidsWith(gw, (l) => l.fields.tag === 'listening')].filter((p) => p !== first[0]);
    let stop = false;
    const during = load(gw.port, 2_000, 2, () => stop);
    gw.signal('SIGHUP');
    await waitFor('both workers restarted', () => live.every((p) => gw.parsed().some((l) => l.fields.tag === 'worker-exit' && l.fields.pid === p && l.level === 'INFO')), {
      timeout: 45_000,
    });
    stop = true;
    const outcomes = await during;
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(pidsWith(gw, (l) => l.fields.tag === 'listening').size).toBe(5);
    // One at a time: the second replacement is forked only after the first old worker has exited.
    const lines = gw.parsed();
    const firstExit = lines.findIndex((l) => l.fields.tag === 'worker-exit' && live.includes(l.fields.pid ?? '') && l.level === 'INFO');
    const hupStarts = lines.map((l, i) => (l.fields.tag === 'worker-recycle' && /rolling restart/.test(l.fields.msg ?? '') ? i : -1)).filter((i) => i >= 0);
    expect(hupStarts).toHaveLength(2);
    expect(hupStarts[1]).toBeGreaterThan(firstExit);
  }, 90_000);
});

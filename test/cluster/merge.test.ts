import { describe, expect, it } from 'vitest';
import { ClusterMetrics } from '../../src/cluster/merge.js';
import { isToPrimary, isToWorker, type Snapshot } from '../../src/cluster/messages.js';
import { createMetrics, type Metrics } from '../../src/metrics/catalogue.js';
import { initChildren, recordRequest } from '../../src/metrics/bind.js';
import { parseExposition, sumOf, type Exposition } from '../metrics/exposition.js';

const RID = 'sqlite_traffic';

/** One worker's registry, as the primary receives it over IPC (a JSON round trip). */
function worker(pid: number) {
  const metrics: Metrics = createMetrics();
  initChildren(metrics, ['/sqlite-json'], [RID]);
  metrics.live.resourceIds = [RID];
  let pending = 0;
  let breaker = 0;
  metrics.live.stats = () => ({ active: 1, pending, open: 2, pooled: 1, inUse: 1, breaker, maxActive: 3, maxConnections: 4 });
  return {
    metrics,
    setPending(n: number) {
      pending = n;
    },
    setBreaker(state: number) {
      breaker = state;
    },
    requests(n: number) {
      for (let i = 0; i < n; i++) recordRequest(metrics, '/sqlite-json', 200, 0.01);
    },
    lastRequestAt(t: number) {
      metrics.lastRequestTime.set({ resource_id: RID }, t);
    },
    pidGauge() {
      metrics.memRssBytes.set({ pid: String(pid) }, 1000 * pid);
    },
    async snapshot(): Promise<Snapshot> {
      return JSON.parse(JSON.stringify(await metrics.registry.getMetricsAsJSON())) as Snapshot;
    },
  };
}

async function view(c: ClusterMetrics): Promise<Exposition> {
  return parseExposition(await c.text());
}

describe('cluster metrics merge', () => {
  it('sums counters and live gauges, takes the latest last-time, keeps pid series apart', async () => {
    const c = new ClusterMetrics();
    const a = worker(101);
    const b = worker(102);
    c.add(1);
    c.add(2);
    a.requests(3);
    b.requests(4);
    a.setPending(2);
    b.setPending(5);
    a.lastRequestAt(1000);
    b.lastRequestAt(2000);
    a.pidGauge();
    b.pidGauge();
    c.update(1, await a.snapshot());
    c.update(2, await b.snapshot());
    const e = await view(c);
    expect(sumOf(e, 'wt_requests_total', { endpoint: '/sqlite-json' })).toBe(7);
    expect(sumOf(e, 'wt_request_duration_seconds_bucket', { endpoint: '/sqlite-json', le: '+Inf' })).toBe(7);
    expect(sumOf(e, 'wt_request_duration_summary_seconds_count', { endpoint: '/sqlite-json', status_code: '2xx' })).toBe(7);
    expect(sumOf(e, 'wt_pending_requests', { resource_id: RID })).toBe(7);
    // Each worker's configured maxima are its own limiter's and pool's: the cluster's are their sum.
    expect(sumOf(e, 'wt_max_active_requests', { resource_id: RID })).toBe(6);
    expect(sumOf(e, 'wt_max_connections', { resource_id: RID })).toBe(8);
    expect(sumOf(e, 'wt_last_request_time_seconds', { resource_id: RID })).toBe(2000);
    expect(e.samples.filter((s) => s.name === 'wt_mem_rss_bytes').map((s) => [s.labels.pid, s.value])).toEqual([
      ['101', 101000],
      ['102', 102000],
    ]);
    expect(e.types.get('wt_request_duration_summary_seconds')).toBe('summary');
  });

  it("shows a resource's circuit breaker as the highest state of any worker, never a sum", async () => {
    const c = new ClusterMetrics();
    const [a, b, d] = [worker(101), worker(102), worker(103)];
    for (const id of [1, 2, 3]) c.add(id);
    const update = async () => {
      c.update(1, await a.snapshot());
      c.update(2, await b.snapshot());
      c.update(3, await d.snapshot());
      return sumOf(await view(c), 'wt_breaker_state', { resource_id: RID });
    };
    expect(await update()).toBe(0);
    // Two workers open: still "open" (1), not 2, which would read as half-open.
    a.setBreaker(1);
    b.setBreaker(1);
    expect(await update()).toBe(1);
    b.setBreaker(2);
    expect(await update()).toBe(2);
  });

  it('keeps the counters of exited workers, so totals never go backwards, and drops their gauges', async () => {
    const c = new ClusterMetrics();
    const a = worker(101);
    const b = worker(102);
    c.add(1);
    c.add(2);
    a.requests(50);
    b.requests(20);
    a.setPending(3);
    a.pidGauge();
    a.lastRequestAt(5000);
    c.update(1, await a.snapshot());
    c.update(2, await b.snapshot());
    const before = await view(c);
    expect(sumOf(before, 'wt_requests_total')).toBe(70);

    // Worker 1 is recycled: its final snapshot arrives, then it exits; worker 3 replaces it.
    a.requests(2);
    c.update(1, await a.snapshot());
    c.retire(1);
    const fresh = worker(103);
    c.add(3);
    fresh.requests(1);
    c.update(3, await fresh.snapshot());
    b.requests(5);
    c.update(2, await b.snapshot());

    const after = await view(c);
    expect(sumOf(after, 'wt_requests_total')).toBe(52 + 25 + 1);
    expect(sumOf(after, 'wt_request_duration_seconds_count')).toBe(78);
    expect(sumOf(after, 'wt_request_duration_seconds_bucket', { le: '+Inf' })).toBe(78);
    expect(sumOf(after, 'wt_request_duration_summary_seconds_count', { status_code: '2xx' })).toBe(78);
    expect(sumOf(after, 'wt_pending_requests', { resource_id: RID })).toBe(0); // 3 belonged to the dead worker
    expect(sumOf(after, 'wt_last_request_time_seconds', { resource_id: RID })).toBe(0);
    expect(after.samples.some((s) => s.labels.pid === '101')).toBe(false);
    for (const s of before.samples) {
      if (before.types.get(s.name) === 'counter') {
        const now = after.samples.find((x) => x.name === s.name && JSON.stringify(x.labels) === JSON.stringify(s.labels));
        if (s.labels.pid === undefined) expect(now?.value, s.name).toBeGreaterThanOrEqual(s.value);
      }
    }

    // A second retirement folds into the same accumulator; a late snapshot of a retired worker is ignored.
    c.retire(2);
    c.update(2, await worker(999).snapshot());
    c.retire(3);
    const last = await view(c);
    expect(sumOf(last, 'wt_requests_total')).toBe(78);
    expect(c.liveIds()).toEqual([]);
  });

  it('answers an empty text when nothing is known yet', async () => {
    expect(await new ClusterMetrics().text()).toBe('');
  });

  it('recognises only its own IPC messages', () => {
    expect(isToWorker({ wt: 'reload' })).toBe(true);
    expect(isToWorker({ wt: 'recycle' })).toBe(false);
    expect(isToPrimary({ wt: 'aggregate', id: 1 })).toBe(true);
    expect(isToPrimary({ type: 'prom-client:getMetricsRes' })).toBe(false);
    expect(isToPrimary(null)).toBe(false);
  });
});

/**
 * The cluster's view of metrics: the last snapshot of every live worker plus one accumulated
 * snapshot of every worker that exited. Live snapshots merge with prom-client's
 * AggregatorRegistry.aggregate(), which applies each metric's own aggregator (sum, max, first).
 *
 * Of an exited worker only what can never go down is kept: counters, histograms and summaries
 * (their _sum/_count). Its gauges no longer describe anything alive, and its pid-labelled series
 * are dropped too: they are that pid's own series (a vanished series is not a decrease), and
 * keeping them would add series with every recycle.
 */
import { AggregatorRegistry } from 'prom-client';
import type { Snapshot, SnapshotMetric } from './messages.js';

const MONOTONIC = new Set(['counter', 'histogram', 'summary']);

function labelKey(labels: Record<string, string | number>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${String(labels[k])}`)
    .join(',');
}

/**
 * Adds the monotonic series of `snap` into `into` (mutated). Hand-written rather than through
 * aggregate(): that returns a Registry whose JSON is only available asynchronously, and retiring
 * must be synchronous, so that no scrape ever sees a worker in neither the live nor the retired set.
 */
export function addRetired(into: Snapshot, snap: Snapshot): void {
  for (const metric of snap) {
    if (!MONOTONIC.has(metric.type)) continue;
    let target = into.find((m) => m.name === metric.name);
    if (target === undefined) {
      target = { name: metric.name, help: metric.help, type: metric.type, aggregator: metric.aggregator, values: [] };
      into.push(target);
    }
    const index = new Map(target.values.map((v, i) => [`${v.metricName ?? ''}|${labelKey(v.labels)}`, i]));
    for (const v of metric.values) {
      if ('pid' in v.labels) continue;
      const key = `${v.metricName ?? ''}|${labelKey(v.labels)}`;
      const i = index.get(key);
      if (i !== undefined) target.values[i].value += v.value;
      else {
        index.set(key, target.values.length);
        target.values.push({ ...v, labels: { ...v.labels } });
      }
    }
  }
}

export class ClusterMetrics {
  private readonly live = new Map<number, Snapshot>();
  private readonly retired: Snapshot = [];

  /** A worker started: from now on its snapshots count. */
  add(workerId: number): void {
    if (!this.live.has(workerId)) this.live.set(workerId, []);
  }

  /** Latest snapshot of a live worker; ignored once the worker has been retired. */
  update(workerId: number, snap: Snapshot): void {
    if (this.live.has(workerId)) this.live.set(workerId, snap);
  }

  /** The worker is gone: fold its last snapshot's counters into the retired total. */
  retire(workerId: number): void {
    const snap = this.live.get(workerId);
    if (snap === undefined) return;
    this.live.delete(workerId);
    addRetired(this.retired, snap);
  }

  liveIds(): number[] {
    return [...this.live.keys()];
  }

  /** Exposition text of retired totals + live snapshots. */
  async text(): Promise<string> {
    const parts: SnapshotMetric[][] = [this.retired, ...this.live.values()].filter((s) => s.length > 0);
    if (parts.length === 0) return '';
    return AggregatorRegistry.aggregate(parts).metrics();
  }
}

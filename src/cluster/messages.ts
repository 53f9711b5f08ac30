/**
 * Every IPC message between the cluster primary and its workers. Messages carry `wt` as their
 * discriminator, so they never collide with Node's own cluster messages or prom-client's.
 */

/** One metric as Registry.getMetricsAsJSON() returns it, after the IPC JSON round trip. */
export interface SnapshotMetric {
  name: string;
  help: string;
  /** 'counter' | 'gauge' | 'histogram' | 'summary' */
  type: string;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}
export type Snapshot = SnapshotMetric[];

/** Primary → worker. */
export type ToWorker =
  | { wt: 'reload' }
  | { wt: 'shutdown' }
  /** Send your registry's JSON (reply: snapshot with the same id). */
  | { wt: 'collect'; id: number }
  /** Answer to an `aggregate` request: the merged exposition text, or why there is none. */
  | { wt: 'aggregate-result'; id: number; text?: string; error?: string };

/** Worker → primary. */
export type ToPrimary =
  /** The worker served its quota of requests: replace it. */
  | { wt: 'recycle' }
  | { wt: 'snapshot'; id: number; metrics: Snapshot }
  /** Sent after a graceful shutdown, just before exiting: counters the primary keeps forever. */
  | { wt: 'final'; metrics: Snapshot }
  /** A scrape arrived here: please merge all workers' metrics. */
  | { wt: 'aggregate'; id: number };

const TO_WORKER = new Set(['reload', 'shutdown', 'collect', 'aggregate-result']);
const TO_PRIMARY = new Set(['recycle', 'snapshot', 'final', 'aggregate']);

function tagOf(m: unknown): unknown {
  return typeof m === 'object' && m !== null ? (m as { wt?: unknown }).wt : undefined;
}

// Both ends run our own code, so the tag is trusted and the payload shape follows from it.
export function isToWorker(m: unknown): m is ToWorker {
  const t = tagOf(m);
  return typeof t === 'string' && TO_WORKER.has(t);
}

export function isToPrimary(m: unknown): m is ToPrimary {
  const t = tagOf(m);
  return typeof t === 'string' && TO_PRIMARY.has(t);
}

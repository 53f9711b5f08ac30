/**
 * What `watchtower stat` shows, computed from two scrapes of each target: rates and percentiles
 * over the interval between them, levels from the newer one. Several targets (replicas) are added
 * up the way Prometheus' `sum(rate(...))` does: each series' increase is taken per target (a
 * target that restarted counts from zero, as rate() treats a counter reset), then summed.
 */
import type { Sample } from './exposition.js';
import { bucketQuantile, type Bucket } from './quantile.js';
import type { Scrape } from './scrape.js';

type OkScrape = Extract<Scrape, { ok: true }>;

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface ResourceView {
  id: string;
  /**
   * Requests holding a slot, the slots configured, and requests waiting for one (wt_in_progress_requests,
   * wt_max_active_requests, wt_pending_requests). `max` is null when the gateway does not expose it.
   */
  slots: { active: number; max: number | null; pending: number };
  /**
   * Connections open, idle in the pool, lent to requests, and the most the pools may open
   * (wt_open_connections, wt_pooled_connections, wt_max_connections; `max` null when not exposed).
   */
  connections: { open: number; pooled: number; inUse: number; max: number | null };
  queriesPerSecond: number;
  /** Query time percentiles over the interval, seconds (null: no query in the interval). */
  queryTime: { p50: number | null; p95: number | null; p99: number | null };
  /** Failures of each kind counted in the interval (slot_overload, query_timeout, ...). */
  errors: Record<string, number>;
  /** wt_breaker_state, the highest over workers and targets; null when the gateway does not expose it. */
  breaker: BreakerState | null;
}

export interface EndpointView {
  endpoint: string;
  requestsPerSecond: number;
  /** Seconds; null when no request ended in the interval. */
  p99: number | null;
  clientErrorsPerSecond: number;
  serverErrorsPerSecond: number;
}

export interface ClientView {
  clientId: string;
  requestsPerSecond: number;
  p99: number | null;
}

export interface TargetState {
  url: string;
  ok: boolean;
  /** Why its last scrape failed. */
  error?: string;
  /** Seconds between its two reads this view's rates of it cover; absent before it was read twice. */
  intervalSeconds?: number;
}

export interface StatView {
  /** When the newer scrape was taken (ms since the epoch). */
  at: number;
  /** Seconds between the two scrapes (the longest over the targets); 0 before there are two. */
  intervalSeconds: number;
  targets: TargetState[];
  resources: ResourceView[];
  endpoints: EndpointView[];
  clients: { byRequests: ClientView[]; byP99: ClientView[] };
}

/** Kinds of failures by counter: a fixed kind, or a prefix joined to the error_type label. */
const ERROR_COUNTERS: { metric: string; kind?: string; prefix?: string }[] = [
  { metric: 'wt_request_slot_errors_total', prefix: 'slot' },
  { metric: 'wt_conn_acquire_errors_total', kind: 'conn_acquire' },
  { metric: 'wt_conn_creation_errors_total', prefix: 'connect' },
  { metric: 'wt_query_errors_total', prefix: 'query' },
  { metric: 'wt_stream_stalls_total', kind: 'stream_stall' },
  { metric: 'wt_global_lease_errors_total', prefix: 'global_lease' },
];

const BREAKER_STATES: Record<number, BreakerState> = { 0: 'closed', 1: 'open', 2: 'half-open' };

const seriesKey = (s: Sample): string =>
  `${s.name}${JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;

/** One series' increase and rate over the interval of one target. */
interface Delta {
  sample: Sample;
  increase: number;
  rate: number;
}

/**
 * The increase of every series present in both scrapes. A value lower than before is a reset (the
 * target or one of its workers restarted): the increase is the new value, as PromQL's rate() counts.
 * A series new in the later scrape has no rate yet, as in Prometheus.
 */
function deltas(prev: OkScrape, cur: OkScrape): Delta[] {
  const seconds = (cur.at - prev.at) / 1000;
  if (seconds <= 0) return [];
  const before = new Map(prev.samples.map((s) => [seriesKey(s), s.value]));
  const out: Delta[] = [];
  for (const sample of cur.samples) {
    const was = before.get(seriesKey(sample));
    if (was === undefined) continue;
    const increase = sample.value >= was ? sample.value - was : sample.value;
    out.push({ sample, increase, rate: increase / seconds });
  }
  return out;
}

/** Adds up `pick` of the series of `name` by the values of `by` (missing labels count as ''). */
function sumBy<T>(items: T[], sample: (t: T) => Sample, pick: (t: T) => number, name: string, by: string[]): Map<string, { labels: Record<string, string>; value: number }> {
  const out = new Map<string, { labels: Record<string, string>; value: number }>();
  for (const item of items) {
    const s = sample(item);
    if (s.name !== name) continue;
    const labels = Object.fromEntries(by.map((l) => [l, s.labels[l] ?? '']));
    const k = JSON.stringify(by.map((l) => labels[l]));
    const entry = out.get(k);
    if (entry) entry.value += pick(item);
    else out.set(k, { labels, value: pick(item) });
  }
  return out;
}

/** `label` value → summed rate, for one counter. */
function ratesBy(all: Delta[], name: string, label: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const { labels, value } of sumBy(all, (d) => d.sample, (d) => d.rate, name, [label]).values()) m.set(labels[label], value);
  return m;
}

/**
 * The percentiles of a histogram per value of `label`, from the summed bucket rates: what
 * `histogram_quantile(q, sum by (le, <label>) (rate(<name>_bucket[interval])))` answers.
 */
function quantilesBy(all: Delta[], name: string, label: string, qs: number[]): Map<string, (number | null)[]> {
  const buckets = new Map<string, Bucket[]>();
  for (const { labels, value } of sumBy(all, (d) => d.sample, (d) => d.rate, `${name}_bucket`, [label, 'le']).values()) {
    const upperBound = labels.le === '+Inf' ? Infinity : Number(labels.le);
    if (labels.le === '' || Number.isNaN(upperBound)) continue;
    const list = buckets.get(labels[label]) ?? [];
    list.push({ upperBound, count: value });
    buckets.set(labels[label], list);
  }
  const out = new Map<string, (number | null)[]>();
  for (const [value, list] of buckets) {
    out.set(value, qs.map((q) => {
      const v = bucketQuantile(q, list);
      return Number.isNaN(v) ? null : v;
    }));
  }
  return out;
}

/** Levels (gauges) of the newer scrapes, summed (or the highest) per resource. */
function levels(scrapes: OkScrape[], name: string, how: 'sum' | 'max' = 'sum'): Map<string, number> {
  const m = new Map<string, number>();
  for (const scrape of scrapes) {
    for (const s of scrape.samples) {
      if (s.name !== name) continue;
      const rid = s.labels.resource_id ?? '';
      const was = m.get(rid);
      m.set(rid, was === undefined ? s.value : how === 'sum' ? was + s.value : Math.max(was, s.value));
    }
  }
  return m;
}

const TOP = 5;

/**
 * The view of `current` (one scrape per target, in the order given) against `previous`, the last
 * successful scrape of each target before it (by target URL; missing: no rates for that target yet).
 */
export function computeView(previous: ReadonlyMap<string, OkScrape>, current: Scrape[], top = TOP): StatView {
  const ok = current.filter((s): s is OkScrape => s.ok);
  const all: Delta[] = [];
  const intervals = new Map<string, number>();
  for (const cur of ok) {
    const prev = previous.get(cur.target);
    if (prev === undefined) continue;
    all.push(...deltas(prev, cur));
    intervals.set(cur.target, (cur.at - prev.at) / 1000);
  }

  // Resources: every id a level or a counter names.
  const active = levels(ok, 'wt_in_progress_requests');
  const pending = levels(ok, 'wt_pending_requests');
  const open = levels(ok, 'wt_open_connections');
  const pooled = levels(ok, 'wt_pooled_connections');
  const breaker = levels(ok, 'wt_breaker_state', 'max');
  // Configured maxima, per process: summed like the levels (each worker and replica has its own).
  const maxActive = levels(ok, 'wt_max_active_requests');
  const maxConnections = levels(ok, 'wt_max_connections');
  const qps = ratesBy(all, 'wt_queries_total', 'resource_id');
  const queryTime = quantilesBy(all, 'wt_query_duration_seconds', 'resource_id', [0.5, 0.95, 0.99]);
  const errors = new Map<string, Record<string, number>>();
  for (const { metric, kind, prefix } of ERROR_COUNTERS) {
    for (const { labels, value } of sumBy(all, (d) => d.sample, (d) => d.increase, metric, ['resource_id', 'error_type']).values()) {
      const e = errors.get(labels.resource_id) ?? {};
      e[kind ?? `${prefix}_${labels.error_type}`] = value;
      errors.set(labels.resource_id, e);
    }
  }
  const ids = new Set([...active.keys(), ...open.keys(), ...qps.keys()].filter((id) => id !== ''));
  const resources: ResourceView[] = [...ids].sort().map((id) => {
    const [p50, p95, p99] = queryTime.get(id) ?? [null, null, null];
    const o = open.get(id) ?? 0;
    const idle = pooled.get(id) ?? 0;
    const b = breaker.get(id);
    return {
      id,
      slots: { active: active.get(id) ?? 0, max: maxActive.get(id) ?? null, pending: pending.get(id) ?? 0 },
      connections: { open: o, pooled: idle, inUse: o - idle, max: maxConnections.get(id) ?? null },
      queriesPerSecond: qps.get(id) ?? 0,
      queryTime: { p50, p95, p99 },
      errors: errors.get(id) ?? {},
      breaker: b === undefined ? null : (BREAKER_STATES[b] ?? null),
    };
  });

  // Endpoints: requests, the p99 of their durations, and the 4xx and 5xx among them.
  const epRate = ratesBy(all, 'wt_requests_total', 'endpoint');
  const epP99 = quantilesBy(all, 'wt_request_duration_seconds', 'endpoint', [0.99]);
  const byClass = sumBy(all, (d) => d.sample, (d) => d.rate, 'wt_request_duration_summary_seconds_count', ['endpoint', 'status_code']);
  const classRate = (endpoint: string, cls: string) => byClass.get(JSON.stringify([endpoint, cls]))?.value ?? 0;
  const endpoints: EndpointView[] = [...epRate.keys()]
    .map((endpoint) => ({
      endpoint,
      requestsPerSecond: epRate.get(endpoint) ?? 0,
      p99: epP99.get(endpoint)?.[0] ?? null,
      clientErrorsPerSecond: classRate(endpoint, '4xx'),
      serverErrorsPerSecond: classRate(endpoint, '5xx'),
    }))
    .sort((a, b) => b.requestsPerSecond - a.requestsPerSecond || (a.endpoint < b.endpoint ? -1 : 1));

  // Callers: wt_client_requests_total over every status class, p99 of their durations.
  const clientRate = ratesBy(all, 'wt_client_requests_total', 'client_id');
  const clientP99 = quantilesBy(all, 'wt_client_request_duration_seconds', 'client_id', [0.99]);
  const callers: ClientView[] = [...clientRate]
    .filter(([, rate]) => rate > 0)
    .map(([clientId, rate]) => ({ clientId, requestsPerSecond: rate, p99: clientP99.get(clientId)?.[0] ?? null }));
  const byName = (a: ClientView, b: ClientView) => (a.clientId < b.clientId ? -1 : 1);
  const byRequests = [...callers].sort((a, b) => b.requestsPerSecond - a.requestsPerSecond || byName(a, b)).slice(0, top);
  const byP99 = callers
    .filter((c) => c.p99 !== null)
    .sort((a, b) => (b.p99 ?? 0) - (a.p99 ?? 0) || byName(a, b))
    .slice(0, top);

  return {
    at: ok.length ? Math.max(...ok.map((s) => s.at)) : Math.max(0, ...current.map((s) => s.at)),
    intervalSeconds: Math.max(0, ...intervals.values()),
    targets: current.map((s) => {
      const interval = intervals.get(s.target);
      if (!s.ok) return { url: s.target, ok: false, error: s.error };
      return interval === undefined ? { url: s.target, ok: true } : { url: s.target, ok: true, intervalSeconds: interval };
    }),
    resources,
    endpoints,
    clients: { byRequests, byP99 },
  };
}

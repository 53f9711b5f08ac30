/**
 * Feeds the catalogue: resource events → counters/histograms/last-time gauges, the live-stats
 * source → live gauges (read on scrape), and the request/query/config recorders the hooks call.
 */
import type { EventEmitter } from 'node:events';
import type { RequestObserver } from '../http/lifecycle.js';
import { RETRY_REASONS, type QueryEvent, type ResourceEventMap } from '../resources/events.js';
import type { GlobalLiveStats, LiveStats, Metrics } from './catalogue.js';
import { initClientChildren, recordClientRequest, recordRefusal } from './clients.js';
import type { CacheObserver } from '../cache/response-cache.js';
import type { ConnectorHooks } from '../db/types.js';

/** The endpoint label of every request that matched no route, so 404 scans cannot grow the label set. */
export const UNMATCHED_ENDPOINT = 'unmatched';

export const STATUS_CLASSES = ['2xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

const SLOT_ERROR_TYPES = ['overload', 'timeout'] as const;
const CONN_ERROR_TYPES = ['timeout', 'other'] as const;
const QUERY_ERROR_TYPES = ['timeout', 'constraint', 'other'] as const;
const GLOBAL_LEASE_ERROR_TYPES = ['timeout', 'lost', 'redis'] as const;
const RELOAD_RESULTS = ['success', 'error'] as const;

export type ResourceSource = EventEmitter<ResourceEventMap> & { stats(rid: string): LiveStats; globalStats?(rid: string): GlobalLiveStats | undefined };

const nowSeconds = (): number => Date.now() / 1000;

/**
 * Label objects made once per value and reused for every update (prom-client keeps them as given
 * and never changes them): a request updates about a dozen series.
 */
function labelCache<K extends string, V>(make: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    let v = cache.get(key);
    if (v === undefined) cache.set(key, (v = make(key)));
    return v;
  };
}
const ridLabels = labelCache((resource_id: string) => ({ resource_id }));
const endpointLabels = labelCache((endpoint: string) => ({ endpoint }));
const summaryLabels = labelCache((endpoint: string) => ({
  '2xx': { endpoint, status_code: '2xx' },
  '4xx': { endpoint, status_code: '4xx' },
  '5xx': { endpoint, status_code: '5xx' },
}));

/** The series a resource's events and queries update on every request, each looked up once. */
function resourceSeries(m: Metrics, resourceId: string) {
  const r = ridLabels(resourceId);
  return {
    requests: m.resourceRequestsTotal.bind(r),
    lastRequest: m.lastRequestTime.bind(r),
    slotWait: m.requestSlotAcquireDuration.bind(r),
    lastResponse: m.lastResponseTime.bind(r),
    connWait: m.acquireConnectionDuration.bind(r),
    connUsage: m.connectionUsageDuration.bind(r),
    queries: m.queriesTotal.bind(r),
    queryDuration: m.queryDuration.bind(r),
    queryRows: m.queryRows.bind(r),
  };
}

/** The series every finished request updates, per endpoint. */
function endpointSeries(m: Metrics, endpoint: string) {
  const labels = endpointLabels(endpoint);
  const byClass = summaryLabels(endpoint);
  return {
    requests: m.requestsTotal.bind(labels),
    duration: m.requestDuration.bind(labels),
    summary: {
      '2xx': m.requestDurationSummary.bind(byClass['2xx']),
      '4xx': m.requestDurationSummary.bind(byClass['4xx']),
      '5xx': m.requestDurationSummary.bind(byClass['5xx']),
    },
  };
}

/**
 * Bound series per Metrics (tests and benchmarks build several), by resource id and by endpoint:
 * a request makes about a dozen updates, and a lookup of its series each time cost more than the
 * update. Both key sets are bounded (configured resources, route templates).
 */
interface BoundSeries {
  resource: (resourceId: string) => ReturnType<typeof resourceSeries>;
  endpoint: (endpoint: string) => ReturnType<typeof endpointSeries>;
}
const boundSeries = new WeakMap<Metrics, BoundSeries>();

function boundOf(m: Metrics): BoundSeries {
  let b = boundSeries.get(m);
  if (b === undefined) {
    b = { resource: labelCache((rid: string) => resourceSeries(m, rid)), endpoint: labelCache((ep: string) => endpointSeries(m, ep)) };
    boundSeries.set(m, b);
  }
  return b;
}

/**
 * Subscribes the metrics to a ResourceManager and makes the live gauges read its stats().
 * Returns a function that unsubscribes.
 */
export function bindResourceMetrics(metrics: Metrics, source: ResourceSource, resourceIds: string[]): () => void {
  const m = metrics;
  metrics.live.stats = (rid) => source.stats(rid);
  metrics.live.resourceIds = [...resourceIds];
  metrics.live.global = source.globalStats && ((rid) => source.globalStats?.(rid));
  const of = boundOf(m).resource;

  const handlers: { [E in keyof ResourceEventMap]: (...args: ResourceEventMap[E]) => void } = {
    'slot-requested': ({ resourceId }) => {
      const r = of(resourceId);
      r.requests.inc();
      r.lastRequest.set(nowSeconds());
    },
    'slot-acquired': ({ resourceId, waitSeconds }) => of(resourceId).slotWait.observe(waitSeconds),
    'slot-error': ({ resourceId, type, waitSeconds }) => {
      m.requestSlotErrorsTotal.inc({ resource_id: resourceId, error_type: type });
      // Failed waits count too: a slow failure is still latency the client saw.
      of(resourceId).slotWait.observe(waitSeconds);
    },
    'slot-released': ({ resourceId }) => of(resourceId).lastResponse.set(nowSeconds()),
    'conn-created': ({ resourceId }) => {
      m.createdConnectionsTotal.inc(ridLabels(resourceId));
      m.lastConnCreatedTime.set(ridLabels(resourceId), nowSeconds());
    },
    'conn-create-error': ({ resourceId, type }) => {
      m.connCreationErrorsTotal.inc({ resource_id: resourceId, error_type: type });
      m.lastConnCreatedErrorTime.set(ridLabels(resourceId), nowSeconds());
    },
    'conn-closed': ({ resourceId }) => m.closedConnectionsTotal.inc(ridLabels(resourceId)),
    'pool-empty': ({ resourceId }) => m.poolEmptyTotal.inc(ridLabels(resourceId)),
    'pool-exhausted': ({ resourceId }) => m.poolExhaustedTotal.inc(ridLabels(resourceId)),
    'conn-acquired': ({ resourceId, waitSeconds }) => of(resourceId).connWait.observe(waitSeconds),
    'conn-acquire-error': ({ resourceId }) => m.connAcquireErrorsTotal.inc(ridLabels(resourceId)),
    'conn-released': ({ resourceId, usageSeconds }) => of(resourceId).connUsage.observe(usageSeconds),
    'global-lease-acquired': ({ resourceId, waitSeconds }) => m.globalLeaseWait.observe(ridLabels(resourceId), waitSeconds),
    'global-lease-error': ({ resourceId, type, waitSeconds }) => {
      m.globalLeaseErrorsTotal.inc({ resource_id: resourceId, error_type: type });
      if (type === 'timeout') m.globalLeaseWait.observe(ridLabels(resourceId), waitSeconds);
    },
  };

  const events = Object.keys(handlers) as (keyof ResourceEventMap)[];
  // The typed EventEmitter cannot relate a key to its handler inside a loop; each pair is correct by construction above.
  const emitter = source as unknown as EventEmitter;
  for (const e of events) emitter.on(e, handlers[e] as (...args: unknown[]) => void);
  return () => {
    for (const e of events) emitter.off(e, handlers[e] as (...args: unknown[]) => void);
    metrics.live.stats = undefined;
    metrics.live.global = undefined;
  };
}

/** Records one finished query (called by the Query layer). */
export function recordQuery(metrics: Metrics, ev: QueryEvent): void {
  const r = boundOf(metrics).resource(ev.resourceId);
  r.queries.inc();
  r.queryDuration.observe(ev.seconds);
  if (ev.stalled) metrics.streamStallsTotal.inc({ resource_id: ev.resourceId });
  if (ev.retries !== undefined) for (const reason of ev.retries) metrics.queryRetriesTotal.inc({ resource_id: ev.resourceId, reason });
  if (ev.error !== undefined) metrics.queryErrorsTotal.inc({ resource_id: ev.resourceId, error_type: ev.error });
  else if (ev.rows !== undefined) r.queryRows.observe(ev.rows);
}

/**
 * The status_code label of the summary. Only three classes exist so that every child can be
 * created at start-up: 5xx and 4xx as they are; everything else (1xx, 2xx, 3xx) is a non-error
 * outcome and counts as 2xx.
 */
export function statusClass(statusCode: number): StatusClass {
  if (statusCode >= 500) return '5xx';
  if (statusCode >= 400) return '4xx';
  return '2xx';
}

/** Records one finished request; `endpoint` is the route template or UNMATCHED_ENDPOINT. */
export function recordRequest(metrics: Metrics, endpoint: string, statusCode: number, seconds: number): void {
  const e = boundOf(metrics).endpoint(endpoint);
  e.requests.inc();
  e.duration.observe(seconds);
  e.summary[statusClass(statusCode)].observe(seconds);
}

/**
 * What an app reports finished requests to: the request metrics per endpoint and per caller, with
 * the callers named in the metrics (config client_metrics) read per request, so a reload applies.
 */
export function requestObserver(metrics: Metrics, clients: () => readonly string[], onDone?: () => void): RequestObserver {
  return {
    requestDone(endpoint, statusCode, seconds, caller) {
      recordRequest(metrics, endpoint, statusCode, seconds);
      recordClientRequest(metrics, clients(), caller, statusClass(statusCode), seconds);
      onDone?.();
    },
    requestFailed: (code, caller) => recordRefusal(metrics, clients(), code, caller),
  };
}

export function recordConfigReload(metrics: Metrics, ok: boolean): void {
  metrics.configReloadsTotal.inc({ result: ok ? 'success' : 'error' });
}

/**
 * Creates every bounded series at zero, so rate() and alerts see them before the first event.
 * UNMATCHED_ENDPOINT is always included, and so are the callers `anonymous` and `other`.
 */
export function initChildren(metrics: Metrics, endpoints: string[], resourceIds: string[], clients: readonly string[] = []): void {
  const m = metrics;
  initClientChildren(m, clients);
  for (const endpoint of new Set([...endpoints, UNMATCHED_ENDPOINT])) {
    m.requestsTotal.inc({ endpoint }, 0);
    m.requestDuration.zero({ endpoint });
    for (const sc of STATUS_CLASSES) m.requestDurationSummary.zero({ endpoint, status_code: sc });
  }
  for (const rid of resourceIds) {
    const r = { resource_id: rid };
    for (const c of [m.resourceRequestsTotal, m.createdConnectionsTotal, m.closedConnectionsTotal, m.poolEmptyTotal, m.poolExhaustedTotal, m.connAcquireErrorsTotal, m.queriesTotal, m.streamStallsTotal, m.sqliteInlineOverrunsTotal]) {
      c.inc(r, 0);
    }
    for (const h of [m.requestSlotAcquireDuration, m.acquireConnectionDuration, m.connectionUsageDuration, m.queryDuration, m.queryRows]) h.zero(r);
    // 0 = "never" for last-time gauges; live gauges are overwritten from stats() on each scrape.
    for (const g of [m.lastRequestTime, m.lastResponseTime, m.lastConnCreatedTime, m.lastConnCreatedErrorTime, m.pendingRequests, m.inProgressRequests, m.openConnections, m.pooledConnections, m.breakerState, m.maxActiveRequests, m.maxConnections]) {
      g.set(r, 0);
    }
    for (const t of SLOT_ERROR_TYPES) m.requestSlotErrorsTotal.inc({ resource_id: rid, error_type: t }, 0);
    for (const t of CONN_ERROR_TYPES) m.connCreationErrorsTotal.inc({ resource_id: rid, error_type: t }, 0);
    for (const t of QUERY_ERROR_TYPES) m.queryErrorsTotal.inc({ resource_id: rid, error_type: t }, 0);
    for (const reason of RETRY_REASONS) m.queryRetriesTotal.inc({ resource_id: rid, reason }, 0);
    m.globalLeases.set(r, 0);
    m.globalLimitFallback.set(r, 0);
    m.globalLeaseWait.zero(r);
    for (const t of GLOBAL_LEASE_ERROR_TYPES) m.globalLeaseErrorsTotal.inc({ resource_id: rid, error_type: t }, 0);
  }
  for (const result of RELOAD_RESULTS) m.configReloadsTotal.inc({ result }, 0);
}

/** What the response cache reports, as the cache's observer (src/cache/response-cache.ts); the endpoint label of each call is a cached endpoint's route template. */
export function bindCacheMetrics(metrics: Metrics, cache: { observer: CacheObserver; readonly bytes: ReadonlyMap<string, number> }): () => void {
  const m = metrics;
  const series = labelCache((endpoint: string) => {
    const labels = endpointLabels(endpoint);
    return { hits: m.cacheHitsTotal.bind(labels), misses: m.cacheMissesTotal.bind(labels), evictions: m.cacheEvictionsTotal.bind(labels) };
  });
  cache.observer = {
    hit: (endpoint) => series(endpoint).hits.inc(),
    miss: (endpoint) => series(endpoint).misses.inc(),
    evict: (endpoint) => series(endpoint).evictions.inc(),
    redisError: () => m.cacheRedisErrorsTotal.inc({}),
  };
  m.cacheSource.bytes = () => cache.bytes;
  return () => {
    m.cacheSource.bytes = undefined;
  };
}

/** Zero series of the cache metrics for the cached endpoints, so they are there before the first request. */
export function initCacheChildren(metrics: Metrics, endpoints: readonly string[]): void {
  for (const endpoint of endpoints) {
    const labels = endpointLabels(endpoint);
    metrics.cacheHitsTotal.inc(labels, 0);
    metrics.cacheMissesTotal.inc(labels, 0);
    metrics.cacheEvictionsTotal.inc(labels, 0);
    metrics.cacheBytes.set(labels, 0);
  }
  metrics.cacheRedisErrorsTotal.inc({}, 0);
}

/** What the drivers report, counted per resource (see ConnectorHooks). */
export function connectorHooks(metrics: Metrics, resourceId: string): ConnectorHooks {
  const r = { resource_id: resourceId };
  return { sqliteInlineOverrun: () => metrics.sqliteInlineOverrunsTotal.inc(r) };
}

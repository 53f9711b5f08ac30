/**
 * The metric catalogue: every wt_* metric, defined here and nowhere else. Names, types, label
 * names and buckets follow the original WatchTower, so its dashboards and alerts keep working.
 *
 * Instance-based (one Registry per createMetrics call, never prom-client's global one), so tests
 * and benchmarks can build several apps in one process.
 *
 * `aggregator` says how cluster mode merges a metric over workers: counters, histograms and
 * live levels sum; "last time" gauges take the most recent (max); pid-labelled gauges keep each
 * pid's own series (pids never collide, so 'first' just passes each one through).
 */
import { Gauge, Registry } from 'prom-client';
import { FastCounter as Counter, FastGauge, FastHistogram as Histogram, SumCountSummary } from './collectors.js';

/** Live levels of one resource, read at scrape time (ResourceManager.stats). */
export interface LiveStats {
  active: number;
  pending: number;
  open: number;
  pooled: number;
  inUse: number;
  /** Circuit breaker state: 0 closed, 1 open, 2 half-open. */
  breaker: number;
  /** Configured request slots (max_active_requests, or db_max_conn_pool_size when empty), as read now. */
  maxActive: number;
  /** Configured db_max_conn_pool_size, as read now. */
  maxConnections: number;
}

/** A resource's global limit in this process (ResourceManager.globalStats); undefined when none is configured. */
export interface GlobalLiveStats {
  leases: number;
  fallback: boolean;
}

/** Where the live gauges read from; set by bindResourceMetrics. */
export interface LiveSource {
  stats?: (rid: string) => LiveStats;
  global?: (rid: string) => GlobalLiveStats | undefined;
  resourceIds: readonly string[];
}

type R = 'resource_id';
type RE = 'resource_id' | 'error_type';

export interface Metrics {
  readonly registry: Registry;
  readonly live: LiveSource;
  // Requests
  readonly requestsTotal: Counter<'endpoint'>;
  readonly requestDuration: Histogram<'endpoint'>;
  readonly requestDurationSummary: SumCountSummary<'endpoint' | 'status_code'>;
  // Request slots
  readonly pendingRequests: Gauge<R>;
  readonly inProgressRequests: Gauge<R>;
  readonly lastRequestTime: FastGauge<R>;
  readonly lastResponseTime: FastGauge<R>;
  readonly resourceRequestsTotal: Counter<R>;
  readonly requestSlotErrorsTotal: Counter<RE>;
  readonly requestSlotAcquireDuration: Histogram<R>;
  // Pools and connections
  readonly createdConnectionsTotal: Counter<R>;
  readonly closedConnectionsTotal: Counter<R>;
  readonly poolEmptyTotal: Counter<R>;
  readonly poolExhaustedTotal: Counter<R>;
  readonly connAcquireErrorsTotal: Counter<R>;
  readonly connCreationErrorsTotal: Counter<RE>;
  readonly openConnections: Gauge<R>;
  readonly pooledConnections: Gauge<R>;
  readonly lastConnCreatedTime: FastGauge<R>;
  readonly lastConnCreatedErrorTime: FastGauge<R>;
  readonly acquireConnectionDuration: Histogram<R>;
  readonly connectionUsageDuration: Histogram<R>;
  readonly breakerState: Gauge<R>;
  readonly maxActiveRequests: Gauge<R>;
  readonly maxConnections: Gauge<R>;
  // Queries
  readonly queriesTotal: Counter<R>;
  readonly queryErrorsTotal: Counter<RE>;
  readonly queryDuration: Histogram<R>;
  readonly queryRows: Histogram<R>;
  readonly streamStallsTotal: Counter<R>;
  readonly sqliteInlineOverrunsTotal: Counter<R>;
  readonly queryRetriesTotal: Counter<'resource_id' | 'reason'>;
  // Limits shared by every replica (max_active_requests_global)
  readonly globalLeases: Gauge<R>;
  readonly globalLimitFallback: Gauge<R>;
  readonly globalLeaseWait: Histogram<R>;
  readonly globalLeaseErrorsTotal: Counter<RE>;
  // Process (label pid)
  readonly cpuUsage: Gauge<'pid'>;
  readonly memRssBytes: Gauge<'pid'>;
  readonly memVmsBytes: Gauge<'pid'>;
  readonly memSharedBytes: Gauge<'pid'>;
  readonly memPercent: Gauge<'pid'>;
  readonly openFds: Gauge<'pid'>;
  readonly ioReadBytesTotal: Counter<'pid'>;
  readonly ioWriteBytesTotal: Counter<'pid'>;
  // Operations
  readonly configReloadsTotal: Counter<'result'>;
  // Callers (new; client_id: a principal listed in client_metrics, `anonymous` or `other`)
  readonly clientRequestsTotal: Counter<'client_id' | 'status_code'>;
  readonly clientRequestDuration: Histogram<'client_id'>;
  readonly authFailuresTotal: Counter<'client_id' | 'reason'>;
  readonly rateLimitedTotal: Counter<'client_id'>;
  // Response cache of declared endpoints (endpoint: a cached endpoint's route template)
  readonly cacheSource: CacheSource;
  readonly cacheHitsTotal: Counter<'endpoint'>;
  readonly cacheMissesTotal: Counter<'endpoint'>;
  readonly cacheEvictionsTotal: Counter<'endpoint'>;
  readonly cacheBytes: Gauge<'endpoint'>;
  readonly cacheRedisErrorsTotal: Counter<never>;
}

/** Where wt_cache_bytes reads from at scrape time; set by bindCacheMetrics. */
export interface CacheSource {
  bytes?: () => ReadonlyMap<string, number>;
}

export const REQUEST_DURATION_BUCKETS = [0.001, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60];
export const SLOT_ACQUIRE_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 20];
export const CONN_ACQUIRE_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
export const CONN_USAGE_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 20];
export const QUERY_DURATION_BUCKETS = [0.001, 0.05, 0.1, 0.5, 1, 5, 10, 20];
export const QUERY_ROWS_BUCKETS = [1, 10, 100, 500, 1000, 5000, 10000, 100000];
/**
 * Finer than the original's request buckets (nothing between 1 and 50 ms), which would put the
 * p50/p95/p99 of a client's fast requests all at an interpolated guess. New metric, free to choose.
 */
export const CLIENT_REQUEST_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const R_LABELS = ['resource_id'] as const;
const RE_LABELS = ['resource_id', 'error_type'] as const;
const PID = ['pid'] as const;

export function createMetrics(registry: Registry = new Registry()): Metrics {
  const registers = [registry];
  const live: LiveSource = { resourceIds: [] };
  const cacheSource: CacheSource = {};

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter<L>(name, help, labelNames, registry);
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>(name, help, labelNames, buckets, registry);
  const lastTime = (name: string, help: string) => new FastGauge<R>(name, help, R_LABELS, 'max', registry);
  const perPid = (name: string, help: string) => new Gauge<'pid'>({ name, help, labelNames: PID, registers, aggregator: 'first' });
  /** A live level: set from the stats source on every scrape, summed over workers (or as `aggregator` says). */
  const liveGauge = (name: string, help: string, pick: (s: LiveStats) => number, aggregator: 'sum' | 'max' = 'sum') =>
    new Gauge<R>({
      name,
      help,
      labelNames: R_LABELS,
      registers,
      aggregator,
      collect() {
        const stats = live.stats;
        if (stats === undefined) return;
        for (const rid of live.resourceIds) this.set({ resource_id: rid }, pick(stats(rid)));
      },
    });

  /** A resource's global limit in this process, set from its stats on every scrape (0 without one), summed over workers. */
  const globalGauge = (name: string, help: string, pick: (g: GlobalLiveStats) => number) =>
    new Gauge<R>({
      name,
      help,
      labelNames: R_LABELS,
      registers,
      aggregator: 'sum',
      collect() {
        const global = live.global;
        if (global === undefined) return;
        for (const rid of live.resourceIds) {
          const g = global(rid);
          this.set({ resource_id: rid }, g === undefined ? 0 : pick(g));
        }
      },
    });

  return {
    registry,
    live,
    requestsTotal: counter('wt_requests_total', 'Requests per endpoint (route template).', ['endpoint']),
    requestDuration: histogram('wt_request_duration_seconds', 'Request durations per endpoint, failures included.', ['endpoint'], REQUEST_DURATION_BUCKETS),
    requestDurationSummary: new SumCountSummary(
      'wt_request_duration_summary_seconds',
      'Request durations per endpoint and status class (2xx, 4xx, 5xx); sum and count only.',
      ['endpoint', 'status_code'],
      registry,
    ),

    pendingRequests: liveGauge('wt_pending_requests', 'Requests waiting for a request slot, per resource.', (s) => s.pending),
    inProgressRequests: liveGauge('wt_in_progress_requests', 'Requests holding a request slot, per resource.', (s) => s.active),
    lastRequestTime: lastTime('wt_last_request_time_seconds', 'Unix time of the last request for a resource.'),
    lastResponseTime: lastTime('wt_last_response_time_seconds', 'Unix time of the last response of a resource (slot released).'),
    resourceRequestsTotal: counter('wt_resource_requests_total', 'Requests that asked for a slot, per resource.', R_LABELS),
    requestSlotErrorsTotal: counter('wt_request_slot_errors_total', 'Requests refused a slot, per resource and error type (overload, timeout).', RE_LABELS),
    requestSlotAcquireDuration: histogram('wt_request_slot_acquire_duration_seconds', 'Time to get a request slot, failures included.', R_LABELS, SLOT_ACQUIRE_BUCKETS),

    createdConnectionsTotal: counter('wt_created_connections_total', 'Database connections opened, per resource.', R_LABELS),
    closedConnectionsTotal: counter('wt_closed_connections_total', 'Database connections closed, per resource.', R_LABELS),
    poolEmptyTotal: counter('wt_pool_empty_total', 'Acquires that found no idle connection in the pool.', R_LABELS),
    poolExhaustedTotal: counter('wt_pool_exhausted_total', 'Acquires that found every connection up to the maximum in use.', R_LABELS),
    connAcquireErrorsTotal: counter('wt_conn_acquire_errors_total', 'Requests that could not get a pooled connection, per resource.', R_LABELS),
    connCreationErrorsTotal: counter('wt_conn_creation_errors_total', 'Failed connection opens, per resource and error type (timeout, other).', RE_LABELS),
    openConnections: liveGauge('wt_open_connections', 'Open database connections (pooled and in use), per resource.', (s) => s.open),
    pooledConnections: liveGauge('wt_pooled_connections', 'Idle connections in the pool, per resource.', (s) => s.pooled),
    lastConnCreatedTime: lastTime('wt_last_conn_created_time_seconds', 'Unix time a connection was last opened, per resource.'),
    lastConnCreatedErrorTime: lastTime('wt_last_conn_created_error_time_seconds', 'Unix time a connection open last failed, per resource.'),
    acquireConnectionDuration: histogram('wt_acquire_connection_duration_seconds', 'Time to get a pooled connection.', R_LABELS, CONN_ACQUIRE_BUCKETS),
    connectionUsageDuration: histogram('wt_connection_usage_duration_seconds', 'Time a request held its connection.', R_LABELS, CONN_USAGE_BUCKETS),
    // Each worker has its own breaker; the cluster shows the highest state, so any worker not closed is seen.
    breakerState: liveGauge(
      'wt_breaker_state',
      'Circuit breaker of the resource: 0 closed, 1 open (requests refused with 503), 2 half-open (a probe connection under way; still refused). Highest over workers.',
      (s) => s.breaker,
      'max',
    ),
    // Configured maxima, read from the live settings at scrape time so a reload shows at once. Each
    // worker applies them to itself (its own limiter and pool), so the cluster's capacity is their sum.
    maxActiveRequests: liveGauge(
      'wt_max_active_requests',
      'Request slots configured for the resource (max_active_requests, or db_max_conn_pool_size when empty); each worker has its own, so summed over workers.',
      (s) => s.maxActive,
    ),
    maxConnections: liveGauge(
      'wt_max_connections',
      'Most database connections the resource\'s pool may open (db_max_conn_pool_size); each worker has its own pool, so summed over workers.',
      (s) => s.maxConnections,
    ),

    queriesTotal: counter('wt_queries_total', 'Queries run, per resource.', R_LABELS),
    queryErrorsTotal: counter('wt_query_errors_total', 'Failed queries, per resource and error type (timeout; constraint: a duplicate key or other violation, the client\'s mistake; other).', RE_LABELS),
    queryDuration: histogram('wt_query_duration_seconds', 'Query durations, failures included.', R_LABELS, QUERY_DURATION_BUCKETS),
    sqliteInlineOverrunsTotal: counter(
      'wt_sqlite_inline_overruns_total',
      'SQLite reads stopped on the event loop at sqlite_inline_read_ms and run again in their connection\'s worker thread, per resource.',
      R_LABELS,
    ),
    streamStallsTotal: counter('wt_stream_stalls_total', 'Streamed responses ended because the client read nothing for stream_stall_timeout, per resource.', R_LABELS),
    queryRetriesTotal: counter(
      'wt_query_retries_total',
      'Statements run again, per resource and reason: connection (a read that lost its connection, once, on a fresh one), serialization, deadlock, lock-timeout (a transaction the database rolled back, up to tx_retries).',
      ['resource_id', 'reason'],
    ),
    queryRows: histogram('wt_query_rows', 'Rows returned per query (streamed results not observed).', R_LABELS, QUERY_ROWS_BUCKETS),

    cpuUsage: perPid('wt_cpu_usage', 'CPU usage of the process, percent of one core.'),
    memRssBytes: perPid('wt_mem_rss_bytes', 'Resident set size of the process.'),
    memVmsBytes: perPid('wt_mem_vms_bytes', 'Virtual memory size of the process.'),
    memSharedBytes: perPid('wt_mem_shared_bytes', 'Shared memory (file-backed and shmem resident pages) of the process.'),
    memPercent: perPid('wt_mem_percent', 'Resident set size as percent of total memory.'),
    openFds: perPid('wt_open_fds', 'Open file descriptors of the process.'),
    ioReadBytesTotal: counter('wt_io_read_bytes_total', 'Bytes the process read through system calls (files, sockets, pipes; rchar).', PID),
    ioWriteBytesTotal: counter('wt_io_write_bytes_total', 'Bytes the process wrote through system calls (files, sockets, pipes; wchar).', PID),

    globalLeases: globalGauge('wt_global_leases', 'Leases of max_active_requests_global this process holds (in Redis, or counted locally while Redis is unreachable; spares kept for its next request included), per resource; summed over workers.', (g) => g.leases),
    globalLimitFallback: globalGauge(
      'wt_global_limit_fallback',
      'Processes (1 for a single process; workers in cluster mode) admitting at most global_local_share of the resource because the Redis of global_limits_redis is unreachable.',
      (g) => (g.fallback ? 1 : 0),
    ),
    globalLeaseWait: histogram('wt_global_lease_wait_seconds', 'Time a request with a slot waited for its lease of max_active_requests_global, failures included.', R_LABELS, SLOT_ACQUIRE_BUCKETS),
    globalLeaseErrorsTotal: counter(
      'wt_global_lease_errors_total',
      'Global lease errors, per resource and error type (timeout: waited past request_slot_timeout, 504; lost: a running request\'s lease was gone from Redis and written in again; redis: a Redis command failed).',
      RE_LABELS,
    ),

    configReloadsTotal: counter('wt_config_reloads_total', 'Config reloads by result (success, error).', ['result']),

    clientRequestsTotal: counter(
      'wt_client_requests_total',
      'Requests per caller (client_id: a principal listed in client_metrics, anonymous or other) and status class (2xx, 4xx, 5xx).',
      ['client_id', 'status_code'],
    ),
    clientRequestDuration: histogram(
      'wt_client_request_duration_seconds',
      'Request durations per caller (client_id as in wt_client_requests_total), failures included.',
      ['client_id'],
      CLIENT_REQUEST_DURATION_BUCKETS,
    ),
    authFailuresTotal: counter(
      'wt_auth_failures_total',
      'Requests refused by authentication (reason unauthenticated: 401) or authorization (forbidden: 403), per caller.',
      ['client_id', 'reason'],
    ),
    rateLimitedTotal: counter('wt_rate_limited_total', 'Requests refused by a per-client rate limit (429; not a full resource queue, see wt_request_slot_errors_total), per caller.', ['client_id']),

    cacheSource,
    cacheHitsTotal: counter('wt_cache_hits_total', 'Requests of a cached endpoint answered from the response cache (stored, or shared by the request running the same query), per endpoint.', ['endpoint']),
    cacheMissesTotal: counter('wt_cache_misses_total', 'Requests of a cached endpoint that ran their query, per endpoint.', ['endpoint']),
    cacheEvictionsTotal: counter('wt_cache_evictions_total', 'Entries pushed out of the memory store by cache_max_bytes before their ttl, per endpoint.', ['endpoint']),
    cacheBytes: new Gauge<'endpoint'>({
      name: 'wt_cache_bytes',
      help: 'Bytes the response cache holds in this process\'s memory (bodies, keys and per-entry overhead), per endpoint; summed over workers.',
      labelNames: ['endpoint'],
      registers,
      aggregator: 'sum',
      collect() {
        const bytes = cacheSource.bytes?.();
        if (bytes === undefined) return;
        for (const [endpoint, n] of bytes) this.set({ endpoint }, n);
      },
    }),
    cacheRedisErrorsTotal: counter('wt_cache_redis_errors_total', 'Response-cache commands to the Redis of cache_redis that failed or timed out (the request then used this process\'s memory).', []),
  };
}

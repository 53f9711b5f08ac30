/**
 * Config schemas (convict). Every key has a doc, a default, a format and `reloadable`: whether a
 * SIGUSR1 reload may change it. Keys keep the original WatchTower's names.
 *
 * Three schemas because resource ids are user-chosen map keys, which convict cannot express:
 * the global schema, one per-resource schema applied to each `resources.<rid>` section, and one
 * per-resource secure schema applied to each `secure.<rid>` section.
 */
import convict from 'convict';
import type { AuthSettings } from '../auth/settings.js';
import { checkAllowList } from '../metrics/allow-list.js';
import { checkClientList } from '../metrics/clients.js';
import { checkRateLimitList, type RateLimitRule } from '../limits/rate-limit-rules.js';
import { addressListFormat } from '../net/address-list.js';

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL'] as const;
export const QUERY_LOG_TYPES = ['none', 'stats', 'stats_with_query', 'stats_with_results', 'all'] as const;
export const DB_TYPES = ['sqlite', 'postgres', 'mysql', 'odbc'] as const;

export type LogLevelName = (typeof LOG_LEVELS)[number];
export type QueryLogType = (typeof QUERY_LOG_TYPES)[number];
export type DbType = (typeof DB_TYPES)[number];
export const SQLITE_WORKERS = ['auto', 'threads', 'processes'] as const;
/** What a SQLite resource's connections run in (see src/db/sqlite.ts). */
export type SqliteWorkers = (typeof SQLITE_WORKERS)[number];

/** Schema node with our extra `reloadable` flag (convict keeps unknown properties). */
type Node<T> = convict.SchemaObj<T> & { reloadable: boolean };

function positiveNumber(name: string) {
  return (v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number of seconds`);
  };
}
/** A YAML true or false; convict's Boolean format would read any text but "false" as true. */
function strictBoolean(v: unknown): void {
  if (typeof v !== 'boolean') throw new Error('must be true or false');
}
function nonNegativeInt(v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error('must be a whole number >= 0');
}
function positiveInt(v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error('must be a whole number >= 1');
}
/** Accepts a YAML list, or the original's space-separated string. */
function stringList(v: unknown): void {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new Error('must be a list of non-empty strings');
  }
}
/** Resource ids, and the form of every config key: a name in a log record never echoes other text. */
export const RESOURCE_ID = /^[a-z][a-z0-9_]{0,62}$/;

export interface GlobalSettings {
  host: string;
  port: number;
  workers: number;
  max_requests: number;
  max_requests_jitter: number;
  shutdown_timeout: number;
  log_level: LogLevelName;
  cid_len: number;
  queries_log_type: QueryLogType;
  special_queries_log_type: QueryLogType;
  special_queries_routes_patterns: string[];
  query_results_log_max_len: number;
  log_request_slot_durations: boolean;
  log_db_conn_durations: boolean;
  resource_ids: string[];
  pool_check_interval: number;
  process_metrics_interval: number;
  metrics_allow: string[];
  client_metrics: string[];
  allow: string[];
  deny: string[];
  trust_proxy: string[];
  rate_limit: RateLimitRule[];
  rate_limit_redis: string;
  rate_limit_timeout: number;
  global_limits_redis: string;
  docs_enabled: boolean;
  http_headers_timeout: number;
  http_request_timeout: number;
  http_keep_alive_timeout: number;
  http_idle_timeout: number;
  pid_file: string;
  endpoints: string[];
  cache_max_bytes: number;
  cache_max_entry_bytes: number;
  cache_redis: string;
  cache_redis_prefix: string;
  cache_redis_timeout: number;
  cache_clear_on_reload: boolean;
  server_timing: boolean;
  otel_traces: boolean;
  otel_exporter_otlp_endpoint: string;
  otel_service_name: string;
}

export const globalSchema: { [K in keyof GlobalSettings]: Node<GlobalSettings[K]> } = {
  host: { doc: 'Address to listen on.', format: String, default: '0.0.0.0', env: 'HOST', reloadable: false },
  port: { doc: 'TCP port to listen on.', format: 'port', default: 8000, env: 'PORT', reloadable: false },
  workers: {
    doc: 'Worker processes: 1 runs a single process; N > 1 runs a cluster primary with N workers sharing the port.',
    format: positiveInt,
    default: 1,
    env: 'WT_WORKERS',
    reloadable: false,
  },
  max_requests: {
    doc: 'In cluster mode, recycle a worker after this many requests (0 = never).',
    format: nonNegativeInt,
    default: 0,
    reloadable: false,
  },
  max_requests_jitter: {
    doc: 'Random 0..N added to max_requests per worker so workers do not recycle together.',
    format: nonNegativeInt,
    default: 0,
    reloadable: false,
  },
  shutdown_timeout: {
    doc: 'Seconds in-flight requests get to finish on SIGTERM/SIGINT before the rest are answered 503.',
    format: positiveNumber('shutdown_timeout'),
    default: 30,
    reloadable: true,
  },
  log_level: { doc: 'Least severe level written.', format: [...LOG_LEVELS], default: 'INFO', env: 'LOG_LEVEL', reloadable: true },
  cid_len: {
    doc: 'Length of generated correlation ids (random hex characters).',
    format: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 4 || v > 32) throw new Error('must be a whole number from 4 to 32');
    },
    default: 12,
    reloadable: true,
  },
  queries_log_type: {
    doc: 'What the query-stats record holds: none | stats | stats_with_query | stats_with_results | all.',
    format: [...QUERY_LOG_TYPES],
    default: 'stats',
    reloadable: true,
  },
  special_queries_log_type: {
    doc: 'queries_log_type for routes whose path contains one of special_queries_routes_patterns.',
    format: [...QUERY_LOG_TYPES],
    default: 'stats_with_query',
    reloadable: true,
  },
  special_queries_routes_patterns: {
    doc: 'Substrings of route paths that use special_queries_log_type (a list, or a space-separated string).',
    format: stringList,
    default: [],
    reloadable: true,
  },
  query_results_log_max_len: {
    doc: 'Results logged with stats_with_results/all are cut to this many characters.',
    format: positiveInt,
    default: 500,
    reloadable: true,
  },
  log_request_slot_durations: {
    doc: 'Write <rid>_request_slot_duration in the acquisition-stats record.',
    format: strictBoolean,
    default: false,
    reloadable: true,
  },
  log_db_conn_durations: {
    doc: 'Write <rid>_db_connection_duration in the acquisition-stats record.',
    format: strictBoolean,
    default: false,
    reloadable: true,
  },
  resource_ids: {
    doc: 'Enabled database resources; each needs a secure.<rid> section. Routes of other resources answer 404. Env `WT_RESOURCE_IDS` (comma-separated) replaces the list.',
    format: (v: unknown) => {
      stringList(v);
      // By position, not by value: an error record never echoes what the file holds.
      (v as string[]).forEach((rid, i) => {
        if (!RESOURCE_ID.test(rid)) throw new Error(`resource_ids[${i}] must match ${RESOURCE_ID}`);
      });
    },
    default: ['sqlite_traffic'],
    reloadable: false,
  },
  pool_check_interval: {
    doc: 'Seconds between pool checks (top up to the minimum, retire old connections, ping idle ones).',
    format: positiveNumber('pool_check_interval'),
    default: 5,
    reloadable: true,
  },
  process_metrics_interval: {
    doc: 'Seconds between refreshes of the process metrics (CPU, memory, fds, I/O).',
    format: positiveNumber('process_metrics_interval'),
    default: 15,
    reloadable: true,
  },
  metrics_allow: {
    doc: 'Clients allowed to read /metrics: IP addresses and CIDR blocks, IPv4 or IPv6 (empty = everyone). Basic auth: env WT_METRICS_USER / WT_METRICS_PASSWORD.',
    format: checkAllowList,
    default: [],
    reloadable: true,
  },
  client_metrics: {
    doc: 'Callers (API key ids, JWT subjects) counted under their own client_id in the per-client metrics; every other caller counts as other, requests without one as anonymous. Bounds the series: list the principals worth a panel.',
    format: checkClientList,
    default: [],
    reloadable: true,
  },
  allow: {
    doc: 'Only these client addresses and CIDR blocks (IPv4 or IPv6) may call the gateway, every path included (empty = everyone); an endpoint\'s own `allow` narrows it further. Refused: 403 and an access-denied record.',
    format: addressListFormat('allow'),
    default: [],
    reloadable: true,
  },
  deny: {
    doc: 'These client addresses and CIDR blocks may not call the gateway, every path included; wins over any allow list. An endpoint\'s own `deny` adds to it.',
    format: addressListFormat('deny'),
    default: [],
    reloadable: true,
  },
  trust_proxy: {
    doc: 'Addresses and CIDR blocks of reverse proxies whose X-Forwarded-For is believed (empty = none: the client is the connection\'s peer and the header is ignored). The client is the first address, from the right, that is not a trusted proxy.',
    format: addressListFormat('trust_proxy'),
    default: [],
    reloadable: true,
  },
  rate_limit: {
    doc: 'Rate limits counted over every route but /metrics, /docs and /health: a list of rules {by: address|caller|role, requests, interval, burst, burst_interval, roles}. Over a limit: 429 with Retry-After and RateLimit headers.',
    format: checkRateLimitList,
    default: [],
    reloadable: true,
  },
  rate_limit_redis: {
    doc: 'Redis URL (redis://[user:password@]host:port/db) where rate-limit counters are kept, shared by every process and gateway using it; empty = in memory (a cluster\'s workers share the primary\'s). Env WT_RATE_LIMIT_REDIS.',
    format: String,
    default: '',
    env: 'WT_RATE_LIMIT_REDIS',
    sensitive: true,
    reloadable: false,
  },
  rate_limit_timeout: {
    doc: 'Seconds a rate-limit count waits for Redis or the cluster primary; past that (or when it fails) the request is counted in this process\'s memory instead.',
    format: positiveNumber('rate_limit_timeout'),
    default: 0.5,
    reloadable: true,
  },
  global_limits_redis: {
    doc: 'Redis URL (redis://[user:password@]host:port/db) through which every gateway process using it shares the resources\' max_active_requests_global; empty = no global limits. Env WT_GLOBAL_LIMITS_REDIS.',
    format: String,
    default: '',
    env: 'WT_GLOBAL_LIMITS_REDIS',
    sensitive: true,
    reloadable: false,
  },
  docs_enabled: { doc: 'Serve Swagger UI at /docs and the OpenAPI document at /docs/json.', format: strictBoolean, default: true, reloadable: false },
  http_headers_timeout: {
    doc: 'Seconds a client has to send a request\'s headers; past that the connection is closed (408). Stops clients that open connections and send nothing.',
    format: positiveNumber('http_headers_timeout'),
    default: 10,
    reloadable: false,
  },
  http_request_timeout: {
    doc: 'Seconds a client has to send a whole request, headers and body (a body trickled a byte at a time is cut off with 408). Not the time to answer it.',
    format: positiveNumber('http_request_timeout'),
    default: 30,
    reloadable: false,
  },
  http_keep_alive_timeout: {
    doc: 'Seconds an idle keep-alive connection stays open between requests (longer than a load balancer\'s idle timeout, so it closes first).',
    format: positiveNumber('http_keep_alive_timeout'),
    default: 72,
    reloadable: false,
  },
  http_idle_timeout: {
    doc: 'Seconds a connection may pass with no byte read or written, answer included, before it is closed (0 = off: query timeouts and stream_stall_timeout bound answers; set above the longest query timeout).',
    format: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error('http_idle_timeout must be a number of seconds >= 0');
    },
    default: 0,
    reloadable: false,
  },
  pid_file: {
    doc: 'File the process that receives signals writes its pid to once it listens (removed at exit; relative to the working directory; empty = none).',
    format: String,
    default: 'data/watchtower.pid',
    env: 'WT_PID_FILE',
    reloadable: false,
  },
  endpoints: {
    doc: 'Endpoint files served besides the built-in routes: paths relative to the working directory, `*` and `?` allowed in the file name (see "Serve your own database"). Checked at start-up: any problem stops it.',
    format: stringList,
    default: [],
    reloadable: false,
  },
  cache_max_bytes: {
    doc: 'Bytes of answers the response cache of declared endpoints (their `cache` key) keeps in this process\'s memory, keys included; the least recently used entries go first.',
    format: positiveInt,
    default: 67_108_864,
    reloadable: false,
  },
  cache_max_entry_bytes: {
    doc: 'Largest answer the response cache keeps, in bytes (a larger one is sent and not kept; a `stream` endpoint\'s answer is kept only when it ends within this size).',
    format: positiveInt,
    default: 1_048_576,
    reloadable: true,
  },
  cache_redis: {
    doc: 'Redis URL (redis://[user:password@]host:port/db) where the response cache keeps its entries, shared by every gateway process using it; empty = this process\'s memory. Env WT_CACHE_REDIS.',
    format: String,
    default: '',
    env: 'WT_CACHE_REDIS',
    sensitive: true,
    reloadable: false,
  },
  cache_redis_prefix: {
    doc: 'Prefix of the response cache\'s Redis keys: gateways sharing a prefix share entries and invalidations.',
    format: (v: unknown) => {
      if (typeof v !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) throw new Error('must be 1 to 64 letters, digits or _ . : -');
    },
    default: 'wt-cache:',
    reloadable: false,
  },
  cache_redis_timeout: {
    doc: 'Seconds a response-cache command waits for Redis; past that (or when it fails) the request is served from, and kept in, this process\'s memory instead.',
    format: positiveNumber('cache_redis_timeout'),
    default: 0.25,
    reloadable: false,
  },
  cache_clear_on_reload: {
    doc: 'A config reload (SIGUSR1, SIGHUP) empties the response cache (with cache_redis: every entry of the endpoints this process serves, for every process sharing it).',
    format: strictBoolean,
    default: false,
    reloadable: true,
  },
  server_timing: {
    doc: 'Responses of routes that use a database carry Server-Timing: the waits for request slots (slot) and connections (conn) and the statements\' time (query; for a stream, to its first row), in milliseconds.',
    format: strictBoolean,
    default: true,
    reloadable: true,
  },
  otel_traces: {
    doc: 'Export OpenTelemetry traces over OTLP/HTTP: a span per request, per resource acquisition and per statement (off: the tracing packages are not even loaded).',
    format: strictBoolean,
    default: false,
    reloadable: false,
  },
  otel_exporter_otlp_endpoint: {
    doc: 'Base URL of the OTLP/HTTP receiver (a collector); spans are posted to <url>/v1/traces.',
    format: (v: unknown) => {
      let url: URL | undefined;
      try {
        url = new URL(String(v));
      } catch {
        url = undefined;
      }
      if (typeof v !== 'string' || url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error('must be an http:// or https:// URL');
    },
    default: 'http://127.0.0.1:4318',
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    reloadable: false,
  },
  otel_service_name: {
    doc: 'service.name of the exported spans.',
    format: (v: unknown) => {
      if (typeof v !== 'string' || v.trim() === '') throw new Error('must be a non-empty string');
    },
    default: 'watchtower',
    env: 'OTEL_SERVICE_NAME',
    reloadable: false,
  },
};

export interface ResourceSettings {
  db_min_conn_pool_size: number;
  db_max_conn_pool_size: number;
  max_pending_requests: number;
  /** null = same as db_max_conn_pool_size. */
  max_active_requests: number | null;
  request_slot_timeout: number;
  /** 0 = no limit shared with other processes. */
  max_active_requests_global: number;
  global_lease_seconds: number;
  global_local_share: number;
  db_conn_max_uses: number;
  db_conn_max_age: number;
  db_conn_timeout: number;
  db_conn_retry_wait_period: number;
  db_conn_pool_acquire_timeout: number;
  db_default_query_timeout: number;
  db_conn_idle_check_after: number;
  stream_stall_timeout: number;
  breaker_failures: number;
  breaker_probe_interval: number;
  tx_retries: number;
  sql_comment: boolean;
}

export const resourceSchema: { [K in keyof ResourceSettings]: Node<ResourceSettings[K]> } = {
  db_min_conn_pool_size: { doc: 'Connections kept open even when idle.', format: nonNegativeInt, default: 2, reloadable: true },
  db_max_conn_pool_size: { doc: 'Most connections open at once.', format: positiveInt, default: 10, reloadable: true },
  max_pending_requests: {
    doc: 'Requests that may wait for a slot; one more gets 429 at once.',
    format: nonNegativeInt,
    default: 100,
    reloadable: true,
  },
  max_active_requests: {
    doc: 'Requests that may hold a slot at once (<= db_max_conn_pool_size; empty = equal to it).',
    format: positiveInt,
    default: null,
    nullable: true,
    reloadable: true,
  },
  request_slot_timeout: { doc: 'Seconds a request waits for a slot before 504.', format: positiveNumber('request_slot_timeout'), default: 20, reloadable: true },
  max_active_requests_global: {
    doc: 'Requests that may hold a slot at once across every gateway process sharing global_limits_redis (0 = no global limit). A request with a slot waits for a lease in Redis within the same request_slot_timeout (then 504); the lease is refreshed while it runs.',
    format: nonNegativeInt,
    default: 0,
    reloadable: true,
  },
  global_lease_seconds: {
    doc: 'Seconds a global lease lives without a refresh (refreshed every third of it while its request runs): the leases of a process that dies free themselves within this time.',
    format: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) throw new Error('global_lease_seconds must be a number of seconds >= 1');
    },
    default: 10,
    reloadable: true,
  },
  global_local_share: {
    doc: 'Requests this process lets hold a global lease at once while Redis is unreachable (each process on its own; about max_active_requests_global / processes keeps the sum under the global limit).',
    format: positiveInt,
    default: 1,
    reloadable: true,
  },
  db_conn_max_uses: { doc: 'Queries a connection runs before it is retired.', format: positiveInt, default: 100, reloadable: true },
  db_conn_max_age: { doc: 'Seconds a connection lives before it is retired.', format: positiveNumber('db_conn_max_age'), default: 1800, reloadable: true },
  db_conn_timeout: { doc: 'Seconds allowed to open one connection.', format: positiveNumber('db_conn_timeout'), default: 10, reloadable: true },
  db_conn_retry_wait_period: {
    doc: 'Seconds to wait after a failed connection attempt before the next.',
    format: positiveNumber('db_conn_retry_wait_period'),
    default: 5,
    reloadable: true,
  },
  db_conn_pool_acquire_timeout: {
    doc: 'Seconds a request with a slot waits for a pooled connection before 504.',
    format: positiveNumber('db_conn_pool_acquire_timeout'),
    default: 10,
    reloadable: true,
  },
  db_default_query_timeout: {
    doc: 'Seconds a query (including fetching its rows) may run before it is cancelled and 504 is returned.',
    format: positiveNumber('db_default_query_timeout'),
    default: 10,
    reloadable: true,
  },
  db_conn_idle_check_after: {
    doc: 'Idle connections unused for this many seconds are pinged by the pool check before reuse.',
    format: positiveNumber('db_conn_idle_check_after'),
    default: 30,
    reloadable: true,
  },
  stream_stall_timeout: {
    doc: 'Seconds a streamed response may wait for its client to read more before it is ended, its statement stopped and its slot and connection released.',
    format: positiveNumber('stream_stall_timeout'),
    default: 30,
    reloadable: true,
  },
  breaker_failures: {
    doc: 'Failed connection attempts in a row (none succeeding in between) after which the circuit breaker opens: requests are answered 503 at once, with Retry-After, while one probe connection tries the database every breaker_probe_interval (0 = no breaker).',
    format: nonNegativeInt,
    default: 5,
    reloadable: true,
  },
  breaker_probe_interval: {
    doc: 'Seconds between the probe connections of an open circuit breaker (one at a time; the first that opens closes the breaker); also the Retry-After of its 503s.',
    format: positiveNumber('breaker_probe_interval'),
    default: 2,
    reloadable: true,
  },
  tx_retries: {
    doc: 'Times a transaction (result exec or transaction) that failed on a serialization failure or a deadlock is run again, within its query timeout (0 = never); an endpoint may set its own.',
    format: nonNegativeInt,
    default: 2,
    reloadable: true,
  },
  sql_comment: {
    doc: "Every statement carries a trailing sqlcommenter comment naming its request, /*cid='...',endpoint='...'*/, shown by pg_stat_activity and the MySQL process list. On MySQL such a statement runs on the text protocol with its values inlined as exact literals, or, where it cannot, is prepared for its request and closed after it.",
    format: strictBoolean,
    default: false,
    reloadable: true,
  },
};

export interface SecureResourceSettings {
  db_type: DbType;
  /** SQLite file. */
  db_path: string;
  /** SQLite: create db_path with the sample table when it does not exist (else a missing file is an error). */
  db_sample: boolean;
  /** SQLite: each connection in a worker thread (auto: when the interrupt extension is built) or a worker process. */
  sqlite_workers: SqliteWorkers;
  /** SQLite with worker threads: how long a read may run on the event loop before it goes to the worker (0: never). */
  sqlite_inline_read_ms: number;
  db_host: string;
  db_port: number;
  db_name: string;
  db_user: string;
  /** ODBC driver name as registered in odbcinst.ini (e.g. "MariaDB Unicode"). */
  db_driver: string;
  /** Filled from env <rid>__db_password or <rid>__db_password_FILE, never from a file in the repo. */
  db_password: string;
}

export const secureResourceSchema: { [K in keyof SecureResourceSettings]: Node<SecureResourceSettings[K]> } = {
  db_type: { doc: 'sqlite | postgres | mysql | odbc.', format: [...DB_TYPES], default: 'sqlite', reloadable: false },
  db_path: { doc: 'SQLite database file (relative paths from the working directory).', format: String, default: '', reloadable: false },
  db_sample: {
    doc: 'SQLite only: when db_path does not exist, create it holding the sample table (the shipped sqlite_traffic). Otherwise a missing file stops start-up naming the path, so a mistyped path is not served as a new empty database.',
    format: strictBoolean,
    default: false,
    reloadable: false,
  },
  sqlite_workers: {
    doc: 'SQLite only: what each connection runs in. threads: a worker thread, stopped past its timeout through the interrupt extension built at npm install (native/); processes: a worker process, killed past its timeout; auto: threads when that extension loads, else processes.',
    format: [...SQLITE_WORKERS],
    default: 'auto',
    reloadable: false,
  },
  sqlite_inline_read_ms: {
    doc: 'SQLite only, with worker threads: a read (a SELECT, WITH or VALUES statement) first runs on the event loop, where it is interrupted past this many milliseconds and then runs again in its connection\'s worker thread, with its whole timeout. A short read so skips the hop to the thread and back. 0: every statement runs in the worker.',
    format: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) throw new Error('sqlite_inline_read_ms must be a number of milliseconds from 0 to 100');
    },
    default: 1,
    reloadable: false,
  },
  db_host: { doc: 'Database host (ODBC: server).', format: String, default: '127.0.0.1', reloadable: false },
  db_port: { doc: 'Database port (0 = the driver default).', format: 'port', default: 0, reloadable: false },
  db_name: { doc: 'Database name.', format: String, default: '', reloadable: false },
  db_user: { doc: 'Database user.', format: String, default: '', reloadable: false },
  db_driver: { doc: 'ODBC driver name from odbcinst.ini.', format: String, default: 'MariaDB Unicode', reloadable: false },
  db_password: {
    doc: 'Never set in a file: taken from env <rid>__db_password, or the file named by <rid>__db_password_FILE.',
    format: String,
    default: '',
    sensitive: true,
    reloadable: false,
  },
};

export type Settings = GlobalSettings & {
  resources: Record<string, ResourceSettings>;
  secure: Record<string, SecureResourceSettings>;
  /** Who may call (src/auth/settings.ts); absent in settings built by hand, which then have no credential source. */
  auth?: AuthSettings;
};

/** Effective max_active_requests: its own value or the pool maximum. */
export function maxActiveRequests(r: ResourceSettings): number {
  return r.max_active_requests ?? r.db_max_conn_pool_size;
}

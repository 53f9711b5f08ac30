/**
 * The response cache of one process: where entries live (memory, or Redis when cache_redis names
 * one), the queries under way per key (single flight), invalidation, and what the metrics count.
 * One per process, shared by every app an endpoint switch builds (as the rate-limit store is).
 *
 * With Redis, a command that fails or does not answer within cache_redis_timeout falls back to the
 * memory store for that request (a lookup there, or a store there), so an outage of Redis costs
 * sharing, not answers; a `cache-redis-err` warning says so at most every 10 s, and
 * wt_cache_redis_errors_total counts each. Entries kept in memory meanwhile are this process's
 * only, and an invalidation that cannot reach Redis leaves the shared entries to their ttl.
 */
import type { SettingsReader } from '../config/index.js';
import { getLogger } from '../log/index.js';
import type { CacheEntry } from './entry.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';

const log = getLogger('response-cache.ts');

/** Minimum time between two cache-redis-err records. */
const REPORT_EVERY_MS = 10_000;
/** How often expired entries are dropped from memory, so the byte gauge shows what can be served. */
const PURGE_EVERY_MS = 10_000;

/** What the metrics count (src/metrics/bind.ts); the endpoint is its route template. */
export interface CacheObserver {
  hit(endpoint: string): void;
  miss(endpoint: string): void;
  evict(endpoint: string): void;
  redisError(): void;
}

const NO_OBSERVER: CacheObserver = { hit() {}, miss() {}, evict() {}, redisError() {} };

/** The result of a lookup: the entry, and the generation to store a fresh answer under. */
export interface Lookup {
  entry: CacheEntry | undefined;
  /** Memory: the endpoint's generation; Redis: its generation there, as text. */
  generation: number | string;
}

/**
 * A query under way for one key, which later requests for the key wait on instead of running their
 * own. Resolves with the answer to share, or undefined when there is none to share (the leader's
 * client left, or a stream too large to keep): each waiter then goes its own way. Rejects with the
 * leader's error, which every waiter answers with.
 */
export class Flight {
  readonly promise: Promise<CacheEntry | undefined>;
  private settle!: (entry: CacheEntry | undefined) => void;
  private fail!: (err: unknown) => void;
  settled = false;

  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    // A flight nobody waited on must not be an unhandled rejection.
    this.promise.catch(() => undefined);
  }

  resolve(entry: CacheEntry | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(entry);
  }

  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.fail(err);
  }
}

export interface ResponseCacheOptions {
  /** Keep entries in the Redis of cache_redis when it names one (a connection this cache owns). */
  redis?: boolean;
}

export class ResponseCache {
  observer: CacheObserver = NO_OBSERVER;
  private readonly memory: MemoryStore;
  private readonly redis: RedisStore | undefined;
  /** Queries under way, by key. */
  private readonly flights = new Map<string, Flight>();
  /** Ids of the cached endpoints served (all apps since start), for clear(). */
  private readonly known = new Set<string>();
  /** Route templates of the cached endpoints registered, the metrics labels. */
  readonly endpoints = new Set<string>();
  private readonly purger: NodeJS.Timeout;
  private lastReport = 0;
  private unreported = 0;

  constructor(private readonly settings: SettingsReader, opts: ResponseCacheOptions = {}) {
    const cfg = settings();
    this.memory = new MemoryStore(cfg.cache_max_bytes, (endpoint) => this.observer.evict(endpoint));
    if (opts.redis && cfg.cache_redis !== '') {
      this.redis = new RedisStore(cfg.cache_redis, cfg.cache_redis_prefix, Math.max(1, Math.round(cfg.cache_redis_timeout * 1000)), (err) => this.report(err, false));
    }
    this.purger = setInterval(() => this.memory.purge(), PURGE_EVERY_MS);
    this.purger.unref();
  }

  get shared(): boolean {
    return this.redis !== undefined;
  }

  /** Registers a cached endpoint: its id (for clear()) and route template. */
  register(id: string, endpoint: string): void {
    this.known.add(id);
    this.endpoints.add(endpoint);
  }

  /** Bytes held in memory per endpoint. */
  get bytes(): ReadonlyMap<string, number> {
    return this.memory.bytes;
  }

  get totalBytes(): number {
    return this.memory.totalBytes;
  }

  /** Largest answer kept, read at each use (reloadable). */
  get maxEntryBytes(): number {
    return this.settings().cache_max_entry_bytes;
  }

  private report(err: Error, counted = true): void {
    if (counted) this.observer.redisError();
    this.unreported++;
    const now = Date.now();
    if (now - this.lastReport < REPORT_EVERY_MS) return;
    log.warning('cache-redis-err', `response cache: Redis failed, using this process's memory instead: ${err.message}`, { failures: this.unreported });
    this.lastReport = now;
    this.unreported = 0;
  }

  /** The entry of `key` (of endpoint `id`): at once from memory, or a promise (never rejecting) from Redis. */
  lookup(id: string, key: string): Lookup | Promise<Lookup> {
    if (this.redis === undefined) return { entry: this.memory.get(key), generation: this.memory.generation(id) };
    return this.redis.get(id, key).then(
      (r): Lookup => ({ entry: r.entry, generation: r.generation }),
      (err: Error): Lookup => {
        this.report(err);
        return { entry: this.memory.get(key), generation: this.memory.generation(id) };
      },
    );
  }

  /** The entry of `key` in this process's memory, at once: no promise, no lookup object (the early hit of a cache without Redis). */
  memoryEntry(key: string): CacheEntry | undefined {
    return this.memory.get(key);
  }

  /** Keeps `entry` unless it is too large or its endpoint was invalidated since `lookup`; never rejects. */
  store(key: string, entry: CacheEntry, lookup: Lookup): void {
    if (entry.body.length > this.maxEntryBytes) return;
    if (typeof lookup.generation === 'number') {
      this.memory.set(key, entry, lookup.generation);
      return;
    }
    this.redis!.set(key, entry, lookup.generation).catch((err: Error) => {
      this.report(err);
      this.memory.set(key, entry, this.memory.generation(entry.id));
    });
  }

  /** The query under way for `key`, if any. */
  flight(key: string): Flight | undefined {
    return this.flights.get(key);
  }

  /** Starts the flight of `key` (the caller runs the query). */
  startFlight(key: string): Flight {
    const flight = new Flight();
    this.flights.set(key, flight);
    return flight;
  }

  /** Ends the flight of `key` if it is still `flight`. */
  endFlight(key: string, flight: Flight): void {
    if (this.flights.get(key) === flight) this.flights.delete(key);
  }

  /**
   * Removes the entries of the endpoints `ids` (after a write succeeded): from memory at once, and
   * in Redis by raising their generations (bounded by cache_redis_timeout; a failure is reported
   * and leaves the shared entries to their ttl). Requests arriving from now on do not join a
   * flight that began before.
   */
  async invalidate(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.memory.invalidate(id);
    for (const key of [...this.flights.keys()]) {
      if (ids.some((id) => key.startsWith(`${id}\u0000`))) this.flights.delete(key);
    }
    if (this.redis !== undefined) await this.redis.invalidate(ids).catch((err: Error) => this.report(err));
  }

  /** Every entry of every cached endpoint (a reload with cache_clear_on_reload). */
  clear(): Promise<void> {
    this.memory.clear();
    return this.invalidate([...this.known]);
  }

  /** After an endpoint switch: entries of endpoints no longer served as they were go (memory only; Redis lets them expire). */
  retain(ids: ReadonlySet<string>): void {
    this.memory.retain(ids);
    for (const id of [...this.known]) if (!ids.has(id)) this.known.delete(id);
  }

  /** Start-up waits for Redis (at most 2 s), as it waits for the pools, so the first requests share. */
  async ready(): Promise<void> {
    await this.redis?.ready(2000);
  }

  close(): void {
    clearInterval(this.purger);
    this.redis?.close();
  }
}

/**
 * The response cache in Redis (config cache_redis), shared by every gateway process that uses the
 * same Redis and cache_redis_prefix. Per endpoint id a generation counter `<prefix>g:<id>`; an
 * entry lives at `<prefix>v:<id>:<generation>:<hash of its key>` with its ttl as Redis expiry. An
 * invalidation raises the generation (INCR), so every replica stops finding the old entries at
 * once, and Redis lets them expire. Reading the generation and the entry is one script (one round
 * trip); storing checks the generation the reader saw, so an answer whose query began before a
 * write is never stored after it. Keys are built inside the scripts: meant for one Redis server,
 * not Redis Cluster.
 *
 * Commands fail at once while disconnected (no offline queue) and after cache_redis_timeout; the
 * caller (src/cache/response-cache.ts) then uses its memory store.
 */
import { hash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ioredis } from '../on-first-use.js';
import { decodeEntry, encodeEntry, type CacheEntry } from './entry.js';

const GET = `
local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}`;
const SET = `
local g = redis.call('GET', KEYS[1]) or '0'
if g ~= ARGV[1] then return 0 end
redis.call('SET', ARGV[2] .. g .. ':' .. ARGV[3], ARGV[4], 'PX', ARGV[5])
return 1`;

interface CacheCommands {
  wtCacheGetBuffer(genKey: string, entryBase: string, keyHash: string): Promise<[Buffer, Buffer | null]>;
  wtCacheSet(genKey: string, generation: string, entryBase: string, keyHash: string, value: Buffer, ttlMs: number): Promise<number>;
}

export interface RedisLookup {
  generation: string;
  entry: CacheEntry | undefined;
}

export class RedisStore {
  private readonly client: Redis & CacheCommands;

  constructor(
    url: string,
    private readonly prefix: string,
    timeoutMs: number,
    onError: (err: Error) => void,
  ) {
    this.client = new (ioredis().Redis)(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 50, 1000),
    }) as Redis & CacheCommands;
    this.client.defineCommand('wtCacheGet', { numberOfKeys: 1, lua: GET, readOnly: true });
    this.client.defineCommand('wtCacheSet', { numberOfKeys: 1, lua: SET });
    // Without a listener ioredis writes every reconnection error to stderr; the caller reports them, throttled.
    this.client.on('error', onError);
  }

  /** Settles once connected, or after `ms`. */
  ready(ms: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.client.once('ready', done);
    });
  }

  private genKey(id: string): string {
    return `${this.prefix}g:${id}`;
  }

  private entryBase(id: string): string {
    return `${this.prefix}v:${id}:`;
  }

  /** Keys hold the caller's roles and params: hashed, so a key's length and content are bounded. */
  private static keyHash(key: string): string {
    return hash('sha256', key, 'base64url');
  }

  async get(id: string, key: string): Promise<RedisLookup> {
    const [gen, value] = await this.client.wtCacheGetBuffer(this.genKey(id), this.entryBase(id), RedisStore.keyHash(key));
    const entry = value === null ? undefined : decodeEntry(value);
    // An entry of another endpoint under this hash is impossible short of a SHA-256 collision; checked anyway.
    return { generation: gen.toString(), entry: entry?.id === id && entry.expiresAt > Date.now() ? entry : undefined };
  }

  async set(key: string, entry: CacheEntry, generation: string): Promise<boolean> {
    const ttl = Math.ceil(entry.expiresAt - Date.now());
    if (ttl <= 0) return false;
    const stored = await this.client.wtCacheSet(this.genKey(entry.id), generation, this.entryBase(entry.id), RedisStore.keyHash(key), encodeEntry(entry), ttl);
    return stored === 1;
  }

  async invalidate(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const results = await this.client.pipeline(ids.map((id) => ['incr', this.genKey(id)])).exec();
    const failed = results?.find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
  }

  close(): void {
    this.client.disconnect();
  }
}

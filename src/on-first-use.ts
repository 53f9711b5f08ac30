/**
 * Packages that only some configurations use (Redis for shared limits and caches, jose for JWT),
 * loaded the first time one is needed: a gateway that does not use them does not hold them in
 * memory (ioredis alone is about 7 MB). A synchronous require, so the constructors that use them
 * stay synchronous.
 */
import { createRequire } from 'node:module';
import type * as IoRedis from 'ioredis';
import type * as Jose from 'jose';
import type * as RedisSemaphore from 'redis-semaphore';

const requirePackage = createRequire(import.meta.url);

/** A loader for package `name`: the first call loads it, later calls return the same module. */
function onFirstUse<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requirePackage(name) as T);
}

export const ioredis = onFirstUse<typeof IoRedis>('ioredis');
export const redisSemaphore = onFirstUse<typeof RedisSemaphore>('redis-semaphore');
export const jose = onFirstUse<typeof Jose>('jose');

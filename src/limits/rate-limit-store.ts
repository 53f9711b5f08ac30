/**
 * Where rate-limit counters live (rate-limiter-flexible): in this process's memory (a single
 * process), in the cluster primary's memory (workers ask it over IPC, so a limit holds for the
 * whole process group), or in Redis when `rate_limit_redis` names one (shared by every process and
 * gateway using it).
 *
 * Every count waits at most `rate_limit_timeout`. A store that fails or does not answer in time
 * (Redis down or hung, a primary that does not answer) does not fail the request open or closed:
 * the request is counted by the same rule in this process's memory instead, so a limit still
 * holds, per process, until the store answers again; a `rate-limit-store-err` warning says so at
 * most every 10 s.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ioredis } from '../on-first-use.js';
import {
  BurstyRateLimiter,
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { SettingsReader } from '../config/index.js';
import { getLogger } from '../log/index.js';
import type { EffectiveRule } from './rate-limit-rules.js';

const log = getLogger('rate-limit-store.ts');

export type StoreKind = 'memory' | 'cluster' | 'redis';

/** One count against one rule. */
export interface Outcome {
  allowed: boolean;
  /** Requests left in the current interval (a burst's are not shown). */
  remaining: number;
  /** Milliseconds until the interval (or, refused, the earliest window that lets one in) resets. */
  msBeforeNext: number;
}

interface Consumer {
  consume(key: string): Promise<RateLimiterRes>;
}

/** Counts requests against one rule in one scope. */
export interface RuleLimiter {
  consume(key: string): Promise<Outcome>;
}

export interface RateLimitStore {
  readonly kind: StoreKind;
  /** The limiter of `rule` in `scope` ('global', or a route), made once and kept. */
  limiter(rule: EffectiveRule, scope: string): RuleLimiter;
  /** Closes the connection to Redis, if any. Once. */
  close(): Promise<void>;
}

/** Minimum time between two rate-limit-store-err records. */
const REPORT_EVERY_MS = 10_000;

function outcomeOf(res: RateLimiterRes, allowed: boolean): Outcome {
  return { allowed, remaining: res.remainingPoints, msBeforeNext: Math.max(0, res.msBeforeNext) };
}

/** The count; a refusal resolves too (rate-limiter-flexible rejects with the RateLimiterRes then). */
function count(consumer: Consumer, key: string): Promise<Outcome> {
  return consumer.consume(key).then(
    (res) => outcomeOf(res, true),
    (err: unknown) => {
      if (err instanceof RateLimiterRes) return outcomeOf(err, false);
      throw err;
    },
  );
}

/** count(), or a rejection once `ms` have passed without an answer. */
function bounded(consumer: Consumer, key: string, ms: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([count(consumer, key), timeout]).finally(() => clearTimeout(timer));
}

/** A rule's key prefix: scope and parameters, so a changed rule starts its own counters (also in the primary and Redis). */
function prefixOf(rule: EffectiveRule, scope: string): string {
  const text = JSON.stringify([scope, rule.by, rule.requests, rule.interval, rule.burst, rule.burstInterval, rule.roles ?? null]);
  return `wt-rl:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

type Make = (opts: { keyPrefix: string; points: number; duration: number }) => RateLimiterAbstract;

function consumerOf(make: Make, rule: EffectiveRule, keyPrefix: string): Consumer {
  const main = make({ keyPrefix, points: rule.requests, duration: rule.interval });
  if (rule.burst === 0) return main;
  return new BurstyRateLimiter(main, make({ keyPrefix: `${keyPrefix}:burst`, points: rule.burst, duration: rule.burstInterval }));
}

export interface StoreOptions {
  /** Keep the counters in the Redis of `rate_limit_redis` when it names one (a connection this store owns). */
  redis?: boolean;
  /** Else count through the cluster primary (a worker whose primary runs a RateLimiterClusterMaster). */
  cluster?: boolean;
}

export function createRateLimitStore(settings: SettingsReader, opts: StoreOptions = {}): RateLimitStore {
  const cfg = settings();
  const timeoutMs = () => Math.max(1, Math.round(settings().rate_limit_timeout * 1000));
  let redis: Redis | undefined;
  let kind: StoreKind = 'memory';
  let make: Make = (o) => new RateLimiterMemory(o);
  let lastReport = 0;
  let unreported = 0;
  const report = (err: unknown) => {
    unreported++;
    const now = Date.now();
    if (now - lastReport < REPORT_EVERY_MS) return;
    log.warning('rate-limit-store-err', `rate-limit store (${kind}) failed; counting in this process instead: ${(err as Error).message}`, {
      store: kind,
      requests: unreported,
    });
    lastReport = now;
    unreported = 0;
  };

  if (opts.redis && cfg.rate_limit_redis !== '') {
    kind = 'redis';
    redis = new (ioredis().Redis)(cfg.rate_limit_redis, {
      // Commands fail at once while disconnected, instead of queueing until Redis is back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs(),
      connectTimeout: 2_000,
    });
    // Reported (throttled) when a count fails; without a listener ioredis writes every reconnect error to stderr.
    redis.on('error', (err: Error) => report(err));
    const client = redis;
    make = (o) => new RateLimiterRedis({ ...o, storeClient: client, rejectIfRedisNotReady: true });
  } else if (opts.cluster) {
    kind = 'cluster';
    make = (o) => new RateLimiterCluster({ ...o, timeoutMs: timeoutMs() });
  }

  // Kept for the life of the store: one per rule and scope ever used (a cluster limiter listens to
  // the IPC channel for good), so their number follows the config, not the traffic.
  const limiters = new Map<string, RuleLimiter>();

  const build = (rule: EffectiveRule, keyPrefix: string): RuleLimiter => {
    const local = consumerOf((o) => new RateLimiterMemory(o), rule, keyPrefix);
    if (kind === 'memory') return { consume: (key) => count(local, key) };
    let shared: Consumer | undefined;
    return {
      async consume(key) {
        // A worker whose IPC channel is gone (its primary died) has no one to ask: a cluster
        // limiter would fail to send, even to announce itself.
        if (kind === 'cluster' && !process.connected) return count(local, key);
        shared ??= consumerOf(make, rule, keyPrefix);
        try {
          return await bounded(shared, key, timeoutMs());
        } catch (err) {
          report(err);
          return count(local, key);
        }
      },
    };
  };

  let closed: Promise<void> | undefined;
  return {
    kind,
    limiter(rule, scope) {
      const keyPrefix = prefixOf(rule, scope);
      let limiter = limiters.get(keyPrefix);
      if (limiter === undefined) {
        limiter = build(rule, keyPrefix);
        limiters.set(keyPrefix, limiter);
      }
      return limiter;
    },
    close() {
      closed ??= (async () => {
        redis?.disconnect();
      })();
      return closed;
    },
  };
}

/**
 * The global limits of one process: its Redis connection (config global_limits_redis) and a
 * GlobalLimiter per enabled resource. The ResourceManager owns one when the URL is set; it asks it
 * for a lease between a request's slot and its connection.
 */
import type { Settings, SettingsReader } from '../config/index.js';
import { resourceSettingsOf } from '../config/index.js';
import { getLogger } from '../log/index.js';
import type { ResourceEvents } from './events.js';
import { GlobalLimiter, type GlobalLimiterStats } from './global-limiter.js';
import { GlobalRedis } from './global-redis.js';

const log = getLogger('global-limits.ts');

/** Resources of `cfg` that set max_active_requests_global. */
function limitedResources(cfg: Settings): string[] {
  return cfg.resource_ids.filter((rid) => resourceSettingsOf(cfg, rid).max_active_requests_global > 0);
}

export class GlobalLimits {
  private readonly limiters = new Map<string, GlobalLimiter>();

  private constructor(
    private readonly redis: GlobalRedis,
    settings: SettingsReader,
    events: ResourceEvents,
  ) {
    // One listener per resource on the shared connection.
    redis.setMaxListeners(0);
    for (const rid of settings().resource_ids) {
      this.limiters.set(rid, new GlobalLimiter(rid, redis, events, () => resourceSettingsOf(settings(), rid)));
    }
  }

  /**
   * The global limits of the settings' resources, connecting to global_limits_redis; undefined when
   * it is empty (then a limit set anyway is named in a global-limit-off warning: it does nothing).
   */
  static start(settings: SettingsReader, events: ResourceEvents): GlobalLimits | undefined {
    const cfg = settings();
    if (cfg.global_limits_redis === '') {
      const ignored = limitedResources(cfg);
      if (ignored.length > 0) {
        log.warning('global-limit-off', 'max_active_requests_global is set but global_limits_redis is empty: no limit is shared with other processes', {
          resources: ignored.join(','),
        });
      }
      return undefined;
    }
    return new GlobalLimits(new GlobalRedis(cfg.global_limits_redis), settings, events);
  }

  /** The limiter of `rid` when its limit is on now (max_active_requests_global > 0, reloadable). */
  active(rid: string): GlobalLimiter | undefined {
    const l = this.limiters.get(rid);
    return l !== undefined && l.enabled() ? l : undefined;
  }

  stats(rid: string): GlobalLimiterStats | undefined {
    return this.limiters.get(rid)?.stats();
  }

  /** Settles once Redis answers, or after `ms`: start-up waits for it as for the pools, so the first requests do not fall back. */
  warm(ms: number): Promise<void> {
    return this.redis.ready(ms);
  }

  /** After a reload: waiters of a limit switched off go on, a raised share admits at once. */
  reloaded(): void {
    for (const l of this.limiters.values()) l.admitWaiting();
  }

  /** Shutdown begins: every waiter is rejected with `err`; leases held stay (and are refreshed) until released. */
  refuseNew(err: Error): void {
    for (const l of this.limiters.values()) l.close(err);
  }

  /** Shutdown ends: leases still held are given back, then the connection closes once they were sent. */
  async close(): Promise<void> {
    for (const l of this.limiters.values()) l.releaseAll();
    await this.redis.close();
  }
}

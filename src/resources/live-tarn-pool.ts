/**
 * tarn's Pool with the few operations it lacks, written against its protected members (the
 * extension surface its type declarations expose to subclasses):
 * - live limits: tarn reads min/max and its timeouts from fields at each use, so assigning them
 *   makes a config reload effective on the next acquire or create, with no rebuild;
 * - retire(): take one checked-out resource out of the pool and destroy it (tarn only destroys on
 *   failed validation or idle reaping, which would put a broken or expired connection back first);
 * - takeIdle(): check idle resources out for the periodic sweep (ping or retire them);
 * - topUp(): open connections with no acquire waiting (tarn only creates on demand);
 * - async validation with the owner's rules (tarn's `validate` option is typed synchronous);
 * - no reaping timer: the owner's periodic check (unref'd, live interval) replaces it.
 */
import { Pool } from 'tarn';

/** tarn's option bag (its package does not export the type by name). */
export type PoolOptions<T> = ConstructorParameters<typeof Pool<T>>[0];

export interface LiveLimits {
  min: number;
  max: number;
  acquireTimeoutMillis: number;
  createTimeoutMillis: number;
  createRetryIntervalMillis: number;
}

export class LiveTarnPool<T> extends Pool<T> {
  constructor(
    opts: PoolOptions<T>,
    private readonly validateAsync: (resource: T) => Promise<boolean>,
  ) {
    super(opts);
  }

  /** Applies new limits; a higher max serves waiting acquires at once. */
  applyLimits(l: LiveLimits): void {
    this.min = l.min;
    this.max = l.max;
    this.acquireTimeoutMillis = Math.max(1, Math.round(l.acquireTimeoutMillis));
    this.createTimeoutMillis = Math.max(1, Math.round(l.createTimeoutMillis));
    this.createRetryIntervalMillis = Math.max(1, Math.round(l.createRetryIntervalMillis));
    this._tryAcquireOrCreate();
  }

  /** Removes a checked-out resource and destroys it; a waiting acquire may get a new one. */
  retire(resource: T): boolean {
    const i = this.used.findIndex((u) => u.resource === resource);
    if (i === -1) return false;
    const [entry] = this.used.splice(i, 1);
    entry.settle();
    void this._destroy(resource);
    this._tryAcquireOrCreate();
    return true;
  }

  /** Checks out the idle resources `pick` selects (at most `limit`); hand each back with release() or retire(). */
  takeIdle(pick: (resource: T) => boolean, limit = Infinity): T[] {
    const taken: T[] = [];
    this.free = this.free.filter((f) => {
      if (taken.length >= limit || !pick(f.resource)) return true;
      taken.push(f.resource);
      this.used.push(f);
      return false;
    });
    return taken;
  }

  /**
   * Checks out the most recently freed resource at once, like tarn's own hand-out, when no acquire
   * is queued before us and `ready` accepts it without validation; undefined otherwise (then use
   * acquire(), which validates). Saves tarn's two timed pending operations on the common path.
   */
  takeFreeNow(ready: (resource: T) => boolean): T | undefined {
    if (this.destroyed || this.pendingAcquires.length > 0) return undefined;
    const free = this.free[this.free.length - 1];
    if (free === undefined || !ready(free.resource)) return undefined;
    this.free.pop();
    this.used.push(free);
    return free.resource;
  }

  /** Starts `n` creations; each new resource joins the idle list (or serves a waiting acquire). */
  topUp(n: number): void {
    for (let i = 0; i < n && !this.destroyed; i++) this._doCreate();
  }

  /** Resources checked out now (by requests, validation or the sweep). */
  usedResources(): T[] {
    return this.used.map((u) => u.resource);
  }

  override _validateResource(resource: T): Promise<boolean> {
    return this.validateAsync(resource);
  }

  override _startReaping(): void {
    // Replaced by the owner's periodic check.
  }
}

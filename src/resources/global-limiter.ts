/**
 * GlobalLimiter: one resource's max_active_requests_global, shared through Redis by every gateway
 * process that uses the same global_limits_redis. A request that holds its local slot takes a lease
 * too: a member of a Redis sorted set (redis-semaphore's Semaphore), refreshed every third of
 * global_lease_seconds while the request runs, so the leases of a process that dies (SIGKILL, a
 * lost machine) expire by themselves within global_lease_seconds; a process never has to say
 * goodbye for its share to come back.
 *
 * Waiting: the waiters of this process queue here (FIFO) within their request's slot timeout.
 * While leases are free each waiter asks Redis at once; once Redis says the limit is reached only
 * the head of the queue asks again, about every RETRY_MS, so a process sends about one command per
 * RETRY_MS however many wait. Between processes there is no queue: whoever asks first after a lease
 * frees gets it. So a process that gives a lease back does not ask for it at once (it would always
 * be first, and keep the limit to itself while it has waiters): it asks after a random part of
 * RETRY_MS like every other process, so each has the same chance at every freed lease.
 *
 * Redis unreachable (GlobalRedis.up false): this process admits up to global_local_share leases of
 * its own (counting those it still holds in Redis), writes a global-limit-fallback record once per
 * outage and shows wt_global_limit_fallback 1. When Redis answers again the leases taken meanwhile,
 * and any the outage cost (Redis restarted empty), are written into the set before new ones are
 * asked for, so the global count includes everything this process runs.
 *
 * Spare leases: a round trip to Redis to take a lease and one to give it back cost a request more
 * than its statement (bench/README.md, "A limit shared by every replica"). So while the limit has
 * room - Redis counted at most half of it, this lease included, when it granted it - a lease given back goes to
 * this process's next request instead, at once or within SPARE_LINGER_MS, and back to Redis after
 * that or once it is REUSE_MS old, whichever comes first. It stays in the set meanwhile, so the
 * global count never leaves it out; near the limit every lease goes back to Redis at once, as before.
 *
 * redis-semaphore's own refresh timer is not used: a refresh that fails (Redis down) would be an
 * unhandled rejection there (swarthy/redis-semaphore#199); this module refreshes instead, through
 * the library's acquiredExternally form of the same lease.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Semaphore } from 'redis-semaphore';
import { redisSemaphore } from '../on-first-use.js';
import type { ResourceSettings } from '../config/index.js';
import { AppTimeoutError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { emitSafely, type ResourceEvents } from './events.js';
import type { GlobalRedis } from './global-redis.js';
import { abortReason, nowMs, secondsSince, unrefTimeout, type CancelSignal } from './util.js';

const log = getLogger('global-limiter.ts');

/** How often the head of a full queue asks Redis again (redis-semaphore's own default retry interval). */
export const RETRY_MS = 10;
/** A spare lease no request of this process took within this time goes back to Redis. */
export const SPARE_LINGER_MS = 20;
/** A lease is used again only this long after Redis granted it: the count Redis gave then is trusted no longer. */
export const REUSE_MS = 100;

/** The name redis-semaphore is given for a resource's set; it stores the set under `semaphore:<name>`. */
export function semaphoreName(rid: string): string {
  return `wt-global:${rid}`;
}

/** The Redis key of a resource's leases: a sorted set of lease ids scored by their last refresh (ms). */
export function leaseKey(rid: string): string {
  return `semaphore:${semaphoreName(rid)}`;
}

/** Lease ids name their process, so an operator can see in Redis who holds what: `<host>:<pid>:<uuid>`. */
const LEASE_ID_PREFIX = `${hostname()}:${process.pid}:`;
function newLeaseId(): string {
  return LEASE_ID_PREFIX + randomUUID();
}

/** What a request holds of the global limit. */
export interface GlobalLease {
  /** Seconds the request waited for it (after its local slot). */
  readonly waitSeconds: number;
  /** Gives it back. Exactly once: later calls are ignored (and logged as the bug they are). */
  release(): void;
}

/** A lease as this process keeps it. */
interface Lease {
  readonly id: string;
  /** In the Redis set (false: taken while Redis was unreachable, or lost there; written in when it answers). */
  registered: boolean;
  released: boolean;
  /** Given back by shutdown rather than by its request: the request's own release is then expected, not a bug. */
  forced: boolean;
  /** nowMs() when Redis granted the lease (kept when it passes to another request). */
  readonly grantedAt: number;
  /** Redis counted at most half the limit when it granted it: it may pass to this process's next request. */
  readonly roomy: boolean;
}

/** Whether Redis granted `lease` recently enough for the count it gave then to be trusted (REUSE_MS). */
function young(lease: Lease, now: number): boolean {
  return now - lease.grantedAt < REUSE_MS;
}

/** A lease nobody holds, kept for this process's next request (see the top). */
interface Spare {
  readonly lease: Lease;
  readonly parkedAt: number;
}

interface Waiter {
  readonly start: number;
  readonly timeoutSeconds: number;
  readonly resolve: (lease: GlobalLease) => void;
  readonly reject: (err: Error) => void;
  readonly signal: CancelSignal;
  onAbort: () => void;
  timer: NodeJS.Timeout | undefined;
}

/** The lease of a request when the limit was switched off while it waited: nothing to give back. */
const NO_LEASE: GlobalLease = { waitSeconds: 0, release: () => undefined };

export interface GlobalLimiterStats {
  /** Leases this process holds (in Redis, or counted locally while Redis is unreachable). */
  leases: number;
  /** Requests of this process waiting for one. */
  waiting: number;
  /** The limit is on and Redis unreachable: this process admits global_local_share at most. */
  fallback: boolean;
  /** Releases called more than once: always a bug in the caller. */
  doubleReleases: number;
}

export class GlobalLimiter {
  /** A Set iterates in insertion order (FIFO) and removes a timed-out or aborted waiter in O(1). */
  private readonly waiters = new Set<Waiter>();
  /** Leases of this process in Redis (or counted locally): those of its requests and its spares. */
  private readonly held = new Set<Lease>();
  /** Oldest first. */
  private spares: Spare[] = [];
  private spareTimer: NodeJS.Timeout | undefined;
  /** Acquisition commands sent and not answered yet. */
  private inFlight = 0;
  /** The last answer was "limit reached": only the head asks again, on a timer or a release. */
  private full = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private closedWith: Error | undefined;
  /** A global-limit-fallback record was written and no global-limit-restored since. */
  private inFallback = false;
  private doubleReleases = 0;

  constructor(
    readonly resourceId: string,
    private readonly redis: GlobalRedis,
    private readonly events: ResourceEvents,
    /** This resource's live settings, read at each use (the limit, the lease time and the share are reloadable). */
    private readonly settings: () => ResourceSettings,
  ) {
    redis.on('down', this.onDown);
    redis.on('up', this.onUp);
  }

  /** Whether requests of this resource need a global lease now (max_active_requests_global > 0). */
  enabled(): boolean {
    return this.settings().max_active_requests_global > 0;
  }

  stats(): GlobalLimiterStats {
    return { leases: this.held.size, waiting: this.waiters.size, fallback: this.enabled() && !this.redis.up, doubleReleases: this.doubleReleases };
  }

  /**
   * A lease, at once or after waiting. `waitedSeconds`: how long the request already waited for its
   * local slot, so both waits together stay within request_slot_timeout. Rejects with
   * AppTimeoutError (kind 'slot', 504) after that, the signal's reason when it aborts (the client
   * left), or the close error (shutdown).
   */
  acquire(signal: CancelSignal, waitedSeconds: number): Promise<GlobalLease> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal.aborted) return Promise.reject(abortReason(signal));
    // A spare, nobody ahead: no waiter, timer or listener to set up and take down again.
    if (this.waiters.size === 0 && this.spares.length > 0 && this.enabled()) {
      const spare = this.takeSpare();
      if (spare !== undefined) return Promise.resolve(this.grantNow(spare));
    }
    const timeoutSeconds = this.settings().request_slot_timeout;
    const leftMs = Math.max(0, (timeoutSeconds - waitedSeconds) * 1000);
    return new Promise<GlobalLease>((resolve, reject) => {
      const w: Waiter = { start: nowMs(), timeoutSeconds, resolve, reject, signal, onAbort: () => undefined, timer: undefined };
      w.onAbort = () => {
        if (!this.waiters.delete(w)) return;
        this.detach(w);
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', w.onAbort);
      w.timer = unrefTimeout(() => this.expire(w), leftMs);
      this.waiters.add(w);
      this.pump();
    });
  }

  /** After a reload: a limit switched off lets every waiter go, a raised share admits at once. */
  admitWaiting(): void {
    this.full = false;
    // The limit may have changed: spares were kept under the old one.
    this.dropSpares();
    this.pump();
  }

  /** Refuses new acquisitions and rejects every waiter with `err` (shutdown). Leases held stay valid (and refreshed) until released. */
  close(err: Error): void {
    this.closedWith ??= err;
    for (const w of this.waiters) {
      this.detach(w);
      w.reject(err);
    }
    this.waiters.clear();
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.dropSpares();
  }

  /**
   * The end of a shutdown: gives back every lease still held (their requests outlived
   * shutdown_timeout), so none waits for its expiry; their requests' own releases later do nothing.
   */
  releaseAll(): void {
    this.dropSpares();
    for (const lease of [...this.held]) {
      lease.forced = true;
      this.giveBack(lease);
    }
    this.stopRefresh();
    this.redis.off('down', this.onDown);
    this.redis.off('up', this.onUp);
  }

  // --- admission ---

  /** Admits what can be admitted now; asks Redis for the rest. Runs on every arrival, answer, release and Redis transition. */
  private pump(): void {
    if (this.closedWith) return;
    while (this.waiters.size > 0) {
      const rc = this.settings();
      const head = this.waiters.values().next().value as Waiter;
      if (rc.max_active_requests_global <= 0) {
        this.settle(head, NO_LEASE, false);
        continue;
      }
      const spare = this.takeSpare();
      if (spare !== undefined) {
        this.grant(head, spare, !this.redis.up);
        continue;
      }
      if (this.redis.up) break;
      if (this.held.size >= rc.global_local_share) return;
      this.grant(head, { id: newLeaseId(), registered: false, released: false, forced: false, grantedAt: nowMs(), roomy: false }, true);
    }
    if (this.waiters.size === 0) return;
    if (this.full) {
      if (this.inFlight === 0) this.schedulePoll();
      return;
    }
    while (this.inFlight < this.waiters.size) this.ask();
  }

  /** The head asks again after about RETRY_MS: `first`, a random part of it (see the top), else 0.5 to 1.5 of it, so processes do not ask in step. */
  private schedulePoll(first = false): void {
    if (this.pollTimer !== undefined) return;
    this.pollTimer = unrefTimeout(() => {
      this.pollTimer = undefined;
      if (this.waiters.size === 0 || this.closedWith) return;
      if (this.redis.up && this.inFlight === 0 && this.enabled()) this.ask();
      else this.pump();
    }, RETRY_MS * (first ? Math.random() : 0.5 + Math.random()));
  }

  /** One acquisition command; its lease goes to whoever heads the queue when the answer comes. */
  private ask(): void {
    const rc = this.settings();
    const id = newLeaseId();
    const sem = this.semaphore(rc, { identifier: id, acquireAttemptsLimit: 1, retryInterval: 0 });
    this.inFlight++;
    const acquired = sem.tryAcquire();
    // In the same write (auto-pipelining), after the acquisition: the library sends its command
    // before its first await. (Once per Redis, whose script cache is empty, it sends the script
    // again after an answer: then this count leaves out the lease it grants.) Under a limit of 1
    // no lease is ever roomy: nothing to count.
    const counted = rc.max_active_requests_global >= 2 ? this.redis.client.zcard(leaseKey(this.resourceId)).catch(() => Infinity) : Infinity;
    Promise.all([acquired, counted]).then(
      ([ok, count]) => {
        this.inFlight--;
        if (ok) {
          this.full = false;
          this.assign({ id, registered: true, released: false, forced: false, grantedAt: nowMs(), roomy: count <= rc.max_active_requests_global / 2 });
        } else this.full = true;
        this.pump();
      },
      (err: unknown) => {
        this.inFlight--;
        this.redisFailed(err);
        this.pump();
      },
    );
  }

  /** A lease Redis granted: to the head of the queue, or a spare or back to Redis when nobody waits any more. */
  private assign(lease: Lease): void {
    const head = this.closedWith ? undefined : (this.waiters.values().next().value as Waiter | undefined);
    if (head !== undefined) this.grant(head, lease, false);
    else if (this.spareable(lease)) this.park(lease);
    else this.unregister(lease);
  }

  private grant(w: Waiter, lease: Lease, fallback: boolean): void {
    this.held.add(lease);
    this.startRefresh();
    this.settle(w, this.handleOf(lease, secondsSince(w.start)), fallback);
  }

  /** A spare to a request that did not wait. */
  private grantNow(spare: Lease): GlobalLease {
    const granted = this.handleOf(spare, 0);
    this.acquired(granted, false);
    return granted;
  }

  private settle(w: Waiter, granted: GlobalLease, fallback: boolean): void {
    this.waiters.delete(w);
    this.detach(w);
    if (granted !== NO_LEASE) this.acquired(granted, fallback);
    w.resolve(granted);
  }

  private acquired(granted: GlobalLease, fallback: boolean): void {
    emitSafely(this.events, 'global-lease-acquired', { resourceId: this.resourceId, waitSeconds: granted.waitSeconds, fallback });
  }

  private expire(w: Waiter): void {
    if (!this.waiters.delete(w)) return;
    this.detach(w);
    const rid = this.resourceId;
    emitSafely(this.events, 'global-lease-error', { resourceId: rid, type: 'timeout', waitSeconds: secondsSince(w.start) });
    w.reject(
      new AppTimeoutError(`${w.timeoutSeconds}-sec timeout waiting for a request slot for resource ${rid}: max_active_requests_global reached`, {
        resourceId: rid,
        kind: 'slot',
        timeoutSeconds: w.timeoutSeconds,
      }),
    );
  }

  private detach(w: Waiter): void {
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.signal.removeEventListener('abort', w.onAbort);
  }

  // --- giving back ---

  private handleOf(lease: Lease, waitSeconds: number): GlobalLease {
    return {
      waitSeconds,
      release: () => {
        if (lease.released) {
          if (!lease.forced) {
            this.doubleReleases++;
            log.warning('global-lease-release', 'global lease released twice; ignored', { resource_id: this.resourceId });
          }
          return;
        }
        if (this.spareable(lease)) {
          // The next request of this process takes it, a waiting one at once.
          lease.released = true;
          this.held.delete(lease);
          this.park(lease);
          this.pump();
          return;
        }
        this.giveBack(lease);
        // Counted here only (Redis unreachable): the next waiter may have it now.
        if (!this.redis.up) this.pump();
        // In Redis the lease is free for every process: this one's head asks like theirs (see the top).
        else if (this.waiters.size > 0 && this.inFlight === 0) this.schedulePoll(true);
      },
    };
  }

  private giveBack(lease: Lease): void {
    lease.released = true;
    this.held.delete(lease);
    if (lease.registered) this.unregister(lease);
    if (this.held.size === 0) this.stopRefresh();
  }

  /** Removes a lease from the Redis set. Sent on the same connection before any later acquisition, so Redis sees it first. */
  private unregister(lease: Lease): void {
    lease.registered = false;
    const rc = this.settings();
    // The library removes a lease only from an instance that holds it; acquiredExternally makes one for the id.
    const sem = this.semaphore(rc, { identifier: lease.id, acquiredExternally: true });
    // Failing (Redis gone): the lease expires by itself within global_lease_seconds.
    sem.release().catch((err: unknown) => this.redisFailed(err));
  }

  // --- spares ---

  /** Whether `lease`, given back, may pass to another request of this process (see the top). */
  private spareable(lease: Lease): boolean {
    return lease.roomy && lease.registered && this.redis.up && this.closedWith === undefined && young(lease, nowMs()) && this.enabled();
  }

  /** Keeps a given-back lease (in Redis all along) as a spare: a new lease object, as its old handle stays released. */
  private park(lease: Lease): void {
    const spare: Lease = { id: lease.id, registered: true, released: false, forced: false, grantedAt: lease.grantedAt, roomy: true };
    this.held.add(spare);
    this.startRefresh();
    this.spares.push({ lease: spare, parkedAt: nowMs() });
    this.spareTimer ??= unrefTimeout(() => this.sweepSpares(), SPARE_LINGER_MS);
  }

  /** The newest spare young enough to use (older ones go back to Redis), out of the spares. */
  private takeSpare(): Lease | undefined {
    while (this.spares.length > 0) {
      const { lease } = this.spares.pop() as Spare;
      if (young(lease, nowMs()) && this.redis.up) return lease;
      this.retireSpare(lease);
    }
    return undefined;
  }

  /** Gives back the spares no request took within SPARE_LINGER_MS, or past REUSE_MS; looks again while some remain. */
  private sweepSpares(): void {
    this.spareTimer = undefined;
    const now = nowMs();
    const keep: Spare[] = [];
    for (const s of this.spares) {
      if (now - s.parkedAt < SPARE_LINGER_MS && young(s.lease, now)) keep.push(s);
      else this.retireSpare(s.lease);
    }
    this.spares = keep;
    if (keep.length > 0) this.spareTimer = unrefTimeout(() => this.sweepSpares(), SPARE_LINGER_MS);
  }

  private dropSpares(): void {
    for (const s of this.spares) this.retireSpare(s.lease);
    this.spares = [];
    if (this.spareTimer !== undefined) clearTimeout(this.spareTimer);
    this.spareTimer = undefined;
  }

  /** A spare back to Redis; with Redis unreachable it is only forgotten here (it expires there by itself). */
  private retireSpare(lease: Lease): void {
    if (!this.redis.up) lease.registered = false;
    this.giveBack(lease);
  }

  // --- refresh ---

  private startRefresh(): void {
    if (this.refreshTimer !== undefined) return;
    const next = (): void => {
      this.refreshTimer = unrefTimeout(() => {
        this.refreshTimer = undefined;
        if (this.held.size === 0) return;
        this.refreshAll();
        next();
      }, (this.settings().global_lease_seconds * 1000) / 3);
    };
    next();
  }

  private stopRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** Refreshes every lease held in Redis and writes in those that are not (taken during an outage, or lost there). */
  private refreshAll(): void {
    if (this.refreshing || !this.redis.up || this.held.size === 0) return;
    this.refreshing = true;
    const rc = this.settings();
    let lost = 0;
    const work = [...this.held].map(async (lease) => {
      if (!lease.registered) return this.register(lease, rc);
      const refreshed = await this.semaphore(rc, { identifier: lease.id, acquiredExternally: true }).tryAcquire();
      if (refreshed || lease.released || !lease.registered) return;
      // Expired or gone (Redis restarted empty, or this process stalled past the lease time) while its request runs.
      lease.registered = false;
      lost++;
      emitSafely(this.events, 'global-lease-error', { resourceId: this.resourceId, type: 'lost', waitSeconds: 0 });
      await this.register(lease, rc);
    });
    void Promise.all(work)
      .catch((err: unknown) => this.redisFailed(err))
      .finally(() => {
        this.refreshing = false;
        if (lost > 0) {
          log.warning('global-lease-lost', `${lost} global lease(s) of running requests were no longer in Redis; written in again`, {
            resource_id: this.resourceId,
            leases: lost,
          });
        }
      });
  }

  /**
   * Writes a running request's lease into the set, whatever the count: the request runs, so the
   * others must count it. Plain ZADD + PEXPIRE in redis-semaphore's layout (member = id, score = ms
   * of the last refresh); test/resources/global-limiter.test.ts checks that the library counts it.
   */
  private async register(lease: Lease, rc: ResourceSettings): Promise<void> {
    const key = leaseKey(this.resourceId);
    const ms = leaseMs(rc);
    const results = await this.redis.client.multi().zadd(key, Date.now(), lease.id).pexpire(key, ms).exec();
    const failed = results?.find(([err]) => err !== null)?.[0];
    if (results === null || failed) throw failed ?? new Error('transaction discarded');
    // Given back while the command was on its way: take it out again.
    if (lease.released) this.unregister(lease);
    else lease.registered = true;
  }

  // --- Redis transitions ---

  private redisFailed(err: unknown): void {
    emitSafely(this.events, 'global-lease-error', { resourceId: this.resourceId, type: 'redis', waitSeconds: 0 });
    this.redis.markDown(err instanceof Error ? err.message : String(err));
  }

  private readonly onDown = (reason: string): void => {
    if (this.enabled() && !this.inFallback) {
      this.inFallback = true;
      log.warning('global-limit-fallback', `Redis of global_limits_redis unreachable (${reason}): this process admits at most global_local_share requests of the resource until it answers`, {
        resource_id: this.resourceId,
        global_local_share: this.settings().global_local_share,
        leases: this.held.size,
      });
    }
    this.pump();
  };

  private readonly onUp = (): void => {
    if (this.inFallback) {
      this.inFallback = false;
      log.info('global-limit-restored', 'Redis of global_limits_redis answers again: max_active_requests_global holds across processes again', {
        resource_id: this.resourceId,
        leases: this.held.size,
      });
    }
    // Every lease held goes (back) in first, whatever Redis lost meanwhile: the commands are sent
    // before any new acquisition on this connection. ZADD of a lease still there only refreshes it.
    const rc = this.settings();
    for (const lease of this.held) this.register(lease, rc).catch((err: unknown) => this.redisFailed(err));
    this.full = false;
    this.pump();
  };

  /** A redis-semaphore handle on this resource's set; the refresh timer is this module's (see the top). */
  private semaphore(rc: ResourceSettings, opts: { identifier: string; acquiredExternally?: true; acquireAttemptsLimit?: number; retryInterval?: number }): Semaphore {
    const ms = leaseMs(rc);
    return new (redisSemaphore().Semaphore)(this.redis.client, semaphoreName(this.resourceId), Math.max(1, rc.max_active_requests_global), {
      ...opts,
      lockTimeout: ms,
      acquireTimeout: ms,
      refreshInterval: 0,
    });
  }
}

function leaseMs(rc: ResourceSettings): number {
  return Math.round(rc.global_lease_seconds * 1000);
}

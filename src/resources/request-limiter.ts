/**
 * RequestLimiter: how many requests may use one resource at once (active) and how many may wait
 * for that (pending, FIFO). Both limits are read from the settings reader at the moment they matter,
 * so a reload takes effect on the next arrival or release (and at once through admitWaiting()).
 *
 * Hand-written: the semaphore libraries we looked at fix their limit at construction and lack
 * one of bounded queue / per-waiter timeout / AbortSignal; this is a FIFO queue with one timer.
 */
import { AppTimeoutError, TooManyPendingError } from '../errors.js';
import { maxActiveRequests, type ResourceSettings } from '../config/index.js';
import { getLogger } from '../log/index.js';
import { emitSafely, type ResourceEvents } from './events.js';
import { abortReason, nowMs, secondsSince, unrefTimeout, type CancelSignal } from './util.js';

const log = getLogger('request-limiter.ts');

export interface SlotGrant {
  /** Seconds the request waited for its slot. */
  readonly waitSeconds: number;
  /** Gives the slot back. Exactly once: later calls are ignored (and logged as the bug they are). */
  readonly release: () => void;
}

interface Waiter {
  readonly enqueuedAt: number;
  /** nowMs() after which the wait fails with a timeout. */
  readonly deadline: number;
  readonly timeoutSeconds: number;
  readonly resolve: (grant: SlotGrant) => void;
  readonly reject: (err: Error) => void;
  readonly signal: CancelSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

export class RequestLimiter {
  private active = 0;
  /** A Set iterates in insertion order (FIFO) and removes a timed-out or aborted waiter in O(1). */
  private readonly waiters = new Set<Waiter>();
  private closedWith: Error | undefined;
  /**
   * One timer for the whole queue, due at the earliest deadline, rather than a timer per waiter
   * (set and cleared on every queued request). A waiter granted before its deadline costs no timer
   * work; when the timer fires it fails what is due and re-arms for the next deadline.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  /** Releases called more than once: always a bug in the caller. */
  private doubleReleases = 0;

  constructor(
    readonly resourceId: string,
    private readonly events: ResourceEvents,
    /** This resource's live settings, read at each use. */
    private readonly settings: () => ResourceSettings,
  ) {}

  stats(): { active: number; pending: number; doubleReleases: number } {
    return { active: this.active, pending: this.waiters.size, doubleReleases: this.doubleReleases };
  }

  /**
   * Resolves with a slot, at once or after waiting in line. Rejects with TooManyPendingError when the
   * line is full, AppTimeoutError after request_slot_timeout, the signal's reason when it aborts,
   * or the close error once close() was called.
   */
  acquire(signal?: CancelSignal): Promise<SlotGrant> {
    const slot = this.acquireNow(signal);
    return slot instanceof Promise ? slot : Promise.resolve(slot);
  }

  /** Whether grantNow() would succeed: open, nobody waiting, and a slot free under the live limit. */
  canGrantNow(): boolean {
    return this.closedWith === undefined && this.waiters.size === 0 && this.active < maxActiveRequests(this.settings());
  }

  /** A slot without waiting, when canGrantNow() said so in the same turn; undefined otherwise (nothing counted). */
  grantNow(): SlotGrant | undefined {
    if (!this.canGrantNow()) return undefined;
    emitSafely(this.events, 'slot-requested', { resourceId: this.resourceId });
    return this.grant(undefined);
  }

  /** Like acquire(), but a slot free right away comes back as is: the common case needs no promise. */
  acquireNow(signal?: CancelSignal): SlotGrant | Promise<SlotGrant> {
    const rid = this.resourceId;
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    emitSafely(this.events, 'slot-requested', { resourceId: rid });
    const start = nowMs();
    if (this.canGrantNow()) return this.grant(start);
    const rc = this.settings();
    if (this.waiters.size >= rc.max_pending_requests) {
      emitSafely(this.events, 'slot-error', { resourceId: rid, type: 'overload', waitSeconds: 0 });
      // The queue turns over within one slot timeout: a sensible moment to try again.
      return Promise.reject(new TooManyPendingError(`too many pending requests for resource ${rid}`, { resourceId: rid, retryAfterSeconds: rc.request_slot_timeout }));
    }
    const timeoutSeconds = rc.request_slot_timeout;
    return new Promise<SlotGrant>((resolve, reject) => {
      const onAbort = signal && ((): void => {
        if (!this.waiters.delete(waiter)) return;
        reject(abortReason(signal));
      });
      const waiter: Waiter = { enqueuedAt: start, deadline: start + timeoutSeconds * 1000, timeoutSeconds, resolve, reject, signal, onAbort };
      if (signal && onAbort) signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
      this.armTimer(waiter.deadline);
    });
  }

  /** Makes sure the queue timer fires by `deadline`. */
  private armTimer(deadline: number): void {
    if (this.timer !== undefined && this.timerDue <= deadline) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = deadline;
    this.timer = unrefTimeout(this.expireDue, Math.max(0, deadline - nowMs()));
  }

  /** Fails every waiter past its deadline (a reload may have shortened later ones), then re-arms. */
  private readonly expireDue = (): void => {
    this.timer = undefined;
    this.timerDue = Infinity;
    const now = nowMs();
    let next = Infinity;
    for (const w of this.waiters) {
      if (w.deadline > now) {
        next = Math.min(next, w.deadline);
        continue;
      }
      this.waiters.delete(w);
      this.detach(w);
      const rid = this.resourceId;
      emitSafely(this.events, 'slot-error', { resourceId: rid, type: 'timeout', waitSeconds: secondsSince(w.enqueuedAt) });
      w.reject(
        new AppTimeoutError(`${w.timeoutSeconds}-sec timeout waiting for a request slot for resource ${rid}`, {
          resourceId: rid,
          kind: 'slot',
          timeoutSeconds: w.timeoutSeconds,
        }),
      );
    }
    if (next !== Infinity) this.armTimer(next);
  };

  /** Stops listening for the waiter's abort. */
  private detach(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
  }

  /** Admits waiters while the live limit allows. Runs on every release and after a reload. */
  admitWaiting(): void {
    if (this.waiters.size === 0 || this.closedWith) return;
    const limit = maxActiveRequests(this.settings());
    for (const w of this.waiters) {
      if (this.active >= limit) break;
      this.waiters.delete(w);
      this.detach(w);
      w.resolve(this.grant(w.enqueuedAt));
    }
  }

  /** Refuses new requests and rejects every waiter with `err` (shutdown). Slots held stay valid until released. */
  close(err: Error): void {
    this.closedWith ??= err;
    for (const w of this.waiters) {
      this.detach(w);
      w.reject(err);
    }
    this.waiters.clear();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** `start`: when the request began waiting; undefined when it did not wait at all. */
  private grant(start: number | undefined): SlotGrant {
    const rid = this.resourceId;
    this.active++;
    const waitSeconds = start === undefined ? 0 : secondsSince(start);
    emitSafely(this.events, 'slot-acquired', { resourceId: rid, waitSeconds });
    let released = false;
    const release = (): void => {
      if (released) {
        this.doubleReleases++;
        log.warning('slot-release', 'request slot released twice; ignored', { resource_id: rid });
        return;
      }
      released = true;
      this.active--;
      emitSafely(this.events, 'slot-released', { resourceId: rid });
      this.admitWaiting();
    };
    return { waitSeconds, release };
  }
}

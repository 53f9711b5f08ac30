/**
 * RequestResources: everything one request holds of the database, and the one place that gives it
 * back. It holds a slot and a connection per resource (and how long it waited for each), counts the
 * request's running statements and the cleanups of its streams, releases early once the handler is
 * done and nothing runs, and releases exactly once, never while a statement still runs.
 *
 * The acquire hook creates it and the ResourceManager fills it; the lifecycle ends it when the
 * response closes; the query runner reports statements and streams to it. While it is being filled
 * it is the acquisition's cancel signal: the request's end stops the wait, and the manager gives
 * back whatever it had taken.
 */
import { performance } from 'node:perf_hooks';
import type { DbConnection } from '../db/types.js';
import { AppTimeoutError, ClientClosedError } from '../errors.js';
import { getLogger } from '../log/index.js';
import type { PoolLease } from './connection-pool.js';
import type { GlobalLease } from './global-limiter.js';
import type { SlotGrant } from './request-limiter.js';
import { boundedSignal, type CancelSignal } from './util.js';

const log = getLogger('request-resources.ts');

/** An already settled promise: releases that need no wait share it. */
const DONE: Promise<void> = Promise.resolve();

function logReleaseError(rid: string, err: unknown, cid: string | undefined): void {
  log.error('release-err', 'releasing a resource failed', { resource_id: rid, error: err instanceof Error ? err.message : String(err), cid });
}

/** What the request holds of one resource. */
interface Held {
  readonly rid: string;
  slot: SlotGrant | undefined;
  /** The lease of max_active_requests_global, when the resource has one. */
  global: GlobalLease | undefined;
  lease: PoolLease | undefined;
  /** Kept after release: the acquisition-stats record reads them. */
  connWaitSeconds: number;
  /** performance.now() once its connection was had: the end of its acquisition (0: not yet). */
  acquiredAt: number;
}

/** One resource's acquisition, in performance.now() milliseconds: for its trace span (src/tracing/). */
export interface Acquisition {
  readonly rid: string;
  readonly start: number;
  readonly end: number;
  readonly slotWaitSeconds: number;
  readonly connWaitSeconds: number;
  /** It never got its connection: refused, timed out, or given up when the request ended. */
  readonly failed?: true;
}

/**
 * new: nothing asked for yet; acquiring: the manager is taking slots and connections; held: the
 * route has everything it declared; released: given back, or never had (the acquisition failed).
 */
type Phase = 'new' | 'acquiring' | 'held' | 'released';

export class RequestResources implements CancelSignal {
  // A plain array: a request holds one or two resources, so a scan beats Maps per request.
  private readonly held: Held[] = [];
  private readonly ids: string[] = [];
  private phase: Phase = 'new';
  private onReleased: ((r: RequestResources) => void) | undefined;
  /** Statements running now: neither release may happen while one does. */
  private running = 0;
  /** Stops a stream still reading (its statement is cancelled before the connection goes back). */
  private cleanups: (() => Promise<void>)[] | undefined;
  /** Woken once `running` drops to zero. */
  private idleWaiter: (() => void) | undefined;
  private ended = false;
  /** performance.now() when the manager began acquiring. */
  private begunAt = 0;
  /** performance.now() when an acquisition that never completed was given up (0: none was). */
  private failedAt = 0;
  // CancelSignal: set when the request ended while its resources were still being acquired.
  aborted = false;
  private abortReason: ClientClosedError | undefined;
  private abortListeners: (() => void)[] | undefined;

  /** `cid` goes on the records of a failed acquisition or release. */
  constructor(readonly cid?: string) {}

  /** Resource ids held, in acquisition (sorted) order. */
  get resourceIds(): readonly string[] {
    return this.ids;
  }

  /** True once everything was given back (or the acquisition failed). */
  get released(): boolean {
    return this.phase === 'released';
  }

  /** The acquisition began and was given up before it completed (refused, timed out, or the request ended). */
  get acquisitionFailed(): boolean {
    return this.failedAt !== 0;
  }

  /** A statement still runs, or a stream must be stopped: giving the resources back must wait. */
  get busy(): boolean {
    return this.running > 0 || (this.cleanups !== undefined && this.cleanups.length > 0);
  }

  // --- filled by the ResourceManager ---

  /** The manager starts filling it; `onReleased` is called once, after the release. */
  begin(onReleased: (r: RequestResources) => void): void {
    if (this.phase !== 'new') throw new Error('request resources are acquired once');
    this.phase = 'acquiring';
    this.onReleased = onReleased;
    this.begunAt = performance.now();
  }

  addSlot(rid: string, grant: SlotGrant): void {
    this.ids.push(rid);
    this.held.push({ rid, slot: grant, global: undefined, lease: undefined, connWaitSeconds: 0, acquiredAt: 0 });
  }

  addLease(rid: string, lease: PoolLease): void {
    const h = this.find(rid);
    const now = performance.now();
    if (h) {
      h.lease = lease;
      h.connWaitSeconds = lease.waitSeconds;
      h.acquiredAt = now;
    } else this.held.push({ rid, slot: undefined, global: undefined, lease, connWaitSeconds: lease.waitSeconds, acquiredAt: now });
  }

  /** Taken after the slot of `rid`, before its connection. */
  addGlobalLease(rid: string, lease: GlobalLease): void {
    const h = this.find(rid);
    if (h) h.global = lease;
    else this.held.push({ rid, slot: undefined, global: lease, lease: undefined, connWaitSeconds: 0, acquiredAt: 0 });
  }

  /** Everything is held; the request may use it. */
  complete(): void {
    if (this.phase === 'acquiring') this.phase = 'held';
  }

  // --- read by the request ---

  /** Seconds this request waited for its slot of `rid` (0 when it holds none). */
  slotWaitSeconds(rid: string): number {
    return this.find(rid)?.slot?.waitSeconds ?? 0;
  }

  /** Seconds this request waited for its connection of `rid` (0 when it holds none). */
  connWaitSeconds(rid: string): number {
    return this.find(rid)?.connWaitSeconds ?? 0;
  }

  /**
   * The acquisitions that got their connection, in order: each began when the one before it ended
   * (the first when the manager began), since resources are taken one after another. When the
   * acquisition failed, last the one that never completed: the first of `requested` (the route's
   * resource ids, taken in sorted order) not acquired.
   */
  acquisitions(requested: readonly string[] = []): Acquisition[] {
    const out: Acquisition[] = [];
    let start = this.begunAt;
    for (const h of this.held) {
      if (h.acquiredAt === 0) break;
      out.push({ rid: h.rid, start, end: h.acquiredAt, slotWaitSeconds: h.slot?.waitSeconds ?? 0, connWaitSeconds: h.connWaitSeconds });
      start = h.acquiredAt;
    }
    if (this.failedAt === 0) return out;
    const rid = [...new Set(requested)].sort().find((r) => !out.some((a) => a.rid === r));
    if (rid === undefined) return out;
    const h = this.find(rid);
    out.push({ rid, start, end: this.failedAt, slotWaitSeconds: h?.slot?.waitSeconds ?? 0, connWaitSeconds: 0, failed: true });
    return out;
  }

  /** The connection held for `rid`; throws when none is (not requested, discarded or released). */
  connection(rid: string): DbConnection {
    const lease = this.find(rid)?.lease;
    if (!lease) throw new Error(`no connection to resource ${rid} is held by this request`);
    return lease.connection;
  }

  /**
   * Gives up the connection held for `rid` (closed, never pooled: it failed under a statement) and
   * takes another from its pool, waiting at most `ms` and not past the request's end; the slot stays
   * held. A read that lost its connection runs again on the new one. Rejects with the pool's error
   * (503 unreachable or breaker open, 504), AppTimeoutError past `ms`, or ClientClosedError.
   */
  async renewConnection(rid: string, ms: number): Promise<DbConnection> {
    const h = this.find(rid);
    const old = h?.lease;
    if (!h || !old) throw new Error(`no connection to resource ${rid} is held by this request`);
    h.lease = undefined;
    old.release(true);
    const seconds = Math.round(ms) / 1000;
    const signal = boundedSignal(this, ms, () => new AppTimeoutError(`${seconds}-sec timeout waiting for a fresh connection for ${rid}`, { resourceId: rid, kind: 'pool', timeoutSeconds: seconds }));
    try {
      const lease = await old.pool.acquire(signal);
      if (this.phase === 'released') {
        lease.release();
        throw new ClientClosedError();
      }
      h.lease = lease;
      return lease.connection;
    } finally {
      signal.dispose();
    }
  }

  /** Closes the connection held for `rid` instead of pooling it (the caller knows it is bad); the slot stays held. */
  discard(rid: string): void {
    const h = this.find(rid);
    const lease = h?.lease;
    if (!h || !lease) return;
    h.lease = undefined;
    lease.release(true);
  }

  // --- statements and streams (the query runner) ---

  statementStarted(): void {
    this.running++;
  }

  /** Counts a statement as ended and wakes whoever waits for the last one. */
  statementEnded(): void {
    this.running--;
    if (this.running > 0 || this.idleWaiter === undefined) return;
    const wake = this.idleWaiter;
    this.idleWaiter = undefined;
    wake();
  }

  /** Work that must finish before the resources go back: stopping a stream's statement. */
  addCleanup(cleanup: () => Promise<void>): void {
    (this.cleanups ??= []).push(cleanup);
  }

  removeCleanup(cleanup: () => Promise<void>): void {
    const i = this.cleanups?.indexOf(cleanup) ?? -1;
    if (i !== -1) this.cleanups?.splice(i, 1);
  }

  // --- giving back ---

  /**
   * Gives everything back now if nothing runs (the handler is done with the database, or the body
   * is complete): a queued request starts while this reply is written. Otherwise does nothing; the
   * request's end releases.
   */
  releaseIfIdle(): void {
    if (this.phase === 'held' && !this.busy) this.releaseNow();
  }

  /**
   * Gives everything back once every statement has ended and every stream is stopped; exactly
   * once. When nothing runs the release is done before this returns (the promise is already settled).
   */
  release(): Promise<void> {
    if (this.phase === 'released') return DONE;
    if (!this.busy) {
      this.releaseNow();
      return DONE;
    }
    const cleanups = this.cleanups ?? [];
    return Promise.all([this.statementsEnded(), ...cleanups.map((cleanup) => cleanup())]).then(() => this.releaseNow());
  }

  /** Gives everything back at once: connections, then global leases, then slots. Idempotent. */
  releaseNow(): void {
    if (this.phase === 'released') return;
    if (this.phase === 'acquiring') this.failedAt = performance.now();
    this.phase = 'released';
    // Connection before slot: a waiter admitted by the slot then finds the connection back in the pool.
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i];
      const lease = h.lease;
      h.lease = undefined;
      const global = h.global;
      h.global = undefined;
      this.releaseStep(h.rid, lease);
      this.releaseStep(h.rid, global);
      this.releaseStep(h.rid, h.slot);
    }
    try {
      this.onReleased?.(this);
    } catch (err) {
      logReleaseError(this.ids.join(','), err, this.cid);
    }
  }

  /**
   * The request ended (its response closed). Resources not yet asked for never will be, a wait for
   * them is cancelled (the manager gives back what it had taken), statements still running are
   * stopped on the server (this is their signal: nobody is left to answer), and what is held goes
   * back once nothing runs. Undefined when everything is done at once, else a promise that settles
   * after the release. Only the first call acts.
   */
  end(): Promise<void> | undefined {
    if (this.ended) return undefined;
    this.ended = true;
    if (this.phase === 'new' || this.phase === 'acquiring') {
      this.abort();
      return undefined;
    }
    if (this.phase !== 'held') return undefined;
    if (!this.busy) {
      this.releaseNow();
      return undefined;
    }
    if (this.running > 0) this.abort();
    return this.release();
  }

  // --- CancelSignal ---

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.abortListeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.abortListeners?.indexOf(listener) ?? -1;
    if (i !== -1) this.abortListeners?.splice(i, 1);
  }

  /**
   * Why the request's waits were aborted. The client-closed error is made when first read, not when
   * the request ends: most requests end with nothing waiting, and an error's stack trace costs
   * microseconds on every one of them.
   */
  get reason(): ClientClosedError | undefined {
    if (this.aborted) this.abortReason ??= new ClientClosedError();
    return this.abortReason;
  }

  /** Aborts the waits: the client closed (its error is made when `reason` is read). */
  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.abortListeners;
    this.abortListeners = undefined;
    if (listeners) for (const l of listeners) l();
  }

  /** Settles once no statement of the request runs. */
  private statementsEnded(): Promise<void> {
    if (this.running === 0) return DONE;
    return new Promise((resolve) => {
      const earlier = this.idleWaiter;
      this.idleWaiter = () => {
        earlier?.();
        resolve();
      };
    });
  }

  /** Runs one release step; a failure is logged so that it cannot keep the other steps from running. */
  private releaseStep(rid: string, step: { release(): void } | undefined): void {
    if (step === undefined) return;
    try {
      step.release();
    } catch (err) {
      logReleaseError(rid, err, this.cid);
    }
  }

  private find(rid: string): Held | undefined {
    for (const h of this.held) if (h.rid === rid) return h;
    return undefined;
  }
}

/**
 * What one request holds: a slot and a connection per resource, and how long it waited for each.
 * One object per request, so the wait times of the acquisition-stats record can never leak
 * between requests.
 */
import type { DbConnection } from '../db/types.js';
import type { PoolLease } from './connection-pool.js';
import type { SlotGrant } from './request-limiter.js';
import { getLogger } from '../log/index.js';

const log = getLogger('acquired-resources.ts');

/** What release() returns: the work is synchronous, so every call can share one settled promise. */
const RELEASED: Promise<void> = Promise.resolve();

function logReleaseError(rid: string, err: unknown): void {
  log.error('release-err', 'releasing a resource failed', { resource_id: rid, error: err instanceof Error ? err.message : String(err) });
}

/** Runs one release step; a failure is logged so that it cannot keep the other steps from running. */
function releaseStep(rid: string, step: { release(): void } | undefined): void {
  if (step === undefined) return;
  try {
    step.release();
  } catch (err) {
    logReleaseError(rid, err);
  }
}

export interface AcquiredResources {
  /** Resource ids held, in acquisition (sorted) order. */
  readonly resourceIds: readonly string[];
  /** Seconds this request waited for its slot of `rid` (0 when it holds none). */
  slotWaitSeconds(rid: string): number;
  /** Seconds this request waited for its connection of `rid` (0 when it holds none). */
  connWaitSeconds(rid: string): number;
  /** True once release() was called. */
  readonly released: boolean;
  /** The connection held for `rid`; throws when none is (not requested, discarded or released). */
  connection(rid: string): DbConnection;
  /** Closes the connection held for `rid` instead of pooling it (the caller knows it is bad); the slot stays held. */
  discard(rid: string): void;
  /** Gives everything back: connections first, then slots. Idempotent; every call returns the same promise. */
  release(): Promise<void>;
  /** The same, synchronously (nothing in a release waits). Idempotent. */
  releaseNow(): void;
}

/** What the request holds of one resource. */
interface Held {
  readonly rid: string;
  slot: SlotGrant | undefined;
  lease: PoolLease | undefined;
  /** Kept after release: the acquisition-stats record reads them. */
  connWaitSeconds: number;
}

export class Holding implements AcquiredResources {
  // A plain array: a request holds one or two resources, so a scan beats five Maps per request.
  private readonly held: Held[] = [];
  private readonly ids: string[] = [];
  private isReleased = false;

  constructor(private readonly onReleased: (h: Holding) => void) {}

  get resourceIds(): readonly string[] {
    return this.ids;
  }

  get released(): boolean {
    return this.isReleased;
  }

  addSlot(rid: string, grant: SlotGrant): void {
    this.ids.push(rid);
    this.held.push({ rid, slot: grant, lease: undefined, connWaitSeconds: 0 });
  }

  addLease(rid: string, lease: PoolLease): void {
    const h = this.find(rid);
    if (h) {
      h.lease = lease;
      h.connWaitSeconds = lease.waitSeconds;
    } else this.held.push({ rid, slot: undefined, lease, connWaitSeconds: lease.waitSeconds });
  }

  slotWaitSeconds(rid: string): number {
    return this.find(rid)?.slot?.waitSeconds ?? 0;
  }

  connWaitSeconds(rid: string): number {
    return this.find(rid)?.connWaitSeconds ?? 0;
  }

  connection(rid: string): DbConnection {
    const lease = this.find(rid)?.lease;
    if (!lease) throw new Error(`no connection to resource ${rid} is held by this request`);
    return lease.connection;
  }

  discard(rid: string): void {
    const h = this.find(rid);
    const lease = h?.lease;
    if (!h || !lease) return;
    h.lease = undefined;
    lease.release(true);
  }

  release(): Promise<void> {
    this.releaseNow();
    return RELEASED;
  }

  releaseNow(): void {
    if (this.isReleased) return;
    this.isReleased = true;
    // Connection before slot: a waiter admitted by the slot then finds the connection back in the pool.
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i];
      const lease = h.lease;
      h.lease = undefined;
      releaseStep(h.rid, lease);
      releaseStep(h.rid, h.slot);
    }
    try {
      this.onReleased(this);
    } catch (err) {
      logReleaseError(this.ids.join(','), err);
    }
  }

  private find(rid: string): Held | undefined {
    for (const h of this.held) if (h.rid === rid) return h;
    return undefined;
  }
}

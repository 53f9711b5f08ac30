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

function guarded(rid: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error('release-err', 'releasing a resource failed', { resource_id: rid, error: err instanceof Error ? err.message : String(err) });
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
}

export class Holding implements AcquiredResources {
  private readonly slotWaits = new Map<string, number>();
  private readonly connWaits = new Map<string, number>();
  private readonly ids: string[] = [];
  private readonly slots = new Map<string, SlotGrant>();
  private readonly leases = new Map<string, PoolLease>();
  private releasing: Promise<void> | undefined;

  constructor(private readonly onReleased: (h: Holding) => void) {}

  get resourceIds(): readonly string[] {
    return this.ids;
  }

  get released(): boolean {
    return this.releasing !== undefined;
  }

  addSlot(rid: string, grant: SlotGrant): void {
    this.ids.push(rid);
    this.slots.set(rid, grant);
    this.slotWaits.set(rid, grant.waitSeconds);
  }

  addLease(rid: string, lease: PoolLease): void {
    this.leases.set(rid, lease);
    this.connWaits.set(rid, lease.waitSeconds);
  }

  slotWaitSeconds(rid: string): number {
    return this.slotWaits.get(rid) ?? 0;
  }

  connWaitSeconds(rid: string): number {
    return this.connWaits.get(rid) ?? 0;
  }

  connection(rid: string): DbConnection {
    const lease = this.leases.get(rid);
    if (!lease) throw new Error(`no connection to resource ${rid} is held by this request`);
    return lease.connection;
  }

  discard(rid: string): void {
    const lease = this.leases.get(rid);
    if (!lease) return;
    this.leases.delete(rid);
    lease.release(true);
  }

  release(): Promise<void> {
    this.releasing ??= this.releaseAll();
    return this.releasing;
  }

  private async releaseAll(): Promise<void> {
    // Connection before slot: a waiter admitted by the slot then finds the connection back in the pool.
    // Each step guarded: one failure must not keep the others held.
    for (const rid of [...this.ids].reverse()) {
      const lease = this.leases.get(rid);
      this.leases.delete(rid);
      guarded(rid, () => lease?.release());
      const slot = this.slots.get(rid);
      this.slots.delete(rid);
      guarded(rid, () => slot?.release());
    }
    this.onReleased(this);
  }
}

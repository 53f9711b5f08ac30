import { EventEmitter } from 'node:events';
import { beforeEach, describe, expect, it } from 'vitest';
import { AppTimeoutError, ClientClosedError, TooManyPendingError, ShuttingDownError } from '../../src/errors.js';
import { config, resourceSettingsOf } from '../../src/config/index.js';
import type { ResourceEventMap } from '../../src/resources/events.js';
import { RequestLimiter, type SlotGrant } from '../../src/resources/request-limiter.js';
import { RequestResources } from '../../src/resources/request-resources.js';
import type { CancelSignal } from '../../src/resources/util.js';
import { outcome, reloadWith, tick, useConfig } from './helpers.js';

const RID = 'db_a';

function limiter(): { lim: RequestLimiter; events: EventEmitter<ResourceEventMap> } {
  const events = new EventEmitter<ResourceEventMap>();
  return { lim: new RequestLimiter(RID, events, () => resourceSettingsOf(config(), RID)), events };
}

describe('RequestLimiter', () => {
  beforeEach(() => useConfig({ [RID]: { db_max_conn_pool_size: 2, max_active_requests: 1, max_pending_requests: 10 } }));

  it('admits waiters in arrival order', async () => {
    const { lim } = limiter();
    const first = await lim.acquire();
    const order: number[] = [];
    const waiting = [1, 2, 3, 4, 5].map((i) =>
      lim.acquire().then((g) => {
        order.push(i);
        return g;
      }),
    );
    expect(lim.stats()).toMatchObject({ active: 1, pending: 5 });
    let grant: SlotGrant = first;
    for (const w of waiting) {
      grant.release();
      grant = await w;
    }
    grant.release();
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(lim.stats()).toMatchObject({ active: 0, pending: 0 });
  });

  it('refuses at once what the limits cannot hold, and counts match the limits', async () => {
    useConfig({ [RID]: { db_max_conn_pool_size: 2, max_active_requests: 2, max_pending_requests: 3 } });
    const { lim, events } = limiter();
    const overloads: number[] = [];
    events.on('slot-error', (e) => e.type === 'overload' && overloads.push(1));
    const all = Array.from({ length: 10 }, () => outcome(lim.acquire()));
    await tick();
    expect(lim.stats()).toMatchObject({ active: 2, pending: 3 });
    expect(overloads).toHaveLength(5);
    const refused = await Promise.all(all.slice(5)); // already settled: refused without waiting
    for (const r of refused) {
      expect(r).toBeInstanceOf(TooManyPendingError);
      expect((r as TooManyPendingError).message).toBe(`too many pending requests for resource ${RID}`);
      expect((r as TooManyPendingError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    }
    lim.close(new ShuttingDownError());
    for (const g of await Promise.all(all.slice(0, 2))) (g as SlotGrant).release();
  });

  it('times a waiter out with AppTimeoutError(kind slot)', async () => {
    useConfig({ [RID]: { max_active_requests: 1, request_slot_timeout: 0.05 } });
    const { lim } = limiter();
    const held = await lim.acquire();
    const err = await outcome(lim.acquire());
    expect(err).toBeInstanceOf(AppTimeoutError);
    expect(err).toMatchObject({ kind: 'slot', timeoutSeconds: 0.05, message: `0.05-sec timeout waiting for a request slot for resource ${RID}` });
    expect(lim.stats()).toMatchObject({ active: 1, pending: 0 });
    held.release();
    expect(lim.stats().active).toBe(0);
  });

  it('times each waiter out at its own deadline, also when a reload shortened the timeout of later ones', async () => {
    useConfig({ [RID]: { max_active_requests: 1, request_slot_timeout: 0.4 } });
    const { lim } = limiter();
    const held = await lim.acquire();
    const settledAt = (p: Promise<SlotGrant>) => outcome(p).then((r) => ({ r, at: performance.now() }));
    const start = performance.now();
    const granted = lim.acquire();
    const early = settledAt(lim.acquire());
    const late = settledAt(lim.acquire());
    reloadWith({ [RID]: { max_active_requests: 1, request_slot_timeout: 0.1 } });
    const shortened = settledAt(lim.acquire());
    // The second waiter gets the slot before any deadline: it must not be failed later by the shared timer.
    held.release();
    const second = await granted;

    const s = await shortened;
    expect(s.r).toBeInstanceOf(AppTimeoutError);
    expect(s.at - start).toBeLessThan(350); // its own 0.1 s, not the head's 0.4 s
    const [e, l] = await Promise.all([early, late]);
    expect(e.r).toBeInstanceOf(AppTimeoutError);
    expect(l.r).toBeInstanceOf(AppTimeoutError);
    expect((e.r as AppTimeoutError).timeoutSeconds).toBe(0.4);
    expect(e.at - start).toBeGreaterThanOrEqual(390);
    expect(lim.stats()).toMatchObject({ active: 1, pending: 0 });
    second.release();
    expect(lim.stats()).toMatchObject({ active: 0, pending: 0 });
  });

  it('an aborted waiter leaves the queue and leaks no slot', async () => {
    const { lim } = limiter();
    const held = await lim.acquire();
    const ac = new AbortController();
    const waiting = outcome(lim.acquire(ac.signal));
    const behind = lim.acquire();
    ac.abort();
    expect((await waiting) as Error).toHaveProperty('name', 'AbortError');
    expect(lim.stats()).toMatchObject({ active: 1, pending: 1 });
    held.release();
    (await behind).release();
    expect(lim.stats()).toMatchObject({ active: 0, pending: 0 });
  });

  it('a request ended while it waits (its RequestResources) cancels its waiter, once, and a granted waiter stops listening', async () => {
    const { lim } = limiter();
    const held = await lim.acquire();
    const gone = new RequestResources();
    gone.begin(() => undefined);
    const waiting = outcome(lim.acquire(gone));
    // A signal that shows who listens: a granted waiter must leave no listener behind.
    const listening = new Set<() => void>();
    const kept: CancelSignal = {
      aborted: false,
      reason: undefined,
      addEventListener: (_t, l) => listening.add(l),
      removeEventListener: (_t, l) => listening.delete(l),
    };
    const behind = lim.acquire(kept);
    expect(listening.size).toBe(1);
    expect(gone.end()).toBeUndefined();
    expect(gone.end()).toBeUndefined();
    const reason = await waiting;
    expect(reason).toBeInstanceOf(ClientClosedError);
    expect(gone.reason).toBe(reason);
    held.release();
    const g = await behind;
    expect(listening.size).toBe(0);
    expect(lim.stats()).toMatchObject({ active: 1, pending: 0 });
    g.release();
    expect(lim.stats()).toMatchObject({ active: 0, pending: 0 });
  });

  it('a second release is a no-op, counted as a bug', async () => {
    const { lim } = limiter();
    const g = await lim.acquire();
    const other = lim.acquire();
    g.release();
    g.release();
    const g2 = await other;
    expect(lim.stats()).toMatchObject({ active: 1, doubleReleases: 1 });
    g2.release();
    expect(lim.stats().active).toBe(0);
  });

  it('a reload raising the active limit admits waiters at once; lowering cancels nothing', async () => {
    useConfig({ [RID]: { db_max_conn_pool_size: 4, max_active_requests: 1, request_slot_timeout: 5 } });
    const { lim } = limiter();
    const first = await lim.acquire();
    const waiters = [lim.acquire(), lim.acquire()];
    reloadWith({ [RID]: { db_max_conn_pool_size: 4, max_active_requests: 3, request_slot_timeout: 5 } });
    lim.admitWaiting(); // what the manager does on 'reload'
    const granted = await Promise.all(waiters);
    expect(lim.stats()).toMatchObject({ active: 3, pending: 0 });

    reloadWith({ [RID]: { db_max_conn_pool_size: 4, max_active_requests: 1, request_slot_timeout: 5 } });
    lim.admitWaiting();
    const next = lim.acquire();
    expect(lim.stats()).toMatchObject({ active: 3, pending: 1 });
    first.release();
    granted[0].release();
    await tick();
    expect(lim.stats()).toMatchObject({ active: 1, pending: 1 });
    granted[1].release();
    (await next).release();
    expect(lim.stats()).toMatchObject({ active: 0, pending: 0 });
  });

  it('close() rejects waiters and refuses newcomers', async () => {
    const { lim } = limiter();
    const held = await lim.acquire();
    const waiting = outcome(lim.acquire());
    lim.close(new ShuttingDownError());
    expect(await waiting).toBeInstanceOf(ShuttingDownError);
    expect(await outcome(lim.acquire())).toBeInstanceOf(ShuttingDownError);
    held.release();
    expect(lim.stats()).toMatchObject({ active: 0, pending: 0 });
  });
});

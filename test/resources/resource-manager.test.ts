import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { buildSettings, config, resourceSettingsOf } from '../../src/config/index.js';
import { AppTimeoutError, ClientClosedError, ConfigError, DatabaseError, NotFoundError, ShuttingDownError, TooManyPendingError } from '../../src/errors.js';
import { setLogDestination } from '../../src/log/index.js';
import { RequestResources } from '../../src/resources/request-resources.js';
import { ResourceManager } from '../../src/resources/resource-manager.js';
import { FakeConnector } from './fake-connector.js';
import { FAST, outcome, reloadWith, until, useConfig } from './helpers.js';

let managers: ResourceManager[] = [];
let connectors: Record<string, FakeConnector> = {};

function manager(): ResourceManager {
  const m = new ResourceManager({ connectorFor: (rid) => (connectors[rid] ??= new FakeConnector(rid)) });
  managers.push(m);
  m.start();
  return m;
}

function expectIdle(m: ResourceManager, rids: string[]): void {
  for (const rid of rids) expect(m.stats(rid)).toMatchObject({ active: 0, pending: 0, inUse: 0 });
}

afterEach(async () => {
  await Promise.all(managers.map((m) => m.shutdown(1)));
  managers = [];
  connectors = {};
});

describe('ResourceManager', () => {
  it('acquires a slot and a connection per resource, once each, with per-request wait times', async () => {
    useConfig({ db_a: {}, db_b: {} });
    const m = manager();
    const seen: string[] = [];
    m.on('slot-acquired', (e) => seen.push(`slot:${e.resourceId}`));
    m.on('conn-acquired', (e) => seen.push(`conn:${e.resourceId}`));
    const r1 = await m.acquire(['db_b', 'db_a', 'db_b']);
    const r2 = await m.acquire(['db_a']);
    expect(r1.resourceIds).toEqual(['db_a', 'db_b']);
    expect(seen).toEqual(['slot:db_a', 'conn:db_a', 'slot:db_b', 'conn:db_b', 'slot:db_a', 'conn:db_a']);
    for (const rid of ['db_a', 'db_b']) {
      expect(r1.slotWaitSeconds(rid)).toBeGreaterThanOrEqual(0);
      expect(r1.connWaitSeconds(rid)).toBeGreaterThanOrEqual(0);
    }
    expect(r2.connWaitSeconds('db_b')).toBe(0); // not held by r2: per-request values, nothing shared
    expect(r1.connection('db_a').connId).not.toBe(r2.connection('db_a').connId);
    expect(m.stats('db_a')).toEqual({ active: 2, pending: 0, open: 2, pooled: 0, inUse: 2, breaker: 0, maxActive: 2, maxConnections: 2 });
    const p = r1.release();
    expect(r1.release()).toBe(p);
    await p;
    await r2.release();
    await r2.release();
    expect(r1.released).toBe(true);
    expect(() => r1.connection('db_a')).toThrow();
    expectIdle(m, ['db_a', 'db_b']);
  });

  it('acquireNow lends a free slot and idle connection synchronously, and otherwise holds and counts nothing', async () => {
    useConfig({ db_a: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 1 } });
    const m = manager();
    const requested: string[] = [];
    m.on('slot-requested', (e) => requested.push(e.resourceId));
    expect(m.acquireNow(['db_a'])).toBeUndefined(); // the minimum connection is still being opened
    await until(() => m.stats('db_a').pooled === 1);
    expect(requested).toEqual([]);

    const now = m.acquireNow(['db_a']);
    expect(now?.connection('db_a').connId).toBe(1);
    expect(now?.slotWaitSeconds('db_a')).toBe(0);
    expect(m.stats('db_a')).toMatchObject({ active: 1, pooled: 0, inUse: 1 });
    expect(requested).toEqual(['db_a']);

    // Slot taken: nothing lent, nothing counted; the waiting path queues behind it.
    expect(m.acquireNow(['db_a'])).toBeUndefined();
    expect(requested).toEqual(['db_a']);
    const waiting = m.acquire(['db_a']);
    await until(() => m.stats('db_a').pending === 1);
    // Someone queued: acquireNow must not jump the line even once the slot is free.
    now?.releaseNow();
    expect(now?.released).toBe(true);
    expect(m.acquireNow(['db_a'])).toBeUndefined();
    const second = await waiting;
    expect(second.connection('db_a').connId).toBe(1);
    await second.release();

    expect(m.acquireNow(['db_a', 'db_a'])).toBeUndefined(); // more than one id: the general path
    await m.shutdown(1);
    expect(m.acquireNow(['db_a'])).toBeUndefined();
    expectIdle(m, ['db_a']);
  });

  it('refuses an unknown resource with 404', async () => {
    useConfig({ db_a: {} });
    const m = manager();
    expect(m.has('db_x')).toBe(false);
    expect(await outcome(m.acquire(['db_a', 'db_x']))).toMatchObject({ statusCode: 404 });
    expect(await outcome(m.acquire(['db_x']))).toBeInstanceOf(NotFoundError);
    expectIdle(m, ['db_a']);
  });

  it('releases what it already holds when a later resource fails, and logs the failure with its limit', async () => {
    useConfig({ db_a: {}, db_b: { max_active_requests: 1, max_pending_requests: 0 } });
    const m = manager();
    const lines: string[] = [];
    setLogDestination({ write: (s: string) => lines.push(s) });
    try {
      const holder = await m.acquire(['db_b']);
      const err = await outcome(m.acquire(['db_b', 'db_a'], new RequestResources('abc123def456')));
      expect(err).toBeInstanceOf(TooManyPendingError);
      expect(err).toMatchObject({ statusCode: 429, resourceId: 'db_b' });
      expectIdle(m, ['db_a']);
      expect(m.stats('db_a').pooled).toBe(1);
      await holder.release();
    } finally {
      setLogDestination(process.stdout);
    }
    const slotErr = lines.find((l) => l.includes('tag=slot-err'));
    expect(slotErr).toMatch(/ERROR resource-manager\.ts tag=slot-err msg="too many pending requests" resource_id=db_b max_pending_requests=0 cid=abc123def456/);
  });

  it('a client that goes away while queued gives back what it held and leaves the queue', async () => {
    useConfig({ db_a: {}, db_b: { max_active_requests: 1, request_slot_timeout: 5 } });
    const m = manager();
    const holder = await m.acquire(['db_b']);
    const request = new RequestResources();
    const waiting = outcome(m.acquire(['db_a', 'db_b'], request));
    await until(() => m.stats('db_b').pending === 1);
    expect(m.stats('db_a')).toMatchObject({ active: 1, inUse: 1 });
    expect(request.end()).toBeUndefined(); // the request's end while it waits
    expect(await waiting).toBeInstanceOf(ClientClosedError);
    expect(request.released).toBe(true);
    expectIdle(m, ['db_a']);
    expect(m.stats('db_b')).toMatchObject({ active: 1, pending: 0 });
    await holder.release();
    expectIdle(m, ['db_a', 'db_b']);
  });

  it('a request that ended before it asked takes nothing, on either path', async () => {
    useConfig({ db_a: { db_min_conn_pool_size: 1 } });
    const m = manager();
    await until(() => m.stats('db_a').pooled === 1);
    const ended = new RequestResources();
    expect(ended.end()).toBeUndefined(); // the client left while its body was read
    expect(m.acquireNow(['db_a'], ended)).toBeUndefined();
    expect(await outcome(m.acquire(['db_a'], ended))).toBeInstanceOf(ClientClosedError);
    expect(ended.released).toBe(true);
    expectIdle(m, ['db_a']);
    expect(m.stats('db_a').pooled).toBe(1);
  });

  it('one resource: a failure at any step gives back what was held and is logged once', async () => {
    useConfig({ db_a: { max_active_requests: 1, max_pending_requests: 1, request_slot_timeout: 0.1, db_conn_pool_acquire_timeout: 0.1, db_conn_timeout: 5 } });
    connectors.db_a = new FakeConnector('db_a');
    connectors.db_a.connectDelayMs = 600; // the slot is free, the first connection is late
    const m = manager();
    const lines: string[] = [];
    setLogDestination({ write: (s: string) => lines.push(s) });
    try {
      const late = await outcome(m.acquire(['db_a'], new RequestResources('cid0pool')));
      expect(late).toBeInstanceOf(AppTimeoutError);
      expect(late).toMatchObject({ statusCode: 504, kind: 'pool' });
      expectIdle(m, ['db_a']);
      await until(() => m.stats('db_a').open === 1);

      const holder = await m.acquire(['db_a']);
      const queued = outcome(m.acquire(['db_a'], new RequestResources('cid0slot')));
      const refused = await outcome(m.acquire(['db_a'], new RequestResources('cid0full')));
      expect(refused).toBeInstanceOf(TooManyPendingError);
      expect(await queued).toMatchObject({ statusCode: 504, kind: 'slot' });

      const request = new RequestResources();
      const leaving = outcome(m.acquire(['db_a'], request));
      await until(() => m.stats('db_a').pending === 1);
      request.end();
      expect(await leaving).toBeInstanceOf(ClientClosedError);
      expect(m.stats('db_a')).toMatchObject({ active: 1, pending: 0, inUse: 1 });
      await holder.release();
      expectIdle(m, ['db_a']);
    } finally {
      setLogDestination(process.stdout);
    }
    const tagsOf = (cid: string) => lines.filter((l) => l.includes(`cid=${cid}`)).map((l) => /tag=(\S+)/.exec(l)?.[1]);
    expect(tagsOf('cid0pool')).toEqual(['dbconn-timeout']);
    expect(tagsOf('cid0slot')).toEqual(['slot-timeout']);
    expect(tagsOf('cid0full')).toEqual(['slot-err']);
  });

  it('never pools an unusable connection and discards on request', async () => {
    useConfig({ db_a: {} });
    const m = manager();
    const closed: string[] = [];
    m.on('conn-closed', (e) => closed.push(e.reason));
    const r = await m.acquire(['db_a']);
    connectors.db_a.connections[0].usable = false;
    await r.release();
    const r2 = await m.acquire(['db_a']);
    expect(r2.connection('db_a').connId).toBe(2);
    r2.discard('db_a');
    expect(() => r2.connection('db_a')).toThrow();
    expect(m.stats('db_a')).toMatchObject({ active: 1, open: 0 });
    await r2.release();
    expect(closed).toEqual(['broken', 'broken']);
    expectIdle(m, ['db_a']);
  });

  it('starts with a database down, reports it unready with 503s, and becomes ready when it is back', async () => {
    useConfig({ db_a: { db_min_conn_pool_size: 1, db_conn_retry_wait_period: 0.05 }, db_b: { db_min_conn_pool_size: 1 } }, { pool_check_interval: 0.05 });
    connectors.db_a = new FakeConnector('db_a');
    connectors.db_a.failConnect = 'unreachable';
    const m = manager();
    await until(() => connectors.db_a.attempts > 0 && m.stats('db_b').open === 1);
    expect(m.readiness()).toEqual({ ready: false, unavailable: ['db_a'] });
    const err = await outcome(m.acquire(['db_a']));
    expect(err).toBeInstanceOf(DatabaseError);
    expect(err).toMatchObject({ unreachable: true });
    connectors.db_a.failConnect = undefined;
    await until(() => m.readiness().ready);
    expect(m.stats('db_a').open).toBe(1);
  });

  it('a reload raising max_active_requests admits waiting requests at once', async () => {
    useConfig({ db_a: { db_max_conn_pool_size: 3, max_active_requests: 1, request_slot_timeout: 5 } });
    const m = manager();
    const first = await m.acquire(['db_a']);
    const waiting = [m.acquire(['db_a']), m.acquire(['db_a'])];
    expect(m.stats('db_a')).toMatchObject({ active: 1, pending: 2, maxActive: 1, maxConnections: 3 });
    reloadWith({ db_a: { db_max_conn_pool_size: 3, max_active_requests: 3, request_slot_timeout: 5 } });
    const got = await Promise.race([Promise.all(waiting), sleep(1000).then(() => [])]);
    expect(got).toHaveLength(2);
    expect(m.stats('db_a')).toMatchObject({ active: 3, inUse: 3, maxActive: 3, maxConnections: 3 });
    await Promise.all([first, ...got].map((r) => r.release()));
    expectIdle(m, ['db_a']);
  });

  it('config refuses max_active_requests above db_max_conn_pool_size (the no-deadlock invariant)', () => {
    const main = { resource_ids: ['db_a'], resources: { db_a: { db_max_conn_pool_size: 2, max_active_requests: 3 } }, secure: { db_a: { db_type: 'sqlite', db_path: ':memory:' } } };
    expect(() => buildSettings(main, {}, { env: {} })).toThrow(ConfigError);
  });

  it('cannot deadlock: 500 concurrent requests over two resources in random order all settle, none waits on the pool', async () => {
    const slot = 0.1;
    const acquire = 0.1;
    const limits = { db_max_conn_pool_size: 2, max_pending_requests: 20, request_slot_timeout: slot, db_conn_pool_acquire_timeout: acquire };
    useConfig({ db_a: limits, db_b: limits });
    const m = manager();
    let open = 0;
    let maxOpen = 0;
    m.on('conn-created', () => (maxOpen = Math.max(maxOpen, ++open)));
    m.on('conn-closed', () => open--);
    const orders = [['db_a', 'db_b'], ['db_b', 'db_a'], ['db_a'], ['db_b']];
    // Each request waits at most slot + acquire per resource, one resource after the other.
    const perRequestBound = 2 * (slot + acquire) + 1;
    let slowest = 0;
    const one = async (): Promise<string> => {
      await sleep(Math.random() * 200); // arrivals spread over 0.2 s
      const rids = orders[Math.floor(Math.random() * orders.length)];
      const started = Date.now();
      let held: RequestResources | undefined;
      try {
        held = await m.acquire(rids);
        slowest = Math.max(slowest, (Date.now() - started) / 1000);
        await held.connection(rids[0]).query('SELECT 1', [], { timeoutSeconds: 1 });
        await sleep(Math.random() * 10);
        return 'ok';
      } catch (err) {
        slowest = Math.max(slowest, (Date.now() - started) / 1000);
        if (err instanceof TooManyPendingError) return '429';
        if (err instanceof AppTimeoutError) return `504-${err.kind}`;
        throw err;
      } finally {
        await held?.release();
      }
    };
    const results = await Promise.all(Array.from({ length: 500 }, one));
    expect(slowest).toBeLessThan(perRequestBound);
    const count = (k: string) => results.filter((r) => r === k).length;
    expect(count('ok')).toBeGreaterThan(0);
    expect(count('ok') + count('429') + count('504-slot')).toBe(500);
    expect(count('504-pool')).toBe(0); // a request holding a slot always found a connection
    expect(maxOpen).toBeLessThanOrEqual(4);
    expectIdle(m, ['db_a', 'db_b']);
    expect(resourceSettingsOf(config(), 'db_a').max_active_requests).toBeNull(); // = pool size
  });

  it('shutdown rejects waiters, refuses newcomers, waits for holders, and closes every connection exactly once', async () => {
    useConfig({ db_a: { db_max_conn_pool_size: 2, request_slot_timeout: 5 }, db_b: { db_min_conn_pool_size: 1 } });
    const m = manager();
    await until(() => m.stats('db_b').open === 1);
    const a1 = await m.acquire(['db_a', 'db_b']);
    const a2 = await m.acquire(['db_a']);
    const waiting = outcome(m.acquire(['db_a']));
    const done = m.shutdown(5);
    expect(m.shutdown(5)).toBe(done);
    expect(await waiting).toBeInstanceOf(ShuttingDownError);
    expect(await outcome(m.acquire(['db_b']))).toBeInstanceOf(ShuttingDownError);
    expect(m.readiness().ready).toBe(false);
    await a1.release();
    await a2.release();
    await done;
    for (const c of Object.values(connectors)) {
      expect(c.connections.length).toBeGreaterThan(0);
      expect(c.connections.every((conn) => conn.closeCalls === 1)).toBe(true);
    }
    for (const rid of ['db_a', 'db_b']) expect(m.stats(rid)).toEqual({ active: 0, pending: 0, open: 0, pooled: 0, inUse: 0, breaker: 0, maxActive: 2, maxConnections: 2 });
  });

  it('shutdown is bounded: connections still held after the timeout are closed', async () => {
    useConfig({ db_a: FAST });
    const m = manager();
    const stuck = await m.acquire(['db_a']);
    const started = Date.now();
    await m.shutdown(0.1);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(connectors.db_a.connections[0].closeCalls).toBe(1);
    await stuck.release(); // late: nothing left to give back
    expect(connectors.db_a.connections[0].closeCalls).toBe(1);
    expectIdle(m, ['db_a']);
  });
});

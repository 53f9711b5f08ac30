/**
 * max_active_requests_global against a real Redis: a lease is refreshed while its request runs
 * (so it outlives global_lease_seconds), every lease is given back exactly once whatever ends its
 * request (release, a second release, a client leaving while it waits, a timeout, shutdown), and a
 * Redis that goes away makes each process fall back to global_local_share, said once, then counts
 * what it ran meanwhile in Redis when it is back. Each "process" here is a GlobalRedis connection of its own.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { Semaphore } from 'redis-semaphore';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { config, resourceSettingsOf, type ResourceSettings } from '../../src/config/index.js';
import { AppTimeoutError, ClientClosedError } from '../../src/errors.js';
import { setLogDestination } from '../../src/log/index.js';
import type { ResourceEventMap } from '../../src/resources/events.js';
import { GlobalLimiter, leaseKey, REUSE_MS, semaphoreName } from '../../src/resources/global-limiter.js';
import { GlobalRedis } from '../../src/resources/global-redis.js';
import { RequestResources } from '../../src/resources/request-resources.js';
import { ResourceManager } from '../../src/resources/resource-manager.js';
import { ownRedis, TEST_REDIS_URL, type OwnRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait.js';
import { FakeConnector } from './fake-connector.js';
import { outcome, reloadWith, useConfig } from './helpers.js';

const newRid = (): string => `gl_${randomBytes(4).toString('hex')}`;

const links: GlobalRedis[] = [];
const managers: ResourceManager[] = [];
const servers: OwnRedis[] = [];
const inspector = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.shutdown(1)));
  await Promise.all(links.splice(0).map((l) => l.close()));
  setLogDestination(process.stdout);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  inspector.disconnect();
});

/** One process's connection, up. */
async function link(url = TEST_REDIS_URL): Promise<GlobalRedis> {
  const l = new GlobalRedis(url);
  links.push(l);
  await l.ready(5000);
  expect(l.up).toBe(true);
  return l;
}

/** A limiter over `rid`'s live settings in the current config. */
function limiterOf(rid: string, l: GlobalRedis, events = new EventEmitter<ResourceEventMap>()): GlobalLimiter {
  return new GlobalLimiter(rid, l, events, () => resourceSettingsOf(config(), rid));
}

function configure(rid: string, over: Partial<ResourceSettings>, global: Record<string, unknown> = {}): void {
  useConfig({ [rid]: { request_slot_timeout: 5, global_lease_seconds: 1, global_local_share: 1, ...over } }, global);
}

const never = (): AbortSignal => new AbortController().signal;

/** Waits until `rid`'s lease set in `redis` is empty. */
async function setEmpty(rid: string, redis: Redis = inspector, interval?: number): Promise<void> {
  await waitFor('the set empty', async () => (await redis.zcard(leaseKey(rid))) === 0, interval === undefined ? {} : { interval });
}

describe('GlobalLimiter', () => {
  it('refreshes a lease while its request runs: another process stays out past the lease time, then gets it once released', async () => {
    const rid = newRid();
    configure(rid, { max_active_requests_global: 1, global_lease_seconds: 1, request_slot_timeout: 2.5 });
    const a = limiterOf(rid, await link());
    const b = limiterOf(rid, await link());
    const held = await a.acquire(never(), 0);
    const firstScore = Number(await inspector.zscore(leaseKey(rid), (await inspector.zrange(leaseKey(rid), 0, -1))[0]));

    // 2.5 s: more than two lease times. Without the refresh the lease would expire after 1 s and b would get it.
    const refused = await outcome(b.acquire(never(), 0));
    expect(refused).toBeInstanceOf(AppTimeoutError);
    expect(refused).toMatchObject({ statusCode: 504, kind: 'slot', timeoutSeconds: 2.5 });
    const members = await inspector.zrange(leaseKey(rid), 0, -1, 'WITHSCORES');
    expect(members).toHaveLength(2);
    expect(members[0]).toMatch(/^[^:]+:\d+:[0-9a-f-]{36}$/); // <host>:<pid>:<uuid>
    expect(Number(members[1])).toBeGreaterThan(firstScore);
    expect(b.stats()).toMatchObject({ leases: 0, waiting: 0 });

    const next = b.acquire(never(), 0);
    held.release();
    await expect(next).resolves.toBeDefined();
    expect(a.stats().leases).toBe(0);
    expect(b.stats().leases).toBe(1);
    (await next).release();
    await setEmpty(rid);
  });

  it('gives each lease back exactly once: a second release is ignored and counted, the next waiter in line gets the one freed', async () => {
    const rid = newRid();
    configure(rid, { max_active_requests_global: 1 });
    const a = limiterOf(rid, await link());
    const first = await a.acquire(never(), 0);
    const order: string[] = [];
    const second = a.acquire(never(), 0).then((l) => (order.push('second'), l));
    const third = a.acquire(never(), 0).then((l) => (order.push('third'), l));
    expect(a.stats()).toMatchObject({ leases: 1, waiting: 2 });

    const lines: string[] = [];
    setLogDestination({ write: (s: string) => lines.push(s) });
    first.release();
    first.release();
    const s = await second;
    expect(order).toEqual(['second']);
    expect(a.stats()).toMatchObject({ leases: 1, waiting: 1, doubleReleases: 1 });
    expect(lines.filter((l) => l.includes('tag=global-lease-release'))).toHaveLength(1);
    expect(await inspector.zcard(leaseKey(rid))).toBe(1);

    s.release();
    const t = await third;
    expect(order).toEqual(['second', 'third']);
    t.release();
    t.release();
    expect(a.stats()).toMatchObject({ leases: 0, waiting: 0, doubleReleases: 2 });
    await setEmpty(rid);
  });

  it('while the limit has room, passes a lease given back to the next request of the process, without Redis; gives it back to Redis soon after', async () => {
    const rid = newRid();
    configure(rid, { max_active_requests_global: 10 });
    const a = limiterOf(rid, await link());
    const first = await a.acquire(never(), 0);
    const [id] = await inspector.zrange(leaseKey(rid), 0, -1);
    first.release();
    // Still in the set (the global count never leaves it out), and the next request takes that one.
    expect(await inspector.zrange(leaseKey(rid), 0, -1)).toEqual([id]);
    expect(a.stats().leases).toBe(1);
    const second = await a.acquire(never(), 0);
    expect(await inspector.zrange(leaseKey(rid), 0, -1)).toEqual([id]);
    // Its first handle, released again, is a second release: it does not give the other request's lease away.
    first.release();
    expect(a.stats()).toMatchObject({ leases: 1, doubleReleases: 1 });
    expect(await inspector.zcard(leaseKey(rid))).toBe(1);
    second.release();
    // Nobody takes it: back to Redis within SPARE_LINGER_MS.
    await setEmpty(rid, inspector, 5);
    expect(a.stats().leases).toBe(0);
    // Past REUSE_MS after Redis granted it, a lease goes straight back: the next one is another.
    const old = await a.acquire(never(), 0);
    const [oldId] = await inspector.zrange(leaseKey(rid), 0, -1);
    await new Promise((r) => setTimeout(r, REUSE_MS + 20));
    old.release();
    expect(a.stats().leases).toBe(0);
    const fresh = await a.acquire(never(), 0);
    expect(await inspector.zrange(leaseKey(rid), 0, -1)).not.toContain(oldId);
    fresh.release();
    // Shutdown gives back a spare at once.
    a.releaseAll();
    expect(a.stats().leases).toBe(0);
    await setEmpty(rid);
  });

  it('near the limit (more than half of it counted), gives every lease back to Redis at once, for any process to take', async () => {
    const rid = newRid();
    configure(rid, { max_active_requests_global: 3 });
    const other = limiterOf(rid, await link());
    const theirs = await other.acquire(never(), 0);
    const a = limiterOf(rid, await link());
    const mine = await a.acquire(never(), 0); // counted with theirs: 2 of 3
    const [x, y] = await inspector.zrange(leaseKey(rid), 0, -1);
    mine.release();
    expect(a.stats().leases).toBe(0);
    await waitFor('only theirs left', async () => (await inspector.zcard(leaseKey(rid))) === 1);
    const again = await a.acquire(never(), 0);
    expect((await inspector.zrange(leaseKey(rid), 0, -1)).filter((m) => m !== x && m !== y)).toHaveLength(1);
    again.release();
    theirs.release();
    await setEmpty(rid);
  });

  it('falls back to global_local_share while Redis is gone, says so once, and writes what it ran meanwhile into Redis when it is back', async () => {
    const redis = await ownRedis();
    servers.push(redis);
    const rid = newRid();
    configure(rid, { max_active_requests_global: 3, global_local_share: 1 });
    const lines: string[] = [];
    setLogDestination({ write: (s: string) => lines.push(s) });
    const l = await link(redis.url);
    const a = limiterOf(rid, l);
    const registered = await a.acquire(never(), 0);

    await redis.stop();
    await waitFor('the fallback', () => a.stats().fallback);
    // The lease held in Redis counts against the share: the next waits until it is given back.
    const local = a.acquire(never(), 0);
    expect(a.stats()).toMatchObject({ leases: 1, waiting: 1 });
    registered.release();
    const localLease = await local;
    expect(a.stats()).toMatchObject({ leases: 1, waiting: 0, fallback: true });
    const over = outcome(a.acquire(never(), 0.5));
    expect(a.stats().waiting).toBe(1);
    expect(await over).toBeInstanceOf(AppTimeoutError); // 4.5 s left of 5: the share of 1 is held
    // A share raised by a reload admits at once (nothing polls Redis meanwhile).
    const raised = a.acquire(never(), 0);
    expect(a.stats().waiting).toBe(1);
    configure(rid, { max_active_requests_global: 3, global_local_share: 2 });
    a.admitWaiting();
    const second = await raised;
    expect(a.stats()).toMatchObject({ leases: 2, waiting: 0 });
    second.release();
    configure(rid, { max_active_requests_global: 3, global_local_share: 1 });
    expect(lines.filter((x) => x.includes('tag=global-limit-fallback'))).toHaveLength(1);
    expect(lines.find((x) => x.includes('tag=global-limit-fallback'))).toMatch(new RegExp(`WARNING global-limiter\\.ts tag=global-limit-fallback .*resource_id=${rid} global_local_share=1`));

    await redis.start();
    await waitFor('Redis up again', () => l.up, { timeout: 15_000 });
    expect(a.stats().fallback).toBe(false);
    expect(lines.filter((x) => x.includes('tag=global-limit-restored'))).toHaveLength(1);
    // The lease taken during the outage is in the set now, and the library's own acquisition counts it.
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      await waitFor('the local lease registered', async () => (await probe.zcard(leaseKey(rid))) === 1);
      const other = new Semaphore(probe, semaphoreName(rid), 1, { lockTimeout: 1000, acquireAttemptsLimit: 1, refreshInterval: 0 });
      expect(await other.tryAcquire()).toBe(false);
      localLease.release();
      await setEmpty(rid, probe);
    } finally {
      probe.disconnect();
    }
  }, 60_000);
});

describe('ResourceManager with max_active_requests_global', () => {
  function manager(rid: string, over: Partial<ResourceSettings>, connector?: FakeConnector): ResourceManager {
    configure(rid, { db_max_conn_pool_size: 4, max_pending_requests: 10, ...over }, { global_limits_redis: TEST_REDIS_URL });
    const m = new ResourceManager({ connectorFor: (id) => connector ?? new FakeConnector(id) });
    managers.push(m);
    m.start();
    return m;
  }

  it('takes a lease between the slot and the connection and gives everything back once, also for a client that leaves or a wait that times out', async () => {
    const rid = newRid();
    const m = manager(rid, { max_active_requests_global: 1, request_slot_timeout: 1 });
    await m.warm();
    // A lease needs Redis: never the synchronous path.
    expect(m.acquireNow([rid])).toBeUndefined();
    const holder = await m.acquire([rid]);
    expect(await inspector.zcard(leaseKey(rid))).toBe(1);
    expect(m.globalStats(rid)).toMatchObject({ leases: 1, fallback: false });

    // A client that leaves while waiting for the lease: its slot back, no lease taken.
    const leaving = new RequestResources('cidleaving01');
    const left = outcome(m.acquire([rid], leaving));
    await waitFor('waiting for the lease', () => m.globalStats(rid)?.waiting === 1);
    leaving.end();
    expect(await left).toBeInstanceOf(ClientClosedError);
    expect(m.stats(rid)).toMatchObject({ active: 1, pending: 0, inUse: 1 });

    // A wait past request_slot_timeout: 504, its slot back.
    const late = await outcome(m.acquire([rid]));
    expect(late).toBeInstanceOf(AppTimeoutError);
    expect(late).toMatchObject({ statusCode: 504, kind: 'slot' });
    expect(m.stats(rid)).toMatchObject({ active: 1, inUse: 1 });
    expect(m.globalStats(rid)).toMatchObject({ leases: 1, waiting: 0 });

    await holder.release();
    await holder.release();
    expect(m.globalStats(rid)).toMatchObject({ leases: 0, doubleReleases: 0 });
    expect(m.stats(rid)).toMatchObject({ active: 0, inUse: 0 });
    await setEmpty(rid);
  });

  it('gives the lease back when the connection after it cannot be had', async () => {
    const rid = newRid();
    const connector = new FakeConnector(rid);
    connector.failConnect = 'unreachable';
    const m = manager(rid, { max_active_requests_global: 2, db_min_conn_pool_size: 0 }, connector);
    await m.warm();
    const err = await outcome(m.acquire([rid]));
    expect(err).toMatchObject({ statusCode: 503 });
    expect(connector.attempts).toBeGreaterThan(0); // it got as far as the connection: the lease was taken
    expect(m.globalStats(rid)?.doubleReleases).toBe(0);
    // Given back once: kept as a spare for SPARE_LINGER_MS (1 of 2 in use leaves room), then back to Redis.
    await waitFor('no lease held', () => m.globalStats(rid)?.leases === 0);
    expect(m.stats(rid)).toMatchObject({ active: 0 });
    await setEmpty(rid);
  });

  it('shutdown gives back the leases of requests that outlive it; their own release afterwards is no second release', async () => {
    const rid = newRid();
    const m = manager(rid, { max_active_requests_global: 2 });
    await m.warm();
    const stuck = await m.acquire([rid]);
    stuck.statementStarted(); // a statement that never ends: the request cannot release
    void stuck.release();
    await m.shutdown(0.2);
    expect(m.globalStats(rid)).toMatchObject({ leases: 0 });
    const probe = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      expect(await probe.zcard(leaseKey(rid))).toBe(0);
    } finally {
      probe.disconnect();
    }
    stuck.statementEnded();
    await stuck.release();
    expect(m.globalStats(rid)).toMatchObject({ leases: 0, doubleReleases: 0 });
  });

  it('a limit switched off by a reload lets its waiters go, and a request then takes no lease', async () => {
    const rid = newRid();
    const m = manager(rid, { max_active_requests_global: 1, request_slot_timeout: 5 });
    await m.warm();
    const holder = await m.acquire([rid]);
    const waiting = m.acquire([rid]);
    await waitFor('waiting for the lease', () => m.globalStats(rid)?.waiting === 1);
    reloadWith({ [rid]: { request_slot_timeout: 5, db_max_conn_pool_size: 4, max_pending_requests: 10, max_active_requests_global: 0 } }, { global_limits_redis: TEST_REDIS_URL });
    const second = await waiting;
    expect(m.globalStats(rid)).toMatchObject({ leases: 1, waiting: 0 });
    await second.release();
    await holder.release();
    expect(m.globalStats(rid)).toMatchObject({ leases: 0 });
    const now = m.acquireNow([rid]);
    expect(now).toBeDefined();
    await now?.release();
  });
});


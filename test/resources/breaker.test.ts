/**
 * The circuit breaker of a resource, over its pool and the resource manager, with an in-memory
 * connector: when it opens, what it refuses, its one probe at a time, and what closes it. The same
 * against a real database going down and coming back: test/e2e/breaker.test.ts.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { config, type ResourceSettings } from '../../src/config/index.js';
import { BreakerOpenError, DatabaseError } from '../../src/errors.js';
import { DbConnectionPool } from '../../src/resources/connection-pool.js';
import type { ResourceEventMap } from '../../src/resources/events.js';
import { ResourceManager } from '../../src/resources/resource-manager.js';
import { FakeConnector } from './fake-connector.js';
import { outcome, reloadWith, until, useConfig } from './helpers.js';

const RID = 'db_a';
const BREAKER: Partial<ResourceSettings> = { breaker_failures: 3, breaker_probe_interval: 0.1, db_conn_retry_wait_period: 0.01, db_conn_pool_acquire_timeout: 5 };
let pools: DbConnectionPool[] = [];
let managers: ResourceManager[] = [];

function setup(rc: Partial<ResourceSettings> = {}) {
  useConfig({ [RID]: { ...BREAKER, ...rc } });
  const connector = new FakeConnector(RID);
  const pool = new DbConnectionPool(RID, connector, new EventEmitter<ResourceEventMap>(), config);
  pools.push(pool);
  return { pool, connector };
}

/** Acquires one at a time until the breaker opens (each failed connect counts once). */
async function failUntilOpen(pool: DbConnectionPool, max = 10): Promise<number> {
  for (let i = 1; i <= max; i++) {
    const err = await outcome(pool.acquire());
    if (err instanceof BreakerOpenError) return i;
    expect(err).toBeInstanceOf(DatabaseError);
    await sleep(15); // past db_conn_retry_wait_period, so the next acquire tries again
  }
  throw new Error('the breaker never opened');
}

afterEach(async () => {
  await Promise.all([...pools.map((p) => p.destroy()), ...managers.map((m) => m.shutdown(0))]);
  pools = [];
  managers = [];
});

describe('circuit breaker', () => {
  it('opens after breaker_failures failed connection attempts in a row and then refuses at once, attempting nothing', async () => {
    const { pool, connector } = setup();
    connector.failConnect = 'unreachable';
    await failUntilOpen(pool);
    expect(connector.attempts).toBe(3);
    expect(pool.breaker.state).not.toBe('closed');
    const err = await outcome(pool.acquire());
    expect(err).toBeInstanceOf(BreakerOpenError);
    expect(err).toMatchObject({ statusCode: 503, resourceId: RID, retryAfterSeconds: 1 });
    expect((err as Error).message).toBe(`circuit breaker open for resource ${RID}: its database failed 3 connection attempts in a row; a probe tries it again every 0.1 s`);
    expect(pool.leaseNow()).toBeUndefined();
  });

  it('while open, probes one connection at a time every breaker_probe_interval, and the first success closes it', async () => {
    const { pool, connector } = setup({ breaker_probe_interval: 0.05 });
    connector.failConnect = 'unreachable';
    await failUntilOpen(pool);
    const atOpen = connector.attempts;
    connector.maxConnecting = 0;
    // Probes that fail slowly: each takes longer than the interval, yet never two run at once.
    connector.failConnect = 'timeout';
    useConfig({ [RID]: { ...BREAKER, breaker_probe_interval: 0.05, db_conn_timeout: 0.12 } });
    const refused = await Promise.all(Array.from({ length: 20 }, () => outcome(pool.acquire())));
    for (const err of refused) expect(err).toBeInstanceOf(BreakerOpenError);
    await sleep(600);
    const probes = connector.attempts - atOpen;
    expect(probes).toBeGreaterThanOrEqual(2);
    expect(probes).toBeLessThanOrEqual(6); // one per (interval + probe time), not one per refused request
    expect(connector.maxConnecting).toBe(1);

    connector.failConnect = undefined;
    await until(() => pool.breaker.state === 'closed', 2000);
    // The probe's connection is in the pool: the next request takes it at once.
    expect(pool.stats().open).toBe(1);
    const lease = pool.leaseNow();
    expect(lease).toBeDefined();
    lease!.release();
  });

  it('a successful connection or a statement that ran resets the count: only failures in a row open it', async () => {
    const { pool, connector } = setup({ db_max_conn_pool_size: 1 });
    const lease = await pool.acquire();
    await lease.connection.query('SELECT 1', [], { timeoutSeconds: 1 });
    lease.release(true); // closed: the next acquire must connect
    connector.failConnect = 'unreachable';
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) {
        expect(await outcome(pool.acquire())).not.toBeInstanceOf(BreakerOpenError);
        await sleep(15);
      }
      connector.failConnect = undefined;
      const ok = await pool.acquire();
      await ok.connection.query('SELECT 1', [], { timeoutSeconds: 1 });
      ok.release(true);
      connector.failConnect = 'unreachable';
    }
    expect(pool.breaker.state).toBe('closed');
    expect(connector.attempts).toBe(1 + 3 * 3);
  });

  it('breaker_failures 0 never opens it, and a reload to 0 closes an open one', async () => {
    const off = setup({ breaker_failures: 0 });
    off.connector.failConnect = 'unreachable';
    for (let i = 0; i < 8; i++) {
      expect(await outcome(off.pool.acquire())).not.toBeInstanceOf(BreakerOpenError);
      await sleep(15);
    }
    expect(off.pool.breaker.state).toBe('closed');

    const on = setup({ breaker_probe_interval: 60 });
    on.connector.failConnect = 'unreachable';
    await failUntilOpen(on.pool);
    reloadWith({ [RID]: { ...BREAKER, breaker_failures: 0 } });
    on.pool.reloadConfig();
    expect(on.pool.breaker.state).toBe('closed');
  });

  it('the resource manager refuses before any slot is taken, reports the state and readiness, and answers again once closed', async () => {
    useConfig({ [RID]: { ...BREAKER, breaker_probe_interval: 0.05 } });
    const connector = new FakeConnector(RID);
    const m = new ResourceManager({ connectorFor: () => connector });
    managers.push(m);
    m.start();
    connector.failConnect = 'unreachable';
    for (let i = 0; i < 10 && m.stats(RID).breaker === 0; i++) {
      await outcome(m.acquire([RID]));
      await sleep(15);
    }
    expect(m.stats(RID).breaker).not.toBe(0);
    expect(m.readiness()).toEqual({ ready: false, unavailable: [RID] });
    const refused = await outcome(m.acquire([RID]));
    expect(refused).toBeInstanceOf(BreakerOpenError);
    expect(m.stats(RID)).toMatchObject({ active: 0, pending: 0 });

    connector.failConnect = undefined;
    await until(() => m.stats(RID).breaker === 0, 2000);
    expect(m.readiness().ready).toBe(true);
    const held = await m.acquire([RID]);
    held.releaseNow();
  });
});

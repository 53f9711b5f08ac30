import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { config, type ResourceSettings } from '../../src/config/index.js';
import { AppTimeoutError, DatabaseError, ShuttingDownError } from '../../src/errors.js';
import { DbConnectionPool } from '../../src/resources/connection-pool.js';
import type { ConnCloseReason, ResourceEventMap } from '../../src/resources/events.js';
import { FakeConnector } from './fake-connector.js';
import { outcome, reloadWith, until, useConfig } from './helpers.js';

const RID = 'db_a';
let pools: DbConnectionPool[] = [];

function setup(rc: Partial<ResourceSettings> = {}) {
  useConfig({ [RID]: rc });
  const connector = new FakeConnector(RID);
  const events = new EventEmitter<ResourceEventMap>();
  const closed: ConnCloseReason[] = [];
  const seen: (keyof ResourceEventMap)[] = [];
  for (const name of ['pool-empty', 'pool-exhausted', 'conn-created', 'conn-create-error', 'conn-acquired', 'conn-released', 'conn-acquire-error'] as const) {
    events.on(name, () => seen.push(name));
  }
  events.on('conn-closed', (e) => closed.push(e.reason));
  const pool = new DbConnectionPool(RID, connector, events, config);
  pools.push(pool);
  return { pool, connector, events, closed, seen };
}

afterEach(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  pools = [];
});

describe('DbConnectionPool', () => {
  it('opens the minimum at start and lends and takes back connections', async () => {
    const { pool, connector, seen } = setup({ db_min_conn_pool_size: 2, db_max_conn_pool_size: 3 });
    pool.start();
    await until(() => pool.stats().open === 2);
    const lease = await pool.acquire();
    expect(pool.stats()).toMatchObject({ open: 2, pooled: 1, inUse: 1 });
    await lease.connection.query('SELECT 1', [], { timeoutSeconds: 1 });
    lease.release();
    expect(pool.stats()).toMatchObject({ open: 2, pooled: 2, inUse: 0 });
    expect(connector.connections).toHaveLength(2);
    expect(seen).toEqual(['conn-created', 'conn-created', 'conn-acquired', 'conn-released']);
  });

  it('times an acquire out with AppTimeoutError(kind pool) when every connection stays in use', async () => {
    const { pool, seen } = setup({ db_max_conn_pool_size: 1, max_active_requests: 1, db_conn_pool_acquire_timeout: 0.05 });
    const held = await pool.acquire();
    const err = await outcome(pool.acquire());
    expect(err).toBeInstanceOf(AppTimeoutError);
    expect(err).toMatchObject({ kind: 'pool', message: `0.05-sec timeout waiting for a pooled connection for ${RID}` });
    expect(seen).toContain('pool-exhausted');
    expect(seen).toContain('conn-acquire-error');
    held.release();
    expect(pool.stats()).toMatchObject({ open: 1, inUse: 0, waiting: 0 });
  });

  it('fails fast with DatabaseError(unreachable) when the database cannot be reached, then recovers', async () => {
    const { pool, connector, seen } = setup({ db_conn_pool_acquire_timeout: 5, db_conn_retry_wait_period: 0.2 });
    connector.failConnect = 'unreachable';
    const started = Date.now();
    const errs = await Promise.all([outcome(pool.acquire()), outcome(pool.acquire()), outcome(pool.acquire())]);
    for (const err of errs) {
      expect(err).toBeInstanceOf(DatabaseError);
      expect(err).toMatchObject({ unreachable: true, statusCode: 503, message: `could not open a DB connection to resource ${RID}` });
    }
    expect(Date.now() - started).toBeLessThan(1000); // far below the 5 s acquire timeout
    expect(pool.available()).toBe(false);
    expect(seen).toContain('conn-create-error');

    // Within the retry wait a newcomer is refused without another attempt.
    const attempts = connector.attempts;
    expect(await outcome(pool.acquire())).toBeInstanceOf(DatabaseError);
    expect(connector.attempts).toBe(attempts);

    connector.failConnect = undefined;
    await sleep(250);
    const lease = await pool.acquire();
    expect(pool.available()).toBe(true);
    lease.release();
  });

  it('retires a connection after db_conn_max_uses statements, at release', async () => {
    const { pool, connector, closed } = setup({ db_conn_max_uses: 2 });
    const a = await pool.acquire();
    await a.connection.query('SELECT 1', [], { timeoutSeconds: 1 });
    await a.connection.transaction([], { timeoutSeconds: 1 });
    const first = a.connection.connId;
    a.release();
    await until(() => closed.length === 1);
    expect(closed).toEqual(['max-uses']);
    const b = await pool.acquire();
    expect(b.connection.connId).not.toBe(first);
    b.release();
    expect(connector.connections[0].closeCalls).toBe(1);
  });

  it('retires a connection older than db_conn_max_age, at release and when idle', async () => {
    const { pool, closed } = setup({ db_conn_max_age: 0.05, db_min_conn_pool_size: 1 });
    const a = await pool.acquire();
    await sleep(70);
    a.release();
    await until(() => closed.length === 1);
    expect(closed).toEqual(['max-age']);
    await pool.check(); // tops up to the minimum
    await until(() => pool.stats().pooled === 1);
    await sleep(70);
    await pool.check(); // retires the idle one, opens a fresh one
    await until(() => closed.length === 2 && pool.stats().pooled === 1);
    expect(closed).toEqual(['max-age', 'max-age']);
  });

  it('never pools a connection that is not usable, or that the request discarded', async () => {
    const { pool, connector, closed } = setup();
    const a = await pool.acquire();
    connector.connections[0].usable = false;
    a.release();
    const b = await pool.acquire();
    expect(b.connection.connId).not.toBe(a.connection.connId);
    await b.connection.close(); // a request closing its connection only marks it for discard
    b.release();
    const c = await pool.acquire();
    c.release(true);
    await until(() => closed.length === 3);
    expect(closed).toEqual(['broken', 'broken', 'broken']);
    expect(pool.stats().open).toBe(0);
    expect(connector.closedTwice).toBe(0);
  });

  it('never lends or pools a connection that comes back with a statement still running', async () => {
    const { pool, connector, closed } = setup({ db_min_conn_pool_size: 0, db_max_conn_pool_size: 2 });
    const a = await pool.acquire();
    connector.connections[0].busy = true; // as a stream nobody cancelled would leave it
    a.release();
    const b = await pool.acquire();
    expect(b.connection.connId).not.toBe(a.connection.connId);
    expect(b.connection.busy).toBe(false);
    b.release();
    await until(() => closed.length === 1);
    expect(closed).toEqual(['busy']);
    expect(pool.stats()).toMatchObject({ open: 1, pooled: 1, inUse: 0 });
    expect(connector.closedTwice).toBe(0);
  });

  it('pings only connections idle longer than db_conn_idle_check_after, and drops those that fail', async () => {
    const { pool, connector, closed } = setup({ db_conn_idle_check_after: 0.1 });
    const a = await pool.acquire();
    a.release();
    const b = await pool.acquire(); // just used: no ping
    b.release();
    expect(connector.connections[0].pings).toBe(0);
    await sleep(130);
    connector.pingFails = true;
    const c = await pool.acquire();
    expect(connector.connections[0].pings).toBe(1);
    expect(closed).toEqual(['ping-failed']);
    expect(c.connection.connId).toBe(connector.connections[1].connId);
    c.release();
  });

  it('an aborted acquire leaves the queue and leaks nothing', async () => {
    const { pool } = setup({ db_max_conn_pool_size: 1, max_active_requests: 1, db_conn_pool_acquire_timeout: 5 });
    const held = await pool.acquire();
    const ac = new AbortController();
    const waiting = outcome(pool.acquire(ac.signal));
    ac.abort();
    expect(await waiting).toHaveProperty('name', 'AbortError');
    expect(pool.stats().waiting).toBe(0);
    held.release();
    const next = await pool.acquire();
    next.release();
    expect(pool.stats()).toMatchObject({ open: 1, inUse: 0, waiting: 0 });
  });

  it('a second release is ignored and a released connection cannot be used', async () => {
    const { pool } = setup();
    const a = await pool.acquire();
    a.release();
    a.release();
    expect(pool.doubleReleaseCount).toBe(1);
    expect(pool.stats()).toMatchObject({ open: 1, pooled: 1, inUse: 0 });
    expect(() => a.connection.query('SELECT 1', [], { timeoutSeconds: 1 })).toThrow(/used after it was released/);
  });

  it('a reload growing the maximum serves a waiter at once; shrinking happens as connections come back', async () => {
    const { pool, closed } = setup({ db_max_conn_pool_size: 1, max_active_requests: 1, db_conn_pool_acquire_timeout: 5 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    reloadWith({ [RID]: { db_max_conn_pool_size: 3, max_active_requests: 1, db_conn_pool_acquire_timeout: 5 } });
    pool.reloadConfig(); // what the manager does on 'reload'
    const b = await Promise.race([waiting, sleep(1000).then(() => undefined)]);
    expect(b).toBeDefined();
    const c = await pool.acquire();
    expect(pool.stats()).toMatchObject({ open: 3, inUse: 3 });

    reloadWith({ [RID]: { db_max_conn_pool_size: 1, max_active_requests: 1 } });
    pool.reloadConfig();
    expect(pool.stats().open).toBe(3); // nothing taken from running requests
    a.release();
    expect(pool.stats().open).toBe(2);
    b?.release();
    expect(pool.stats().open).toBe(1);
    c.release();
    expect(pool.stats()).toMatchObject({ open: 1, pooled: 1 });
    await until(() => closed.length === 2);
    expect(closed).toEqual(['shrink', 'shrink']);
  });

  it('refuseNew() rejects waiters; destroy() closes every connection exactly once, held ones too', async () => {
    const { pool, connector, closed } = setup({ db_max_conn_pool_size: 2, db_conn_pool_acquire_timeout: 5 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    b.release();
    const waiting = outcome(pool.acquire());
    const waiting2 = outcome(pool.acquire());
    pool.refuseNew(new ShuttingDownError());
    // Even the waiter the idle connection was being validated for is refused: nothing was lent yet.
    expect(await waiting).toBeInstanceOf(ShuttingDownError);
    expect(await waiting2).toBeInstanceOf(ShuttingDownError);
    expect(pool.stats()).toMatchObject({ open: 2, pooled: 1, inUse: 1 });
    expect(await outcome(pool.acquire())).toBeInstanceOf(ShuttingDownError);
    await pool.destroy();
    await pool.destroy();
    a.release(); // late release after destroy: nothing to do
    expect(connector.connections.every((c) => c.closeCalls === 1)).toBe(true);
    expect(closed.every((r) => r === 'shutdown')).toBe(true);
    expect(pool.stats()).toMatchObject({ open: 0, inUse: 0, pooled: 0 });
  });
});

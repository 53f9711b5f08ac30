/**
 * ResourceManager: one RequestLimiter and one DbConnectionPool per enabled resource, and the
 * acquisition a request goes through before its handler runs.
 *
 * Deadlock freedom by construction: a request takes its resources in one global (sorted) order,
 * holds at most one connection per resource, max_active_requests <= db_max_conn_pool_size (the
 * config refuses anything else), and every wait has a timeout. So a request holding a slot can
 * always eventually get a connection: at most max_active requests hold slots, each needs at most
 * one connection, and the pool may open that many.
 *
 * It emits the events of events.ts (limiters and pools emit through it) and writes the
 * request-level error logs (slot-err, slot-timeout, dbconn-timeout, dbconn-err) with the request's cid.
 */
import { EventEmitter } from 'node:events';
import { config, configEvents, maxActiveRequests, resourceSettingsOf, type SettingsReader } from '../config/index.js';
import type { DbConnector } from '../db/types.js';
import { AppTimeoutError, BreakerOpenError, DatabaseError, NotFoundError, ShuttingDownError, TooManyPendingError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { failures } from '../log/summarise.js';
import { BREAKER_STATE_VALUES } from './breaker.js';
import { DbConnectionPool, type PoolLease } from './connection-pool.js';
import type { ResourceEventMap } from './events.js';
import type { GlobalLimiterStats } from './global-limiter.js';
import { GlobalLimits } from './global-limits.js';
import { RequestLimiter, type SlotGrant } from './request-limiter.js';
import { RequestResources } from './request-resources.js';
import { abortReason, unrefTimeout } from './util.js';

const log = getLogger('resource-manager.ts');

export interface ResourceManagerOptions {
  /** The driver connector of a resource (built from its secure settings). */
  connectorFor: (resourceId: string) => DbConnector;
  /**
   * The live settings the manager, its limiters and pools read at each use; the process config by
   * default. Two managers with their own readers run side by side.
   */
  settings?: SettingsReader;
}

export interface ResourceStats {
  /** Requests holding a slot. */
  active: number;
  /** Requests waiting for a slot. */
  pending: number;
  /** Connections open (idle + in use). */
  open: number;
  /** Idle connections. */
  pooled: number;
  /** Connections lent to requests (or being checked). */
  inUse: number;
  /** The circuit breaker: 0 closed, 1 open, 2 half-open (wt_breaker_state). */
  breaker: number;
  /** Request slots of this process as configured now (wt_max_active_requests). */
  maxActive: number;
  /** db_max_conn_pool_size as configured now (wt_max_connections). */
  maxConnections: number;
}

export interface Readiness {
  ready: boolean;
  /** Resources with no open connection whose last attempt to open one failed, or whose circuit breaker is open. */
  unavailable: string[];
}

interface Resource {
  limiter: RequestLimiter;
  pool: DbConnectionPool;
}

export class ResourceManager extends EventEmitter<ResourceEventMap> {
  private readonly resources = new Map<string, Resource>();
  /** Every RequestResources being filled or held, not yet released, for shutdown. */
  private readonly held = new Set<RequestResources>();
  private onHeldDrained: (() => void) | undefined;
  private started = false;
  /** Limits shared with other processes through Redis; undefined when global_limits_redis is empty. */
  private global: GlobalLimits | undefined;
  private shuttingDown: Promise<void> | undefined;

  private readonly settings: SettingsReader;

  constructor(private readonly opts: ResourceManagerOptions) {
    super();
    this.settings = opts.settings ?? config;
  }

  /**
   * Creates a limiter and a pool for each of the settings' resource_ids and starts opening their minimum
   * connections in the background: a database that is down does not fail start-up (its pool keeps
   * retrying; readiness() reports it). Idempotent.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    const settings = this.settings;
    for (const rid of settings().resource_ids) {
      const limiter = new RequestLimiter(rid, this, () => resourceSettingsOf(settings(), rid));
      const resource = { limiter, pool: new DbConnectionPool(rid, this.opts.connectorFor(rid), this, settings) };
      this.resources.set(rid, resource);
      resource.pool.start();
    }
    this.global = GlobalLimits.start(settings, this);
    configEvents.on('reload', this.onReload);
  }

  /**
   * Settles once every pool has its minimum open (or could not open one, or db_conn_timeout passed):
   * what start-up waits for before it listens, so the first requests find connections ready.
   */
  warm(): Promise<void> {
    const pools = [...this.resources].map(([rid, r]) => r.pool.warm(resourceSettingsOf(this.settings(), rid).db_conn_timeout * 1000));
    return Promise.all([...pools, this.global?.warm(2000)]).then(() => undefined);
  }

  has(rid: string): boolean {
    return this.resources.has(rid);
  }

  /**
   * The common case without a promise: one resource whose slot and an idle connection are free
   * right now (and nobody is queued for either), taken into `into`. Undefined when anything would
   * have to wait, holding nothing and counting nothing (`into` untouched); then use acquire().
   */
  acquireNow(rids: readonly string[], into: RequestResources = new RequestResources()): RequestResources | undefined {
    if (this.shuttingDown || rids.length !== 1 || into.aborted) return undefined;
    const rid = rids[0];
    const r = this.resources.get(rid);
    if (r === undefined || !r.limiter.canGrantNow() || this.global?.active(rid)) return undefined;
    const lease = r.pool.leaseNow();
    if (lease === undefined) return undefined;
    // Cannot be refused: canGrantNow() held and nothing ran since.
    const slot = r.limiter.grantNow() as SlotGrant;
    into.begin(this.released);
    into.addSlot(rid, slot);
    into.addLease(rid, lease);
    into.complete();
    this.held.add(into);
    return into;
  }

  /**
   * A slot, then a connection, for each resource, in sorted id order, taken into `into`. On any
   * failure everything already held is released and the error rethrown: TooManyPendingError (429),
   * AppTimeoutError (504, kind 'slot' or 'pool'), DatabaseError (503, unreachable),
   * ShuttingDownError (503), NotFoundError (404, unknown resource), or ClientClosedError when
   * `into` is ended meanwhile (its request's client left). Its cid goes on the failure's record.
   */
  acquire(rids: readonly string[], into: RequestResources = new RequestResources()): Promise<RequestResources> {
    if (this.shuttingDown) return Promise.reject(new ShuttingDownError());
    const ids = rids.length === 1 ? rids : [...new Set(rids)].sort();
    for (const rid of ids) {
      const r = this.resources.get(rid);
      if (r === undefined) return Promise.reject(new NotFoundError(`unknown resource ${rid}`, { resourceId: rid }));
      // An open breaker refuses before any slot is taken or waited for.
      const refusal = r.pool.breaker.refusal();
      if (refusal !== undefined) {
        logAcquireError(refusal, into.cid, this.settings);
        return Promise.reject(refusal);
      }
    }
    into.begin(this.released);
    this.held.add(into);
    // Gives back what is held and logs the failure; then rethrows.
    const fail = (err: unknown): never => {
      into.releaseNow();
      logAcquireError(err, into.cid, this.settings);
      throw err;
    };
    const done = (): RequestResources => {
      // The request may have ended in the turn its last wait was granted: nobody would give these back.
      if (this.shuttingDown) return fail(new ShuttingDownError());
      if (into.aborted) return fail(abortReason(into));
      into.complete();
      return into;
    };
    // Chained rather than async (every request queued for a slot comes this way); one resource after
    // the other, each step starting only once the previous one holds its slot and connection. The
    // first step runs now, so the request takes its place in the slot queue the moment it asks.
    let steps: Promise<unknown>;
    try {
      steps = Promise.resolve(this.take(into, ids[0]));
    } catch (err) {
      steps = Promise.reject(err as Error);
    }
    for (let i = 1; i < ids.length; i++) steps = steps.then(() => this.take(into, ids[i]));
    return steps.then(done, fail);
  }

  /** A slot, then a connection, of one resource into `into` (also the wait's cancel signal); synchronous when both are free now. */
  private take(into: RequestResources, rid: string): Promise<void> | void {
    const { limiter, pool } = this.get(rid);
    const withLease = (lease: PoolLease): void => into.addLease(rid, lease);
    const withConnection = (): Promise<void> | void => {
      // With a slot, a connection is nearly always idle (slots never outnumber connections).
      const lease = pool.leaseNow();
      return lease !== undefined ? withLease(lease) : pool.acquire(into).then(withLease);
    };
    const withSlot = (slot: SlotGrant): Promise<void> | void => {
      into.addSlot(rid, slot);
      if (into.aborted) throw abortReason(into);
      const global = this.global?.active(rid);
      if (global === undefined) return withConnection();
      // The lease shared with every process, within what is left of the same slot timeout.
      return global.acquire(into, slot.waitSeconds).then((g) => {
        into.addGlobalLease(rid, g);
        if (into.aborted) throw abortReason(into);
        return withConnection();
      });
    };
    const slot = limiter.acquireNow(into);
    return slot instanceof Promise ? slot.then(withSlot) : withSlot(slot);
  }

  readiness(): Readiness {
    const unavailable = [...this.resources].filter(([, r]) => !r.pool.available() || r.pool.breaker.refusing).map(([rid]) => rid);
    return { ready: this.started && !this.shuttingDown && unavailable.length === 0, unavailable };
  }

  stats(rid: string): ResourceStats {
    const { limiter, pool } = this.get(rid);
    const { active, pending } = limiter.stats();
    const { open, pooled, inUse } = pool.stats();
    const rc = resourceSettingsOf(this.settings(), rid);
    return {
      active,
      pending,
      open,
      pooled,
      inUse,
      breaker: BREAKER_STATE_VALUES[pool.breaker.state],
      maxActive: maxActiveRequests(rc),
      maxConnections: rc.db_max_conn_pool_size,
    };
  }

  /**
   * Refuses new acquires and rejects queued ones with ShuttingDownError, waits up to
   * `timeoutSeconds` for held resources to be released, then closes every connection (including
   * any still held). Idempotent: every call returns the same promise.
   */
  shutdown(timeoutSeconds: number = this.settings().shutdown_timeout): Promise<void> {
    this.shuttingDown ??= this.shutdownNow(timeoutSeconds);
    return this.shuttingDown;
  }

  private async shutdownNow(timeoutSeconds: number): Promise<void> {
    configEvents.off('reload', this.onReload);
    const err = new ShuttingDownError();
    for (const { limiter, pool } of this.resources.values()) {
      limiter.close(err);
      pool.refuseNew(err);
    }
    this.global?.refuseNew(err);
    if (this.held.size > 0) {
      log.info('shutdown-wait', 'waiting for requests to release their resources', { requests: this.held.size, timeout: timeoutSeconds });
      await this.heldDrained(timeoutSeconds * 1000);
      if (this.held.size > 0) {
        log.warning('shutdown-timeout', 'requests still hold resources; closing their connections', { requests: this.held.size, timeout: timeoutSeconds });
      }
    }
    await Promise.all([...this.resources.values()].map((r) => r.pool.destroy()));
    await this.global?.close();
  }

  private heldDrained(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.onHeldDrained = undefined;
        resolve();
      };
      const timer = unrefTimeout(done, ms);
      this.onHeldDrained = done;
    });
  }

  private readonly released = (h: RequestResources): void => {
    this.held.delete(h);
    if (this.held.size === 0) this.onHeldDrained?.();
  };

  /** After a config reload: a raised active limit admits waiters at once, a raised pool max serves them. */
  private readonly onReload = (): void => {
    for (const { limiter, pool } of this.resources.values()) {
      pool.reloadConfig();
      limiter.admitWaiting();
    }
    this.global?.reloaded();
  };

  /** The global limit of `rid` in this process (wt_global_leases, wt_global_limit_fallback); undefined without global_limits_redis. */
  globalStats(rid: string): GlobalLimiterStats | undefined {
    return this.global?.stats(rid);
  }

  private get(rid: string): Resource {
    const r = this.resources.get(rid);
    if (!r) throw new NotFoundError(`unknown resource ${rid}`, { resourceId: rid });
    return r;
  }
}

/**
 * The record of a failed acquisition. Summarised per tag and resource (src/log/summarise.ts): under
 * overload or an outage every refused request would otherwise write the same ERROR line.
 */
function logAcquireError(err: unknown, cid: string | undefined, settings: SettingsReader): void {
  const failed = (tag: string, rid: string | undefined, msg: string, fields: Record<string, unknown>) =>
    failures.write(`${tag} ${rid ?? ''}`, log.error, tag, msg, { resource_id: rid, ...fields, cid });
  if (err instanceof TooManyPendingError && err.resourceId) {
    const rid = err.resourceId;
    failed('slot-err', rid, 'too many pending requests', { max_pending_requests: resourceSettingsOf(settings(), rid).max_pending_requests });
  } else if (err instanceof AppTimeoutError && err.kind === 'slot') {
    failed('slot-timeout', err.resourceId, 'timeout waiting for a request slot', { request_slot_timeout: err.timeoutSeconds });
  } else if (err instanceof AppTimeoutError && err.kind === 'pool') {
    failed('dbconn-timeout', err.resourceId, 'timeout waiting for a pooled connection', { db_conn_pool_acquire_timeout: err.timeoutSeconds });
  } else if (err instanceof BreakerOpenError) {
    failed('breaker-refused', err.resourceId, 'request refused: circuit breaker open', { retry_after: err.retryAfterSeconds });
  } else if (err instanceof DatabaseError) {
    const cause = err.cause instanceof Error ? err.cause.message : undefined;
    failed('dbconn-err', err.resourceId, err.message, { error: cause });
  } else if (err instanceof ShuttingDownError) {
    log.info('shutdown-cancel', 'request refused: shutting down', { cid });
  }
}

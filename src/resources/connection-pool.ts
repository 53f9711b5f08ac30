/**
 * DbConnectionPool: the pooled connections of one resource.
 *
 * tarn is the core (FIFO acquire queue, one create path bounded by max, create timeout and retry,
 * validation before hand-out, destroy hook); LiveTarnPool makes its limits follow the live config.
 * On top of it this module adds what a database gateway needs:
 * - retirement after db_conn_max_uses statements or db_conn_max_age seconds, at release (off the
 *   request path: the connection is closed in the background, never handed out again);
 * - a connection that is not `usable`, or that the request discarded, is destroyed, never pooled;
 * - idle connections are pinged only when unused for more than db_conn_idle_check_after;
 * - fail fast when the database is unreachable: when a creation fails and no connection is open
 *   (none could come back), every waiting acquire gets DatabaseError(unreachable) at once, and for
 *   db_conn_retry_wait_period afterwards new acquires get it without another attempt;
 * - a circuit breaker (./breaker.ts) fed by every connection attempt: while it is open, acquires are
 *   refused at once with BreakerOpenError and nothing is opened but its one probe at a time;
 * - a periodic check (unref'd timer, live interval): retire expired or excess idle connections,
 *   ping stale ones, top up to the minimum;
 * - the events of events.ts and DEBUG logs of the pool's life.
 */
import { TimeoutError } from 'tarn';
import { resourceSettingsOf, type ResourceSettings, type SettingsReader } from '../config/index.js';
import { DbDriverError, type DbConnection, type DbConnector } from '../db/types.js';
import { AppTimeoutError, DatabaseError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { failures } from '../log/summarise.js';
import { CircuitBreaker } from './breaker.js';
import { emitSafely, type ConnCloseReason, type ResourceEvents } from './events.js';
import { LeasedConnection } from './leased-connection.js';
import { LiveTarnPool } from './live-tarn-pool.js';
import { abortReason, nowMs, secondsSince, unrefTimeout, type CancelSignal } from './util.js';

const log = getLogger('connection-pool.ts');

/** tarn's own create timeout is a backstop past the driver's: the driver's error is the better one. */
const CREATE_BACKSTOP_MS = 1000;

export interface PoolLease {
  /** The connection, valid until release. */
  readonly connection: DbConnection;
  /** Seconds the acquire waited. */
  readonly waitSeconds: number;
  /** Where another connection of the same resource comes from (a read retried on a fresh connection). */
  readonly pool: { acquire(signal?: CancelSignal): Promise<PoolLease> };
  /**
   * Gives the connection back; `discard` closes it instead of pooling it. Exactly once: later
   * calls are ignored (and logged as the bug they are).
   */
  release(discard?: boolean): void;
}

export interface PoolStats {
  /** Connections open: idle plus in use. */
  open: number;
  /** Idle connections. */
  pooled: number;
  inUse: number;
  pendingCreates: number;
  /** Acquires waiting for a connection. */
  waiting: number;
}

interface ConnMeta {
  uses: number;
  createdAtMs: number;
  /** Last release or successful ping. */
  lastActiveMs: number;
  closeReason?: ConnCloseReason;
  closed: boolean;
}

type Acquire = ReturnType<LiveTarnPool<DbConnection>['acquire']>;

export class DbConnectionPool {
  private readonly tarn: LiveTarnPool<DbConnection>;
  private readonly meta = new Map<DbConnection, ConnMeta>();
  /** Our acquires queued in tarn, so they can be failed fast or refused at shutdown. */
  private readonly waiters = new Set<Acquire>();
  private nextConnId = 1;
  private lastCreateFailure: { atMs: number; error: Error } | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private refusedWith: Error | undefined;
  private destroying: Promise<void> | undefined;
  private doubleReleases = 0;
  /** Woken after each connection attempt, success or failure (see warm()). */
  private readonly attemptWaiters = new Set<() => void>();
  /** Opens after breaker_failures failed attempts in a row; its probe is a connection opened by this pool. */
  readonly breaker: CircuitBreaker;

  constructor(
    readonly resourceId: string,
    private readonly connector: DbConnector,
    private readonly events: ResourceEvents,
    /** The live settings, read at each use (this resource's section and pool_check_interval). */
    private readonly settings: SettingsReader,
  ) {
    const rc = this.rc();
    this.tarn = new LiveTarnPool<DbConnection>(
      {
        create: () => this.create(),
        destroy: (conn: DbConnection) => this.closeConnection(conn),
        min: 0,
        max: rc.db_max_conn_pool_size,
        propagateCreateError: false,
      },
      (conn) => this.validate(conn),
    );
    this.tarn.on('createFail', (_eventId, err) => this.onCreateFailed(err));
    this.breaker = new CircuitBreaker(resourceId, () => this.rc(), {
      probe: () => this.probe(),
      opened: (err) => {
        for (const op of this.waiters) op.reject(err);
      },
    });
    this.applyLimits(rc);
  }

  /** Starts the periodic check; the first one (top-up to the minimum) runs at once. */
  start(): void {
    this.scheduleCheck(0);
  }

  /**
   * Settles once the minimum is open, an attempt failed (a database that is down must not hold up
   * start-up: requests will get a fast 503), or `ms` passed. Serving before the minimum is open made a
   * burst right after start-up wait for every connection to be opened at once.
   */
  warm(ms: number): Promise<void> {
    const done = () => this.openCount() >= this.rc().db_min_conn_pool_size || this.lastCreateFailure !== undefined;
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.attemptWaiters.delete(check);
        resolve();
      };
      const check = () => {
        if (done()) finish();
      };
      const timer = setTimeout(finish, ms);
      this.attemptWaiters.add(check);
    });
  }

  private attempted(): void {
    for (const wake of [...this.attemptWaiters]) wake();
  }

  stats(): PoolStats {
    const inUse = this.tarn.numUsed();
    const pooled = this.tarn.numFree();
    return { open: inUse + pooled, pooled, inUse, pendingCreates: this.tarn.numPendingCreates(), waiting: this.waiters.size };
  }

  /** False when no connection is open and the last attempt to open one failed. */
  available(): boolean {
    return this.openCount() > 0 || this.lastCreateFailure === undefined;
  }

  /** Connections released more than once (a caller bug); for tests and diagnostics. */
  get doubleReleaseCount(): number {
    return this.doubleReleases;
  }

  /**
   * One connection, waiting at most db_conn_pool_acquire_timeout. Rejects with AppTimeoutError
   * (kind 'pool'), DatabaseError (unreachable), the signal's reason, or the refuseNew() error.
   */
  async acquire(signal?: CancelSignal): Promise<PoolLease> {
    const rid = this.resourceId;
    if (this.refusedWith) {
      emitSafely(this.events, 'conn-acquire-error', { resourceId: rid, type: 'shutdown' });
      throw this.refusedWith;
    }
    if (signal?.aborted) throw abortReason(signal);
    const refusal = this.breaker.refusal();
    if (refusal !== undefined) {
      emitSafely(this.events, 'conn-acquire-error', { resourceId: rid, type: 'unreachable' });
      throw refusal;
    }
    const rc = this.rc();
    this.applyLimits(rc);
    const start = nowMs();
    if (this.tarn.numFree() === 0) {
      emitSafely(this.events, 'pool-empty', { resourceId: rid });
      if (this.tarn.numUsed() >= rc.db_max_conn_pool_size) {
        emitSafely(this.events, 'pool-exhausted', { resourceId: rid });
        log.debug('dbpool-exhausted', 'every pooled connection is in use', { resource_id: rid, db_max_conn_pool_size: rc.db_max_conn_pool_size });
      }
      const failure = this.lastCreateFailure;
      if (failure && this.isDown(rc)) {
        emitSafely(this.events, 'conn-acquire-error', { resourceId: rid, type: 'unreachable' });
        throw this.unreachable(failure.error);
      }
    }
    const ready = this.tarn.takeFreeNow((conn) => this.usableWithoutCheck(conn, rc));
    if (ready !== undefined) {
      // Lent a microtask later, as tarn would after validating: a refusal or abort in this turn still wins.
      await Promise.resolve();
      const stop = this.refusedWith ?? (signal?.aborted ? abortReason(signal) : undefined);
      if (stop === undefined) return this.lease(ready, start);
      this.tarn.release(ready); // never lent: back to the idle list untouched, as tarn does
      throw this.acquireError(stop, rc, signal);
    }
    const op = this.tarn.acquire();
    this.waiters.add(op);
    const onAbort = (): void => op.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let conn: DbConnection;
    try {
      conn = await op.promise;
    } catch (err) {
      throw this.acquireError(err, rc, signal);
    } finally {
      this.waiters.delete(op);
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) {
      // Aborted in the same turn the connection arrived: it was never lent, so it simply goes back.
      this.giveBack(conn, undefined);
      throw abortReason(signal);
    }
    return this.lease(conn, start);
  }

  /**
   * An idle connection that needs no check, lent at once; undefined (and nothing counted) when
   * there is none or an acquire is already queued. The waiting path is acquire().
   */
  leaseNow(): PoolLease | undefined {
    if (this.refusedWith || this.breaker.refusing) return undefined;
    const rc = this.rc();
    const conn = this.tarn.takeFreeNow((c) => this.usableWithoutCheck(c, rc));
    return conn === undefined ? undefined : this.lease(conn, undefined);
  }

  /** Applies the live config now (called on reload): a higher max serves waiters at once; the next check follows the new interval. */
  reloadConfig(): void {
    if (this.refusedWith) return;
    this.applyLimits(this.rc());
    this.breaker.reloadConfig();
    this.scheduleCheck(0);
  }

  /** Refuses new acquires and rejects waiting ones with `err`; leased connections stay valid. */
  refuseNew(err: Error): void {
    this.refusedWith ??= err;
    this.breaker.stop();
    if (this.checkTimer) clearTimeout(this.checkTimer);
    for (const op of this.waiters) op.reject(this.refusedWith);
  }

  /** Closes every connection, in use or not, exactly once. Idempotent. */
  destroy(): Promise<void> {
    this.refuseNew(new DatabaseError(`the pool of resource ${this.resourceId} is closed`, { resourceId: this.resourceId }));
    this.destroying ??= (async () => {
      const done = this.tarn.destroy();
      for (const conn of this.tarn.usedResources()) this.retire(conn, 'shutdown');
      await done;
    })();
    return this.destroying;
  }

  private rc(): ResourceSettings {
    return resourceSettingsOf(this.settings(), this.resourceId);
  }

  private openCount(): number {
    return this.tarn.numUsed() + this.tarn.numFree();
  }

  private applyLimits(rc: ResourceSettings): void {
    this.tarn.applyLimits({
      min: rc.db_min_conn_pool_size,
      max: rc.db_max_conn_pool_size,
      acquireTimeoutMillis: rc.db_conn_pool_acquire_timeout * 1000,
      createTimeoutMillis: rc.db_conn_timeout * 1000 + CREATE_BACKSTOP_MS,
      createRetryIntervalMillis: rc.db_conn_retry_wait_period * 1000,
    });
  }

  private recentlyFailed(rc: ResourceSettings): boolean {
    const f = this.lastCreateFailure;
    return f !== undefined && nowMs() - f.atMs < rc.db_conn_retry_wait_period * 1000;
  }

  /** Nothing open, nothing being opened, and the last attempt failed within the retry wait. */
  private isDown(rc: ResourceSettings): boolean {
    return this.openCount() === 0 && this.tarn.numPendingCreates() === 0 && this.recentlyFailed(rc);
  }

  private unreachable(cause: Error): DatabaseError {
    return new DatabaseError(`could not open a DB connection to resource ${this.resourceId}`, { resourceId: this.resourceId, unreachable: true, cause });
  }

  private acquireError(err: unknown, rc: ResourceSettings, signal: CancelSignal | undefined): Error {
    const rid = this.resourceId;
    if (this.refusedWith !== undefined && err === this.refusedWith) {
      emitSafely(this.events, 'conn-acquire-error', { resourceId: rid, type: 'shutdown' });
      return this.refusedWith;
    }
    if (err instanceof DatabaseError) {
      emitSafely(this.events, 'conn-acquire-error', { resourceId: rid, type: 'unreachable' });
      return err;
    }
    if (signal?.aborted) return abortReason(signal);
    if (err instanceof TimeoutError) {
      emitSafely(this.events, 'conn-acquire-error', { resourceId: rid, type: 'timeout' });
      const t = rc.db_conn_pool_acquire_timeout;
      return new AppTimeoutError(`${t}-sec timeout waiting for a pooled connection for ${rid}`, { resourceId: rid, kind: 'pool', timeoutSeconds: t, cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  /** `start`: when the acquire began; undefined when the connection was free at once. */
  private lease(conn: DbConnection, start: number | undefined): PoolLease {
    const rid = this.resourceId;
    const meta = this.meta.get(conn);
    const waitSeconds = start === undefined ? 0 : secondsSince(start);
    emitSafely(this.events, 'conn-acquired', { resourceId: rid, connId: conn.connId, waitSeconds });
    const leasedAt = nowMs();
    const usesAtLease = meta === undefined ? 0 : meta.uses;
    let discardAtRelease = false;
    const leased = new LeasedConnection(conn, {
      onUse: () => {
        if (meta) meta.uses++;
      },
      onDiscard: () => {
        discardAtRelease = true;
      },
    });
    let released = false;
    return {
      connection: leased,
      waitSeconds,
      pool: this,
      release: (discard = false) => {
        if (released) {
          this.doubleReleases++;
          log.warning('dbconn-release', 'connection released twice; ignored', { resource_id: rid, conn_id: conn.connId });
          return;
        }
        released = true;
        leased.end();
        // A statement ran and left the connection usable: the database answers.
        if (meta !== undefined && meta.uses > usesAtLease && conn.usable) this.breaker.worked();
        emitSafely(this.events, 'conn-released', { resourceId: rid, connId: conn.connId, usageSeconds: secondsSince(leasedAt) });
        this.giveBack(conn, discard || discardAtRelease ? 'broken' : undefined);
      },
    };
  }

  /** Pools a returned connection, or retires it when it must not be handed out again. */
  private giveBack(conn: DbConnection, forced: ConnCloseReason | undefined): void {
    const rc = this.rc();
    const reason = forced ?? (this.refusedWith ? 'shutdown' : (this.expiryReason(conn, rc) ?? (this.openCount() > rc.db_max_conn_pool_size ? 'shrink' : undefined)));
    if (reason !== undefined) {
      this.retire(conn, reason);
      return;
    }
    const meta = this.meta.get(conn);
    if (meta) meta.lastActiveMs = nowMs();
    this.tarn.release(conn);
  }

  /** Why a connection must not be handed out again, if it must not. */
  private expiryReason(conn: DbConnection, rc: ResourceSettings): ConnCloseReason | undefined {
    const meta = this.meta.get(conn);
    if (!conn.usable || !meta) return 'broken';
    // A statement still runs on it: lending it out would fail the next request, and pooling it would
    // fail every one after. Whoever gave it back has a bug; the connection is closed, never reused.
    if (conn.busy) return 'busy';
    if (meta.uses >= rc.db_conn_max_uses) return 'max-uses';
    if (nowMs() - meta.createdAtMs >= rc.db_conn_max_age * 1000) return 'max-age';
    return undefined;
  }

  private markForClose(conn: DbConnection, reason: ConnCloseReason): void {
    const meta = this.meta.get(conn);
    if (!meta || meta.closeReason !== undefined) return;
    meta.closeReason = reason;
    if (reason === 'busy') {
      log.error('dbconn-busy', 'DB connection came back with a statement still running; closing it', { resource_id: this.resourceId, conn_id: conn.connId });
    }
    if (reason === 'max-uses' || reason === 'max-age') {
      log.debug('dbconn-expired', 'retiring DB connection', { resource_id: this.resourceId, conn_id: conn.connId, reason, uses: meta.uses });
    }
  }

  /** Takes a checked-out connection out of the pool and closes it in the background. */
  private retire(conn: DbConnection, reason: ConnCloseReason): void {
    this.markForClose(conn, reason);
    this.tarn.retire(conn);
  }

  /** tarn's validate hook, run before each hand-out of an idle connection. */
  private async validate(conn: DbConnection): Promise<boolean> {
    const rc = this.rc();
    const reason = this.expiryReason(conn, rc) ?? (this.openCount() > rc.db_max_conn_pool_size ? 'shrink' : undefined);
    if (reason !== undefined) {
      this.markForClose(conn, reason);
      return false;
    }
    return this.pingIfStale(conn, rc);
  }

  /** What validate() would accept without a ping: not expired, no shrink due, not idle long enough to need a check. */
  private usableWithoutCheck(conn: DbConnection, rc: ResourceSettings): boolean {
    if (this.expiryReason(conn, rc) !== undefined || this.openCount() > rc.db_max_conn_pool_size) return false;
    const meta = this.meta.get(conn);
    return meta !== undefined && nowMs() - meta.lastActiveMs <= rc.db_conn_idle_check_after * 1000;
  }

  /** Pings a connection idle for more than db_conn_idle_check_after; true when it may be used. */
  private async pingIfStale(conn: DbConnection, rc: ResourceSettings): Promise<boolean> {
    const meta = this.meta.get(conn);
    if (!meta || nowMs() - meta.lastActiveMs <= rc.db_conn_idle_check_after * 1000) return true;
    try {
      await conn.ping(rc.db_conn_timeout);
      meta.lastActiveMs = nowMs();
      return true;
    } catch (err) {
      log.debug('dbconn-check', 'idle DB connection failed its ping', { resource_id: this.resourceId, conn_id: conn.connId, error: errorText(err) });
      this.markForClose(conn, 'ping-failed');
      return false;
    }
  }

  /** tarn's create hook: the single path by which connections are opened. */
  private async create(): Promise<DbConnection> {
    const rid = this.resourceId;
    const rc = this.rc();
    const connId = this.nextConnId++;
    const start = nowMs();
    const conn = await this.connector.connect(connId, rc.db_conn_timeout);
    const seconds = secondsSince(start);
    const at = nowMs();
    this.meta.set(conn, { uses: 0, createdAtMs: at, lastActiveMs: at, closed: false });
    this.lastCreateFailure = undefined;
    this.breaker.connected();
    emitSafely(this.events, 'conn-created', { resourceId: rid, connId, seconds });
    log.debug('dbconn-added', 'opened DB connection', { resource_id: rid, conn_id: connId, duration: seconds });
    // Once tarn has counted it as open, which it does when this promise settles.
    setImmediate(() => this.attempted());
    return conn;
  }

  /** tarn's createFail event: exactly once per failed creation, whether the driver failed or tarn's backstop fired. */
  private onCreateFailed(err: Error): void {
    const rid = this.resourceId;
    const type = err instanceof TimeoutError || (err instanceof DbDriverError && err.kind === 'timeout') ? 'timeout' : 'other';
    this.lastCreateFailure = { atMs: nowMs(), error: err };
    this.breaker.connectFailed(err);
    this.attempted();
    emitSafely(this.events, 'conn-create-error', { resourceId: rid, type, error: err });
    // Summarised (src/log/summarise.ts): a database that stays down fails every retry the same way.
    failures.write(`dbconn-create ${rid} ${type}`, log.warning, 'dbconn-err', 'could not open a DB connection', { resource_id: rid, error_type: type, error: errorText(err) });
    // Nothing open could come back and nothing else is being opened: waiting cannot help.
    if (this.openCount() === 0 && this.tarn.numPendingCreates() === 0) {
      for (const op of this.waiters) op.reject(this.unreachable(err));
    }
  }

  /** tarn's destroy hook; the one place connections are closed, at most once each. */
  private async closeConnection(conn: DbConnection): Promise<void> {
    const meta = this.meta.get(conn);
    if (meta?.closed) return;
    if (meta) meta.closed = true;
    this.meta.delete(conn);
    const reason: ConnCloseReason = meta?.closeReason ?? (this.refusedWith ? 'shutdown' : 'broken');
    log.debug('dbconn-close', 'closing DB connection', { resource_id: this.resourceId, conn_id: conn.connId, reason });
    emitSafely(this.events, 'conn-closed', { resourceId: this.resourceId, connId: conn.connId, reason });
    try {
      await conn.close();
    } catch (err) {
      log.warning('dbconn-close', 'closing a DB connection failed', { resource_id: this.resourceId, conn_id: conn.connId, error: errorText(err) });
    }
  }

  /** The breaker's probe: one connection, opened as any other (its outcome reaches the breaker through create/createFail). */
  private probe(): void {
    if (this.refusedWith || this.destroying) return;
    this.tarn.topUp(1);
  }

  private scheduleCheck(ms: number): void {
    if (this.checkTimer) clearTimeout(this.checkTimer);
    if (this.refusedWith) return;
    this.checkTimer = unrefTimeout(() => void this.check(), ms);
  }

  /** The periodic check: retire expired or excess idle connections, ping stale ones, top up to the minimum. */
  async check(): Promise<void> {
    if (this.refusedWith || this.checking) return;
    this.checking = true;
    try {
      const rc = this.rc();
      this.applyLimits(rc);
      let excess = this.openCount() - rc.db_max_conn_pool_size;
      const doomed = this.tarn.takeIdle((conn) => {
        const reason = this.expiryReason(conn, rc) ?? (excess > 0 ? 'shrink' : undefined);
        if (reason === undefined) return false;
        excess--;
        this.markForClose(conn, reason);
        return true;
      });
      for (const conn of doomed) this.tarn.retire(conn);

      const stale = this.tarn.takeIdle((conn) => {
        const meta = this.meta.get(conn);
        return meta !== undefined && nowMs() - meta.lastActiveMs > rc.db_conn_idle_check_after * 1000;
      });
      await Promise.all(
        stale.map(async (conn) => {
          const ok = await this.pingIfStale(conn, rc);
          if (ok && !this.refusedWith) this.tarn.release(conn);
          else this.retire(conn, this.refusedWith ? 'shutdown' : 'ping-failed');
        }),
      );

      // Top up; after a failure, one probe per check at most (and not before the retry wait).
      const deficit = rc.db_min_conn_pool_size - this.openCount() - this.tarn.numPendingCreates();
      // While the breaker refuses, its probe is the only attempt.
      if (deficit > 0 && !this.refusedWith && !this.breaker.refusing && !this.recentlyFailed(rc)) this.tarn.topUp(this.lastCreateFailure ? 1 : deficit);
    } catch (err) {
      log.error('dbpool-check', 'pool check failed', { resource_id: this.resourceId, error: errorText(err) });
    } finally {
      this.checking = false;
      this.scheduleCheck(this.settings().pool_check_interval * 1000);
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

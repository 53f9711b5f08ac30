/**
 * Facts the resource layer reports. The ResourceManager emits them; the metrics module and the
 * loggers listen. Live levels (pending, active, open, pooled) are not events: read them with
 * ResourceManager.stats(rid) when they are needed (metrics gauges collect them on scrape).
 */
import type { EventEmitter } from 'node:events';
import { getLogger } from '../log/index.js';

const log = getLogger('events.ts');

export type SlotErrorType = 'overload' | 'timeout';
export type ConnCreateErrorType = 'timeout' | 'other';
/** wt_query_errors_total's error_type: 'constraint' is a client mistake (409/400), the others server-side. */
export type QueryErrorType = 'timeout' | 'constraint' | 'other';
export type GlobalLeaseErrorType = 'timeout' | 'lost' | 'redis';
export type ConnCloseReason = 'max-uses' | 'max-age' | 'broken' | 'busy' | 'ping-failed' | 'shrink' | 'shutdown';

export interface ResourceEventMap {
  /** A request asked for a slot on a resource (counts wt_resource_requests_total, last request time). */
  'slot-requested': [{ resourceId: string }];
  /** A slot was granted after waiting `waitSeconds`. */
  'slot-acquired': [{ resourceId: string; waitSeconds: number }];
  /** No slot: queue full (overload) or waited too long (timeout). */
  'slot-error': [{ resourceId: string; type: SlotErrorType; waitSeconds: number }];
  /** A slot was given back (last response time). */
  'slot-released': [{ resourceId: string }];
  /** A connection was opened in `seconds`. */
  'conn-created': [{ resourceId: string; connId: number; seconds: number }];
  /** Opening a connection failed. */
  'conn-create-error': [{ resourceId: string; type: ConnCreateErrorType; error: Error }];
  /** A connection was closed. */
  'conn-closed': [{ resourceId: string; connId: number; reason: ConnCloseReason }];
  /** An acquire found no idle connection. */
  'pool-empty': [{ resourceId: string }];
  /** An acquire found every connection up to the maximum in use. */
  'pool-exhausted': [{ resourceId: string }];
  /** A request got a connection after waiting `waitSeconds`. */
  'conn-acquired': [{ resourceId: string; connId: number; waitSeconds: number }];
  /** A request could not get a connection. */
  'conn-acquire-error': [{ resourceId: string; type: 'timeout' | 'unreachable' | 'shutdown' }];
  /** A request gave its connection back after holding it `usageSeconds`. */
  'conn-released': [{ resourceId: string; connId: number; usageSeconds: number }];
  /** A request got its lease of max_active_requests_global after `waitSeconds`; `fallback`: counted in this process only (Redis unreachable). */
  'global-lease-acquired': [{ resourceId: string; waitSeconds: number; fallback: boolean }];
  /**
   * timeout: a request waited for a global lease until its slot timeout (504); lost: a running
   * request's lease was gone from Redis (written in again); redis: a Redis command failed.
   */
  'global-lease-error': [{ resourceId: string; type: GlobalLeaseErrorType; waitSeconds: number }];
}

/** Reported by the Query layer after each statement. */
export interface QueryEvent {
  resourceId: string;
  seconds: number;
  /** Rows returned; undefined for streamed results. */
  rows?: number;
  error?: QueryErrorType;
  /** A stream ended because its client stopped reading (stream_stall_timeout). */
  stalled?: true;
  /** Why the statement was run again, once per retry (wt_query_retries_total). */
  retries?: readonly RetryReason[];
}

/** wt_query_retries_total's reason: a read's lost connection, or a transaction's conflict. */
export type RetryReason = 'connection' | 'serialization' | 'deadlock' | 'lock-timeout';
export const RETRY_REASONS: readonly RetryReason[] = ['connection', 'serialization', 'deadlock', 'lock-timeout'];

/** The emitter the resource layer reports through (ResourceManager is one). */
export type ResourceEvents = EventEmitter<ResourceEventMap>;

/**
 * Emits without letting a listener's exception escape into pool or limiter bookkeeping: a failing
 * metrics listener must never leak a slot or a connection. Every event has one payload, passed as
 * is: a rest parameter spread into emit() cost an array and a spread call on each of the five
 * events of every request.
 */
export function emitSafely<K extends keyof ResourceEventMap>(events: ResourceEvents, name: K, payload: ResourceEventMap[K][0]): void {
  try {
    // The signature above checks the payload; TS cannot match a generic key's tuple to the typed emit.
    (events as EventEmitter).emit(name, payload);
  } catch (err) {
    log.error('event-listener', `listener of ${name} threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}

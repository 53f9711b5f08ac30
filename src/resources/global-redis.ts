/**
 * The Redis connection of one process for the global limits (config global_limits_redis), and
 * whether Redis answers now. One per process: in cluster mode each worker has its own, so a
 * worker's leases are its own and a worker that dies loses only its share, like a replica; nothing
 * on a request's path goes through the primary.
 *
 * Commands fail at once while disconnected (no offline queue) and after COMMAND_TIMEOUT_MS without
 * an answer, so a request never waits on a Redis that is gone or hung. `up` flips to false on a
 * closed connection or a failed command and back on the connection's next ready (ioredis
 * reconnects by itself) or, for a Redis that hung but kept the connection, a PING that answers.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { ioredis } from '../on-first-use.js';
import { unrefTimeout } from './util.js';

/** A command without an answer by then counts as Redis unreachable. */
export const COMMAND_TIMEOUT_MS = 1000;
/** How often a connected but unanswering Redis is asked whether it is back. */
const PROBE_EVERY_MS = 1000;

export interface GlobalRedisEvents {
  /** Redis answers again (or for the first time). */
  up: [];
  /** Redis stopped answering: the first failure since it was last up (or since start). */
  down: [reason: string];
}

export class GlobalRedis extends EventEmitter<GlobalRedisEvents> {
  readonly client: Redis;
  private isUp = false;
  /** Whether a 'down' was already announced since the last 'up' (a start without Redis is one). */
  private announcedDown = false;
  private probe: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(url: string) {
    super();
    this.client = new (ioredis().Redis)(url, {
      enableOfflineQueue: false,
      // Commands of one event-loop turn go out in one write: under load many leases are taken and given back per turn.
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      // At most 1 s between reconnection attempts (ioredis: 50 ms more per attempt), so a Redis
      // that comes back is used again within about a second.
      retryStrategy: (times) => Math.min(times * 50, 1000),
    });
    this.client.on('ready', () => this.markUp());
    this.client.on('close', () => this.markDown('connection closed'));
    // Without a listener ioredis writes every reconnection error to stderr; the transition is what is reported.
    this.client.on('error', (err: Error) => this.markDown(err.message));
  }

  /** Whether commands may be sent now (connected, and the last one answered). */
  get up(): boolean {
    return this.isUp;
  }

  /** Settles once Redis is up, or after `ms` (start-up waits for it as it waits for the pools). */
  ready(ms: number): Promise<void> {
    if (this.isUp || this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('up', done);
        resolve();
      };
      const timer = unrefTimeout(done, ms);
      this.on('up', done);
    });
  }

  /** A command failed or a connection dropped: until Redis answers again, limits fall back to local shares. */
  markDown(reason: string): void {
    if (this.closing) return;
    const was = this.isUp;
    this.isUp = false;
    if (this.client.status === 'ready') this.startProbe();
    if (was || !this.announcedDown) {
      this.announcedDown = true;
      this.emit('down', reason);
    }
  }

  private markUp(): void {
    if (this.closing || this.isUp) return;
    this.stopProbe();
    this.isUp = true;
    this.announcedDown = false;
    this.emit('up');
  }

  /** Connected but not answering: PING until it does. */
  private startProbe(): void {
    if (this.probe !== undefined) return;
    const tick = (): void => {
      this.probe = undefined;
      if (this.isUp || this.closing) return;
      // Disconnected: ioredis reconnects and its 'ready' brings the limits back.
      if (this.client.status !== 'ready') return;
      this.client.ping().then(
        () => this.markUp(),
        () => undefined,
      );
      this.probe = unrefTimeout(tick, PROBE_EVERY_MS);
    };
    this.probe = unrefTimeout(tick, PROBE_EVERY_MS);
  }

  private stopProbe(): void {
    if (this.probe !== undefined) clearTimeout(this.probe);
    this.probe = undefined;
  }

  /** Sends what is queued (lease releases), then closes the connection: at most COMMAND_TIMEOUT_MS. Once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopProbe();
      this.isUp = false;
      if (this.client.status === 'ready') {
        // Commands of this turn (the last releases) are written by auto-pipelining in a setImmediate: let it run first.
        await new Promise((resolve) => setImmediate(resolve));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.client.quit().catch(() => undefined),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, COMMAND_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      this.client.disconnect();
    })();
    return this.closing;
  }
}

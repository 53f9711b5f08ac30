/**
 * CircuitBreaker: one per resource, fed by its pool's connection attempts.
 *
 * closed:    requests go through. Each failed attempt to open a connection counts; one that opens,
 *            or a statement that ran on a connection given back usable, resets the count. At
 *            breaker_failures failures in a row it opens.
 * open:      requests are refused at once (BreakerOpenError: 503, Retry-After the probe interval)
 *            and the pool opens nothing. After breaker_probe_interval it goes half-open.
 * half-open: exactly one probe, a connection the pool opens for itself, is under way; requests are
 *            still refused. The probe's success closes the breaker (and its connection serves the
 *            next request); its failure opens it again for another interval.
 *
 * Hand-written: opossum and cockatiel break around calls and test recovery by letting a caller's
 * call through; here the failures are the pool's connection attempts and the test is a connection
 * of our own on a timer, so no request waits on a database that may still be down.
 */
import type { ResourceSettings } from '../config/index.js';
import { BreakerOpenError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { nowMs, unrefTimeout } from './util.js';

const log = getLogger('breaker.ts');

export type BreakerState = 'closed' | 'open' | 'half-open';

/** wt_breaker_state's values. */
export const BREAKER_STATE_VALUES: Readonly<Record<BreakerState, number>> = { closed: 0, open: 1, 'half-open': 2 };

export interface BreakerHooks {
  /** Starts one probe: a connection attempt whose outcome comes back through connectFailed()/connected(). */
  probe(): void;
  /** The breaker opened: whoever waits for a connection gets `err` now. */
  opened(err: BreakerOpenError): void;
}

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  /** Failed connection attempts in a row while closed. */
  private failures = 0;
  /** The count that opened it, for the 503's detail. */
  private openedAfter = 0;
  private openedAtMs = 0;
  private probes = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly resourceId: string,
    /** This resource's live settings (breaker_failures, breaker_probe_interval), read at each use. */
    private readonly settings: () => ResourceSettings,
    private readonly hooks: BreakerHooks,
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /** True while requests are refused (open or half-open). */
  get refusing(): boolean {
    return this.current !== 'closed';
  }

  /** The error a request is refused with now; undefined when the breaker is closed. */
  refusal(): BreakerOpenError | undefined {
    if (this.current === 'closed') return undefined;
    return new BreakerOpenError(this.resourceId, this.openedAfter, this.settings().breaker_probe_interval);
  }

  /** An attempt to open a connection failed (the probe's included). */
  connectFailed(err: Error): void {
    if (this.stopped) return;
    if (this.current === 'half-open') {
      this.open(err, 'probe failed');
      return;
    }
    // Open: an attempt begun before it opened, ending late. It says nothing new.
    if (this.current === 'open') return;
    const threshold = this.settings().breaker_failures;
    if (threshold === 0) return;
    this.failures++;
    if (this.failures >= threshold) this.open(err, 'failures');
  }

  /** A connection opened: the database answers. Closes the breaker whatever its state. */
  connected(): void {
    this.failures = 0;
    if (this.current !== 'closed') this.close();
  }

  /** A statement ran on a connection that came back usable: the count of failures starts again. */
  worked(): void {
    this.failures = 0;
  }

  /** After a config reload: breaker_failures 0 turns an open breaker off at once. */
  reloadConfig(): void {
    if (this.current !== 'closed' && this.settings().breaker_failures === 0) this.close();
  }

  /** No more probes (the pool is closing). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private open(err: Error, why: 'failures' | 'probe failed'): void {
    const rc = this.settings();
    const wasClosed = this.current === 'closed';
    this.current = 'open';
    if (wasClosed) {
      this.openedAfter = this.failures;
      this.openedAtMs = nowMs();
      this.probes = 0;
      this.failures = 0;
      log.warning('breaker-open', `circuit breaker of ${this.resourceId} opened: requests are refused with 503 until a probe connects`, {
        resource_id: this.resourceId,
        failures: this.openedAfter,
        probe_interval: rc.breaker_probe_interval,
        error: err.message,
      });
      this.hooks.opened(new BreakerOpenError(this.resourceId, this.openedAfter, rc.breaker_probe_interval));
    } else if (why === 'probe failed') {
      log.debug('breaker-probe', 'circuit breaker probe failed; still open', { resource_id: this.resourceId, error: err.message });
    }
    this.schedule(rc.breaker_probe_interval);
  }

  private schedule(seconds: number): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = unrefTimeout(() => this.startProbe(), seconds * 1000);
  }

  private startProbe(): void {
    this.timer = undefined;
    if (this.stopped || this.current !== 'open') return;
    this.current = 'half-open';
    this.probes++;
    try {
      this.hooks.probe();
    } catch (err) {
      this.connectFailed(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const openSeconds = Math.round(nowMs() - this.openedAtMs) / 1000;
    this.current = 'closed';
    this.failures = 0;
    log.info('breaker-close', `circuit breaker of ${this.resourceId} closed: the database answers again`, {
      resource_id: this.resourceId,
      open_duration: openSeconds,
      probes: this.probes,
    });
  }
}

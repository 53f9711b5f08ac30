/**
 * Notices a streamed response whose client stopped reading. The stream's generator says when it
 * hands a row over and when it waits for the consumer; a timer, re-read limit and all (the limit
 * is reloadable), checks a tenth of the limit at a time whether any row was taken since. Counting
 * rows instead of reading a clock per row keeps the per-row cost to an increment; a stall is
 * noticed between 1 and 1.1 times the limit after the last row was taken.
 */
import { performance } from 'node:perf_hooks';

export class StallWatch {
  private taken = 0;
  private seen = -1;
  private waiting = false;
  private lastProgress = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    /** The limit in seconds, read at every check so a reload reaches running streams. */
    private readonly limitSeconds: () => number,
    /** Called once, with the seconds the consumer has not read for. */
    private readonly onStall: (idleSeconds: number) => void,
  ) {
    this.arm();
  }

  /** A row was taken by the consumer. */
  progressed(): void {
    this.taken++;
    this.waiting = false;
  }

  /** The producer waits for the consumer to take the next row; waits on the database do not count. */
  waitingForConsumer(): void {
    this.waiting = true;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.check(), Math.max(10, (this.limitSeconds() * 1000) / 10));
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    const now = performance.now();
    if (this.taken !== this.seen || !this.waiting) {
      this.seen = this.taken;
      this.lastProgress = now;
    } else {
      const idle = (now - this.lastProgress) / 1000;
      if (idle >= this.limitSeconds()) {
        this.stop();
        this.onStall(idle);
        return;
      }
    }
    this.arm();
  }
}

/**
 * Repeated identical failures, summarised. While a database is down every request it refuses
 * would write the same ERROR record (80,873 lines in a 20 s outage); instead the first record of a
 * key (a tag and a resource) is written at once, later ones in the same interval are only counted,
 * and at the interval's end one record, the last of them, is written with `suppressed=<count>`.
 * That starts another interval, so a lasting failure writes one record per interval and key; an
 * interval with nothing suppressed ends the summary, and the next failure is written at once again.
 */
import type { Log } from './index.js';
import { flushLogs } from './index.js';

type Fields = Record<string, unknown>;
type Write = Log['error'];

/** The interval, unless a caller passes its own. */
export const SUMMARY_INTERVAL_MS = 10_000;
/** Keys summarised at once; past this, records are written as they come (never unbounded memory). */
const MAX_KEYS = 1000;

interface Window {
  write: Write;
  tag: string;
  msg: string;
  fields: Fields;
  suppressed: number;
  timer: NodeJS.Timeout;
}

export class Summariser {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly intervalMs: () => number = () => SUMMARY_INTERVAL_MS) {}

  /** Writes the record now if it is the first of `key` in this interval, otherwise counts it. */
  write(key: string, write: Write, tag: string, msg: string, fields: Fields): void {
    const w = this.windows.get(key);
    if (w !== undefined) {
      w.suppressed++;
      w.write = write;
      w.tag = tag;
      w.msg = msg;
      w.fields = fields;
      return;
    }
    write(tag, msg, fields);
    if (this.windows.size >= MAX_KEYS) return;
    this.windows.set(key, { write, tag, msg, fields, suppressed: 0, timer: this.arm(key) });
  }

  /** Writes every pending summary now (at exit, and for tests). */
  flush(): void {
    for (const key of [...this.windows.keys()]) this.close(key, false);
  }

  private arm(key: string): NodeJS.Timeout {
    const timer = setTimeout(() => this.close(key, true), this.intervalMs());
    timer.unref(); // a summary never keeps the process alive; exit writes it (see below)
    return timer;
  }

  private close(key: string, again: boolean): void {
    const w = this.windows.get(key);
    if (w === undefined) return;
    clearTimeout(w.timer);
    if (w.suppressed === 0) {
      this.windows.delete(key);
      return;
    }
    // The last record stands for the others; its cid names only one of the requests, so it is left out.
    const fields: Fields = { ...w.fields, suppressed: w.suppressed, interval: this.intervalMs() / 1000 };
    delete fields.cid;
    w.write(w.tag, w.msg, fields);
    w.suppressed = 0;
    if (again) w.timer = this.arm(key);
    else this.windows.delete(key);
  }
}

/** The process-wide summariser of failure records. */
export const failures = new Summariser();

// Registered after the log module's own exit flush: write the summaries, then flush them out.
process.once('exit', () => {
  try {
    failures.flush();
    flushLogs();
  } catch {
    // stdout is gone: nothing left to write to.
  }
});

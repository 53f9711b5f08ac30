/** Small helpers shared by the resource modules. */
import { performance } from 'node:perf_hooks';

/**
 * Monotonic milliseconds: wall-clock jumps must not distort waits or ages measured in-process.
 * Imported, not the global: Node defines that one as an accessor, which V8 cannot cache, and the
 * pool reads the clock several times per request.
 */
export const nowMs = (): number => performance.now();

/** Seconds elapsed since a nowMs() reading, rounded to the microsecond. */
export function secondsSince(startMs: number): number {
  return Math.round((nowMs() - startMs) * 1000) / 1e6;
}

/**
 * What can cancel a wait: an AbortSignal, or anything with these members (a request's
 * RequestResources, lighter than an AbortController, which builds an EventTarget per instance).
 * Only 'abort' listeners are used.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** What an aborted wait rejects with: the signal's reason when it is an Error. */
export function abortReason(signal: CancelSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const err = new Error(typeof r === 'string' ? r : 'the request was aborted');
  err.name = 'AbortError';
  return err;
}

/** A timer that never keeps the process alive on its own. */
export function unrefTimeout(fn: () => void, ms: number): NodeJS.Timeout {
  const t = setTimeout(fn, ms);
  t.unref();
  return t;
}

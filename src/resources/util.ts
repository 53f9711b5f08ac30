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

/**
 * A signal that aborts when `parent` does or `ms` have passed (with `onTimeout()` as its reason);
 * dispose() drops its timer and its listener on the parent. For a wait bounded by what is left of
 * a request's own deadline.
 */
export function boundedSignal(parent: CancelSignal, ms: number, onTimeout: () => Error): CancelSignal & { dispose(): void } {
  const listeners: (() => void)[] = [];
  const signal = {
    aborted: false,
    reason: undefined as unknown,
    addEventListener: (_type: 'abort', l: () => void) => void listeners.push(l),
    removeEventListener: (_type: 'abort', l: () => void) => {
      const i = listeners.indexOf(l);
      if (i !== -1) listeners.splice(i, 1);
    },
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', fromParent);
    },
  };
  const abort = (reason: unknown) => {
    if (signal.aborted) return;
    signal.aborted = true;
    signal.reason = reason;
    signal.dispose();
    for (const l of listeners.splice(0)) l();
  };
  const fromParent = () => abort(parent.reason);
  const timer = unrefTimeout(() => abort(onTimeout()), ms);
  if (parent.aborted) abort(parent.reason);
  else parent.addEventListener('abort', fromParent);
  return signal;
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

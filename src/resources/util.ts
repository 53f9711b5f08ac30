/** Small helpers shared by the resource modules. */

/** Monotonic milliseconds: wall-clock jumps must not distort waits or ages measured in-process. */
export const nowMs = (): number => performance.now();

/** Seconds elapsed since a nowMs() reading, rounded to the microsecond. */
export function secondsSince(startMs: number): number {
  return Math.round((nowMs() - startMs) * 1000) / 1e6;
}

/** What an aborted wait rejects with: the signal's reason when it is an Error. */
export function abortReason(signal: AbortSignal): Error {
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

/**
 * Waiting in tests: poll for the thing awaited, never sleep for a guessed time (too short on a busy
 * machine, needlessly long on an idle one). Assertions that must become true use vitest's
 * `expect.poll(...)` directly; waits for a value or a state use waitFor.
 */
import { vi } from 'vitest';

export interface WaitOptions {
  /** Milliseconds before the wait fails (default 10 s). */
  timeout?: number;
  /** Milliseconds between probes (default 50). */
  interval?: number;
}

type NotYet = undefined | null | false;

/**
 * Resolves with the first value of `probe` that is not undefined, null or false. A probe that throws
 * (a server not yet listening) is tried again. Past the timeout the test fails naming `what` and the
 * probe's last error. Built on vi.waitFor, which never runs a probe while the previous one is pending.
 */
export async function waitFor<T>(what: string, probe: () => T | NotYet | Promise<T | NotYet>, opts: WaitOptions = {}): Promise<T> {
  const timeout = opts.timeout ?? 10_000;
  try {
    return await vi.waitFor(
      async () => {
        const value = await probe();
        if (value === undefined || value === null || value === false) throw new Error('not yet');
        return value;
      },
      { timeout, interval: opts.interval ?? 50 },
    );
  } catch (err) {
    const last = (err as Error).message;
    throw new Error(`timed out after ${timeout} ms waiting for ${what}${last === 'not yet' ? '' : ` (last error: ${last})`}`);
  }
}

/**
 * Bounded waits shared by the drivers. Every wait on a database goes through one of these, so a
 * hung server or a lost packet can never park a request forever.
 */
import type { DbType } from '../config/schema.js';
import { classifyError } from './classify.js';
import { DbDriverError, type StatementSignal } from './types.js';

/** The error every driver throws when a statement ran past its limit. */
export function timeoutError(what: string, seconds: number, connectionUsable: boolean): DbDriverError {
  return new DbDriverError(`${what} timed out after ${seconds} s`, { kind: 'timeout', connectionUsable, driverCode: 'WT_TIMEOUT' });
}

/** The error a statement stopped through its signal fails with (see runStoppable). */
export function cancelledError(what: string, connectionUsable: boolean): DbDriverError {
  return new DbDriverError(`${what} cancelled on the server: its client left`, { kind: 'cancelled', connectionUsable, driverCode: 'WT_CANCELLED' });
}

/** Seconds → milliseconds for timers, never below 1 ms (a zero timer would fire before any I/O). */
export function toMs(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/**
 * Resolves with `op`, or rejects with `onTimeout()`'s error once `ms` have passed. The timer is
 * always cleared; a late settlement of `op` is observed so it never becomes an unhandled rejection.
 */
export function withTimeout<T>(op: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    op.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Waits for `p` to settle (either way) for at most `ms`; true when it settled in time. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = p.then(
    () => true,
    () => true,
  );
  return withTimeout(settled, ms, () => new Error('not settled')).catch(() => false);
}

const EXPIRED = Symbol('expired');
const CANCELLED = Symbol('cancelled');

/**
 * Runs `op` bounded by `ms` and by `signal`. On expiry, or when the signal aborts, `stop()` is
 * called to really stop the statement on the server and report whether the connection is still
 * clean; the caller then gets a timeout (or cancelled) error, never the late result or error of `op`.
 */
export async function runStoppable<T>(
  op: Promise<T>,
  ms: number,
  stop: () => Promise<boolean>,
  what: string,
  signal?: StatementSignal,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const ended = new Promise<typeof EXPIRED | typeof CANCELLED>((resolve) => {
    if (signal?.aborted) return resolve(CANCELLED);
    timer = setTimeout(() => resolve(EXPIRED), ms);
    if (signal !== undefined) {
      onAbort = () => resolve(CANCELLED);
      signal.addEventListener('abort', onAbort);
    }
  });
  let why: typeof EXPIRED | typeof CANCELLED;
  try {
    const first: T | typeof EXPIRED | typeof CANCELLED = await Promise.race([op, ended]);
    if (first === EXPIRED || first === CANCELLED) why = first as typeof EXPIRED | typeof CANCELLED; // T cannot be narrowed against a symbol
    else return first;
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
  op.catch(() => undefined); // its rejection (e.g. "query cancelled") is the expected outcome now
  const usable = await stop().catch(() => false);
  throw why === CANCELLED ? cancelledError(what, usable) : timeoutError(what, ms / 1000, usable);
}

/** A point in time shared by several waits, e.g. the statements of one transaction. */
export class Deadline {
  private readonly end: number;
  constructor(readonly ms: number) {
    this.end = Date.now() + ms;
  }
  /** True once the point has passed. */
  expired(): boolean {
    return Date.now() >= this.end;
  }
  /** Milliseconds left, at least 1 so a timer still fires through the normal path. */
  remaining(): number {
    return Math.max(1, this.end - Date.now());
  }
}

/** Bound on housekeeping waits: a server-side cancel, proving a connection clean, a graceful close. */
export const HOUSEKEEPING_MS = 2000;

/**
 * After a timeout: asks the server to stop the statement (from a side channel), waits for the
 * statement to end, then proves the connection answers. False at the first step that fails.
 */
export async function stopAndProve(
  running: Promise<unknown> | undefined,
  cancelOnServer: () => Promise<unknown>,
  prove: () => Promise<unknown>,
): Promise<boolean> {
  const fail = () => new Error('housekeeping timed out');
  // Its failure (the statement cancelled) is expected; if a step below fails first, nobody else awaits it.
  running?.catch(() => undefined);
  try {
    await withTimeout(cancelOnServer(), HOUSEKEEPING_MS, fail);
    if (running && !(await settledWithin(running, HOUSEKEEPING_MS))) return false;
    await withTimeout(prove(), HOUSEKEEPING_MS, fail);
    return true;
  } catch {
    return false;
  }
}

/**
 * How long a transaction waits for the answer to its COMMIT, once sent. It is a wait of its own,
 * not part of the query timeout: the server may commit whatever we do after sending, so cutting the
 * wait short (or cancelling) could only turn a commit into a false failure.
 */
export const COMMIT_OUTCOME_MS = 10_000;

/**
 * COMMIT was sent and no clear answer came: the rows may or may not have been written. Never
 * reported as a failure, since that could be false; the connection is not reused.
 */
export class CommitOutcomeUnknown extends DbDriverError {
  constructor(detail: string, cause?: unknown) {
    super(`transaction outcome unknown: ${detail}`, { kind: 'broken', connectionUsable: false, driverCode: 'WT_COMMIT_UNKNOWN', cause });
  }
}

/**
 * Waits for the answer to a COMMIT already sent (at most COMMIT_OUTCOME_MS) and reports it truthfully:
 * resolves when committed; rethrows a statement error the server answered with (a deferred
 * constraint, a serialization failure: the transaction was rolled back); anything else (no answer
 * in time, the connection lost, the statement interrupted) is CommitOutcomeUnknown, after
 * `abandon()` marks the connection unusable.
 */
export async function awaitCommit(dbType: DbType, commit: Promise<unknown>, abandon: () => void): Promise<void> {
  const ms = COMMIT_OUTCOME_MS;
  try {
    await withTimeout(commit, ms, () => new CommitOutcomeUnknown(`COMMIT was sent but not answered within ${ms / 1000} s`));
    return;
  } catch (err) {
    const e = classifyError(dbType, err);
    if (!(err instanceof CommitOutcomeUnknown) && (e.kind === 'query' || e.kind === 'constraint') && e.connectionUsable) throw e;
    abandon();
    throw err instanceof CommitOutcomeUnknown ? err : new CommitOutcomeUnknown(`COMMIT was sent and failed without a clear answer (${e.message})`, e);
  }
}

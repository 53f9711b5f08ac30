/**
 * RowStream on top of a batch source: rows are pulled a batch at a time, each wait for a batch is
 * bounded by the query timeout (a slow reader is not), and the statement is stopped exactly once
 * on cancel, early break, error or timeout.
 */
import type { Readable } from 'node:stream';
import { DbDriverError, type Row, type RowStream } from './types.js';
import { HOUSEKEEPING_MS, runStoppable, settledWithin } from './timeout.js';

export interface BatchSource<T = Row> {
  /** Waits for the next rows (at least one), or null once the statement has no more. */
  next(): Promise<T[] | null>;
  /**
   * Stops the statement early (it may be mid-wait); bounded; resolves to whether the connection is
   * clean. `overran`: the statement ran past its timeout and must be stopped at once; otherwise the
   * consumer left, and a source may first let a batch already on its way arrive (cheaper to stop).
   */
  stop(overran?: boolean): Promise<boolean>;
}

interface StreamOptions {
  timeoutMs: number;
  classify: (err: unknown) => DbDriverError;
  /** Called once when the stream is over, with whether the connection is clean. */
  onFinish: (usable: boolean) => void;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export function createRowStream<T>(source: BatchSource<T>, opts: StreamOptions): RowStream<T> {
  let batch: T[] = [];
  let i = 0;
  let finished = false;
  /** The source's fetch now running, if any: the connection is not free before it has returned. */
  let fetching: Promise<T[] | null> | undefined;

  const finish = (usable: boolean) => {
    if (finished) return;
    finished = true;
    batch = [];
    opts.onFinish(usable);
  };

  const next = async (): Promise<IteratorResult<T>> => {
    while (i >= batch.length) {
      if (finished) return DONE;
      let rows: T[] | null;
      const fetch = source.next();
      fetching = fetch;
      try {
        rows = await runStoppable(fetch, opts.timeoutMs, () => source.stop(true), 'stream fetch');
      } catch (err) {
        if (finished) return DONE; // cancelled while waiting: the cancel already cleaned up
        const e = opts.classify(err);
        // An error mid-stream leaves the protocol state unknown unless the source proves otherwise.
        finish(e.kind === 'timeout' ? e.connectionUsable : e.connectionUsable && (await source.stop().catch(() => false)));
        throw e;
      } finally {
        if (fetching === fetch) fetching = undefined;
      }
      if (finished) return DONE;
      if (rows === null) {
        finish(true);
        return DONE;
      }
      batch = rows;
      i = 0;
    }
    return { done: false, value: batch[i++] };
  };

  const cancel = async (): Promise<void> => {
    if (finished) return;
    finished = true; // before stopping, so a pending next() ends quietly
    batch = [];
    const inFlight = fetching;
    let usable = await source.stop().catch(() => false);
    // A fetch that was running (the statement starting, or a batch on its way) must have returned
    // before the connection is free again, or the next request would find it busy. stop() ends it;
    // one that does not return in time leaves the connection in an unknown state.
    if (inFlight && !(await settledWithin(inFlight, HOUSEKEEPING_MS))) usable = false;
    opts.onFinish(usable);
  };

  return {
    cancel,
    [Symbol.asyncIterator]: () => ({
      next,
      return: async () => {
        await cancel();
        return DONE;
      },
    }),
  };
}

/**
 * Pulls up to `max` objects at a time from an object-mode Readable (mysql2's query stream), or with
 * `pushesBatches` one item that is itself a batch of rows (PortalStream). The Readable's own
 * highWaterMark provides the backpressure: nothing more is fetched from the server while its
 * buffer is full.
 */
export function readableBatches(stream: Readable, max: number, pushesBatches = false): () => Promise<Row[] | null> {
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  stream.on('readable', signal);
  stream.on('end', () => {
    ended = true;
    signal();
  });
  stream.on('error', (err: unknown) => {
    failure = err;
    signal();
  });
  stream.on('close', signal);

  return async () => {
    for (;;) {
      if (failure !== undefined) throw failure;
      if (pushesBatches) {
        const batch = stream.read() as Row[] | null;
        if (batch !== null) return batch;
      } else {
        const rows: Row[] = [];
        let row: unknown;
        while (rows.length < max && (row = stream.read()) !== null) rows.push(row as Row);
        if (rows.length > 0) return rows;
      }
      if (ended) return null;
      if (stream.destroyed) throw new Error('row stream closed before its end');
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
}

/**
 * Messages between a SQLite connection and its worker thread or process. Both channels carry JSON
 * (a thread's messages are JSON text): for these small messages structured clone was much slower
 * (JSON cut the CPU per query, parent and worker process together, by about a fifth in the benchmark). The few values JSON cannot carry travel tagged: bigint parameters, and in rows BLOBs
 * and non-finite numbers; a reply whose rows hold any says so (`tagged`), so plain rows are never
 * walked twice.
 */
import type { LineEncoding, Row } from './types.js';

/** Values the worker can bind (booleans and Dates are converted before sending). */
export type WorkerParam = string | number | null | { $bigint: string };

/** A row value JSON cannot carry as is. */
export type TaggedValue = { $blob: string } | { $number: 'Infinity' | '-Infinity' | 'NaN' };

export type WorkerRequest =
  /** interruptExtension: a thread's, which it loads to be interruptible (see sqlite-interrupt.ts). */
  | { type: 'open'; path: string; busyTimeoutMs: number; interruptExtension?: string }
  | { type: 'query'; id: number; sql: string; params: WorkerParam[] }
  /** Prepares the statement (never runs it) and answers its result columns. */
  | { type: 'describe'; id: number; sql: string }
  /** Runs the statements in a transaction left open: the worker answers 'prepared' and waits for 'commit' or 'rollback'. */
  | { type: 'tx'; id: number; statements: { sql: string; params: WorkerParam[] }[] }
  | { type: 'commit'; id: number }
  | { type: 'rollback'; id: number }
  /** lines: each batch comes as text ('lines'), encoded in the worker (see EncodedRows). */
  | { type: 'stream'; id: number; sql: string; params: WorkerParam[]; batchSize: number; lines?: LineEncoding }
  | { type: 'more'; id: number }
  | { type: 'cancel'; id: number }
  | { type: 'close' };

/** A result column: its declared type (null for an expression) and whether its table declares it NOT NULL. */
export interface ColumnInfo {
  name: string;
  type: string | null;
  notNull: boolean;
}

export interface WorkerErrorInfo {
  name: string;
  message: string;
  code?: string;
}

export type WorkerReply =
  /** token: the thread's connection in the interrupt extension's registry. */
  | { type: 'ready'; token?: number }
  | { type: 'result'; id: number; rows: Row[]; rowCount: number; tagged?: true }
  /** null: the statement returns no rows. */
  | { type: 'columns'; id: number; columns: ColumnInfo[] | null }
  | { type: 'prepared'; id: number }
  | { type: 'counts'; id: number; counts: number[] }
  | { type: 'rolled-back'; id: number }
  | { type: 'batch'; id: number; rows: Row[]; done: boolean; tagged?: true }
  /**
   * A batch of a stream asked for lines: `rows` lines in `text` (from a thread, as UTF-8 bytes whose
   * buffer is transferred; from a process, as a string); `columns` of the rows.
   */
  | { type: 'lines'; id: number; text: string | Uint8Array; rows: number; columns: string[]; done: boolean }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id: number; error: WorkerErrorInfo };

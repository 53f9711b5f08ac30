/** Messages between a SQLite connection and its worker process (structured-clone IPC). */
import type { Row } from './types.js';

/** Values the worker can bind (booleans and Dates are converted before sending). */
export type WorkerParam = string | number | bigint | null | Uint8Array;

export type WorkerRequest =
  | { type: 'open'; path: string; busyTimeoutMs: number }
  | { type: 'query'; id: number; sql: string; params: WorkerParam[] }
  | { type: 'tx'; id: number; statements: { sql: string; params: WorkerParam[] }[] }
  | { type: 'stream'; id: number; sql: string; params: WorkerParam[]; batchSize: number }
  | { type: 'more'; id: number }
  | { type: 'cancel'; id: number }
  | { type: 'close' };

export interface WorkerErrorInfo {
  name: string;
  message: string;
  code?: string;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; rows: Row[]; rowCount: number }
  | { type: 'counts'; id: number; counts: number[] }
  | { type: 'batch'; id: number; rows: Row[]; done: boolean }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id: number; error: WorkerErrorInfo };

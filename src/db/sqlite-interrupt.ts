/**
 * The main thread's side of native/sqlite-interrupt.c, the sqlite3_interrupt() binding that lets a
 * SQLite connection live in a worker thread and still have its statement stopped: each worker's
 * connection loads the extension and learns its token; the main thread asks its own in-memory
 * control connection, which alone has wt_interrupt(), to interrupt the connection with that token.
 * The call takes microseconds (a lock and a flag) and runs no caller's SQL.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { SqliteWorkers } from '../config/schema.js';

const EXTENSION = process.platform === 'darwin' ? 'sqlite-interrupt.dylib' : 'sqlite-interrupt.so';

/** Where scripts/build-sqlite-interrupt.mjs puts the extension: native/build/ at the package root (from dist/db or src/db). */
export function interruptExtensionPath(): string {
  return fileURLToPath(new URL(`../../native/build/${EXTENSION}`, import.meta.url));
}

export interface Interrupter {
  /** The extension the worker connections load. */
  readonly path: string;
  /** Stops what the connection with this token runs now; false when no open connection has it. */
  interrupt(token: number): boolean;
}

/** better-sqlite3 takes an entry point as loadExtension's second argument; its type declarations omit it. */
export function loadExtensionEntry(db: Database.Database, path: string, entryPoint: string): void {
  (db.loadExtension as (this: Database.Database, path: string, entryPoint: string) => Database.Database).call(db, path, entryPoint);
}

let loaded: Interrupter | Error | undefined;

/** The process's interrupter, or why there is none (built once; the answer never changes). */
export function loadInterrupter(): Interrupter | Error {
  loaded ??= openInterrupter(interruptExtensionPath());
  return loaded;
}

/** An interrupter through the extension at `path` (exported for tests; see loadInterrupter). */
export function openInterrupter(path: string): Interrupter | Error {
  if (!existsSync(path)) return new Error(`the SQLite interrupt extension ${path} is not built (it needs a C compiler at npm install; see README)`);
  try {
    const control = new Database(':memory:');
    loadExtensionEntry(control, path, 'sqlite3_wtinterruptctl_init');
    const stmt = control.prepare('SELECT wt_interrupt(?)').pluck();
    return { path, interrupt: (token) => stmt.get(token) === 1 };
  } catch (err) {
    return new Error(`the SQLite interrupt extension ${path} does not load: ${(err as Error).message}`);
  }
}

/** What a resource's connections run in: threads when the extension loads, unless processes are asked for. */
export type WorkerKind = { kind: 'threads'; interrupter: Interrupter } | { kind: 'processes'; why: string };

/** Resolves sqlite_workers; throws when threads are required and cannot be had. */
export function workerKind(setting: SqliteWorkers, load: () => Interrupter | Error = loadInterrupter): WorkerKind {
  if (setting === 'processes') return { kind: 'processes', why: 'sqlite_workers is processes' };
  const interrupter = load();
  if (!(interrupter instanceof Error)) return { kind: 'threads', interrupter };
  if (setting === 'threads') throw new Error(`sqlite_workers is threads, but ${interrupter.message}`);
  return { kind: 'processes', why: interrupter.message };
}

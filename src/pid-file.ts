/**
 * The pid file (config `pid_file`): names the process that signals are meant for. Written
 * atomically (a temporary file renamed over it), so a reader never sees a half-written pid, and
 * removed when the process exits, unless another process has written its own pid there since.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The pid a pid file holds, or undefined when it is missing or holds no pid. */
export function readPidFile(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return /^[1-9][0-9]*$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the file if it still holds `pid`; returns whether it did. */
export function removePidFile(file: string, pid = process.pid): boolean {
  if (readPidFile(file) !== pid) return false;
  rmSync(file, { force: true });
  return true;
}

export interface WrittenPidFile {
  /** Absolute path. */
  path: string;
  /** A running process whose pid the file held before (another gateway using the same file?). */
  replacedPid?: number;
}

/** Writes this process's pid to `file` (creating its directory) and removes it at exit. Throws on failure. */
export function writePidFile(file: string, pid = process.pid): WrittenPidFile {
  const path = resolve(file);
  const before = readPidFile(path);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  process.once('exit', () => {
    try {
      removePidFile(path, pid);
    } catch {
      // Exiting anyway: a stale pid file is overwritten by the next start.
    }
  });
  return { path, replacedPid: before !== undefined && before !== pid && isRunning(before) ? before : undefined };
}

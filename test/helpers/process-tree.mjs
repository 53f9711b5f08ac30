// Process-tree helpers for the test watchdogs. Plain JavaScript: the stall watchdog's thread loads
// it directly, outside vitest's transform.
import { execFileSync } from 'node:child_process';

function ps(args) {
  return execFileSync('ps', args, { encoding: 'utf8', timeout: 10_000 });
}

/** Every live descendant of `root`, parents before their children. */
export function descendantsOf(root) {
  const children = new Map();
  for (const line of ps(['-eo', 'pid=,ppid=']).trim().split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found = [];
  for (let i = -1; i < found.length; i++) {
    for (const child of children.get(i < 0 ? root : found[i]) ?? []) found.push(child);
  }
  return found;
}

/** One line per process: how long it has run, its state, what it waits on in the kernel, its command. */
export function describeProcesses(pids) {
  try {
    return ps(['-o', 'pid,ppid,etimes,stat,wchan:32,args', '--forest', '-p', pids.join(',')]);
  } catch (err) {
    return `(ps failed: ${err.message})\n`;
  }
}

/** Sends SIGKILL to each of `pids` that still exists. */
export function killAll(pids) {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

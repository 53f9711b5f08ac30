// Process-tree helpers for the test watchdogs. Plain JavaScript: the stall watchdog's thread loads
// it directly, outside vitest's transform.
import { execFileSync } from 'node:child_process';
import { processTree } from '../../bench/lib/processes.mjs';

function ps(args) {
  return execFileSync('ps', args, { encoding: 'utf8', timeout: 10_000 });
}

/** Every live descendant of `root` (the benchmarks' process-tree walk, without `root`). */
export function descendantsOf(root) {
  return processTree(root).slice(1);
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

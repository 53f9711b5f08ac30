/**
 * vitest globalSetup: bounds the whole run. The per-process stall watchdog catches a test process
 * whose event loop stops; this catches anything else that keeps the run from ending (the suite
 * takes a few minutes). It prints the process tree, with what each process waits on in the kernel,
 * so the cause can be found from a CI log, then ends the run with a failure.
 */
import { execFileSync } from 'node:child_process';

const LIMIT_S = Number(process.env.WT_TEST_RUN_LIMIT_S ?? 1800);

/** This process and its descendants: what each runs, for how long, and what it waits on. */
function processTree(): string {
  const ps = (args: string[]) => execFileSync('ps', args, { encoding: 'utf8', timeout: 10_000 });
  const parentOf = new Map<number, number>();
  for (const line of ps(['-eo', 'pid=,ppid=']).trim().split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    parentOf.set(pid, ppid);
  }
  const ours = [...parentOf.keys()].filter((pid) => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parentOf.get(p)) if (p === process.pid) return true;
    return false;
  });
  return ps(['-o', 'pid,ppid,etimes,stat,wchan:32,args', '--forest', '-p', ours.join(',')]);
}

export default function setup(): () => void {
  const timer = setTimeout(() => {
    let tree: string;
    try {
      tree = processTree();
    } catch (err) {
      tree = `(ps failed: ${(err as Error).message})`;
    }
    process.stderr.write(`\n[run-watchdog] the test run has not ended after ${LIMIT_S} s; processes:\n${tree}\n`);
    process.exit(1);
  }, LIMIT_S * 1000);
  timer.unref();
  return () => clearTimeout(timer);
}

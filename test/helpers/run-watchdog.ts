/**
 * vitest globalSetup: bounds the whole run. The per-process stall watchdog catches a test process
 * whose event loop stops; this catches anything else that keeps the run from ending (the suite
 * takes a few minutes). It prints the process tree, with what each process waits on in the kernel,
 * so the cause can be found from a CI log, then kills them all and ends the run with a failure.
 */
import { descendantsOf, describeProcesses, killAll } from './process-tree.mjs';

const LIMIT_S = Number(process.env.WT_TEST_RUN_LIMIT_S ?? 1800);

export default function setup(): () => void {
  const timer = setTimeout(() => {
    const ours = descendantsOf(process.pid);
    process.stderr.write(`\n[run-watchdog] the test run has not ended after ${LIMIT_S} s; processes:\n${describeProcesses([process.pid, ...ours])}\n`);
    // Test processes outlive a vitest that exits (and spin once their channel is gone): take them all.
    killAll(ours);
    process.exit(1);
  }, LIMIT_S * 1000);
  timer.unref();
  return () => clearTimeout(timer);
}

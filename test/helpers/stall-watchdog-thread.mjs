// The stall watchdog's thread (see stall-watchdog.ts): it runs while the main thread is stuck.
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { descendantsOf, describeProcesses, killAll } from './process-tree.mjs';

const { heartbeat, limitMs } = workerData;
let current = '(between tests)';
parentPort.on('message', (name) => {
  current = name;
});

let seen = Atomics.load(heartbeat, 0);
let since = Date.now();
setInterval(() => {
  const now = Atomics.load(heartbeat, 0);
  if (now !== seen) {
    seen = now;
    since = Date.now();
    return;
  }
  if (Date.now() - since < limitMs) return;
  // The test's own children (gateways, servers) go too: orphans would hold ports and pipes.
  const children = descendantsOf(process.pid);
  writeSync(
    2,
    `\n[stall-watchdog] test process ${process.pid}: the event loop has not run for ${Math.round((Date.now() - since) / 1000)} s, ` +
      `in: ${current}. Killing it and its children so the run can end:\n${describeProcesses([process.pid, ...children])}`,
  );
  killAll(children);
  process.kill(process.pid, 'SIGKILL');
}, 1000);

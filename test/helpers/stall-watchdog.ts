/**
 * Loaded into every test process (vitest setupFiles). A test's own timeout runs on the event loop,
 * so a native call that blocks the main thread for good (a driver waiting on a lock or a silent
 * server) would leave the suite running for ever. A thread of its own watches the main thread's
 * heartbeat and, after STALL_LIMIT_MS without one, names the test on stderr and kills the process:
 * vitest then reports that file as failed and the run ends.
 */
import { Worker } from 'node:worker_threads';
import { beforeEach } from 'vitest';

/** Above the longest legitimate block (a spawnSync bounded at 60 s) and the 60 s hook timeout. */
const STALL_LIMIT_MS = Number(process.env.WT_TEST_STALL_LIMIT_MS ?? 120_000);
const HEARTBEAT_MS = 500;

const heartbeat = new Int32Array(new SharedArrayBuffer(4));
setInterval(() => Atomics.add(heartbeat, 0, 1), HEARTBEAT_MS).unref();

// Plain JavaScript evaluated in the thread; it reads the counter and the last test name it was sent.
const watcher = new Worker(
  `
  const { workerData, parentPort } = require('node:worker_threads');
  const { writeSync } = require('node:fs');
  const { heartbeat, limitMs } = workerData;
  let current = '(between tests)';
  parentPort.on('message', (name) => { current = name; });
  let seen = Atomics.load(heartbeat, 0);
  let since = Date.now();
  setInterval(() => {
    const now = Atomics.load(heartbeat, 0);
    if (now !== seen) { seen = now; since = Date.now(); return; }
    if (Date.now() - since < limitMs) return;
    writeSync(2, '\\n[stall-watchdog] test process ' + process.pid + ': the event loop has not run for ' + Math.round((Date.now() - since) / 1000) +
      ' s, in: ' + current + '. Killing this test process so the run can end.\\n');
    process.kill(process.pid, 'SIGKILL');
  }, 1000);
  `,
  { eval: true, workerData: { heartbeat, limitMs: STALL_LIMIT_MS } },
);
watcher.unref();

beforeEach((ctx) => {
  watcher.postMessage(`${ctx.task.file.name} > ${ctx.task.name}`);
});

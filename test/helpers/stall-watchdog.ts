/**
 * Loaded into every test process (vitest setupFiles). A test's own timeout runs on the event loop,
 * so a native call that blocks the main thread for good (a driver waiting on a lock or a silent
 * server) would leave the suite running for ever. A thread of its own watches the main thread's
 * heartbeat and, after STALL_LIMIT_MS without one, names the test on stderr and kills the process
 * and its children: vitest then reports that file as failed and the run ends.
 */
import { Worker } from 'node:worker_threads';
import { beforeEach } from 'vitest';

/** Above the longest legitimate block (a spawnSync bounded at 60 s) and the 60 s hook timeout. */
const STALL_LIMIT_MS = Number(process.env.WT_TEST_STALL_LIMIT_MS ?? 120_000);
const HEARTBEAT_MS = 500;

const heartbeat = new Int32Array(new SharedArrayBuffer(4));
setInterval(() => Atomics.add(heartbeat, 0, 1), HEARTBEAT_MS).unref();

const watcher = new Worker(new URL('./stall-watchdog-thread.mjs', import.meta.url), { workerData: { heartbeat, limitMs: STALL_LIMIT_MS } });
watcher.unref();

beforeEach((ctx) => {
  watcher.postMessage(`${ctx.task.file.name} > ${ctx.task.name}`);
});

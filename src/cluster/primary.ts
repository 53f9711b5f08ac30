/**
 * The cluster primary: forks `workers` workers sharing the port, replaces crashed ones (with
 * backoff), recycles workers that served their quota, restarts them one at a time on SIGHUP
 * (once the config and endpoint files pass their checks),
 * fans out SIGUSR1 reloads and SIGTERM/SIGINT shutdowns, and answers workers' requests for the
 * cluster-wide metrics. It serves no HTTP itself.
 */
import cluster, { type Worker } from 'node:cluster';
import { config, configPaths, loadSettings, reloadConfig } from '../config/index.js';
import { loadEndpoints } from '../endpoints/load.js';
import { checkEndpointStatements } from '../endpoints/startup-check.js';
import { ConfigError } from '../errors.js';
import { logConfigError } from '../gateway.js';
import { flushLogs, getLogger } from '../log/index.js';
import { ClusterMetrics } from './merge.js';
import { isToPrimary, type Snapshot, type ToWorker } from './messages.js';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import { Replies } from './replies.js';

const log = getLogger('primary.ts');

/** How long one worker gets to answer a metrics collection before its last snapshot stands in. */
export const COLLECT_TIMEOUT_MS = 2_000;
/** How long a new worker gets to start listening. */
const LISTEN_TIMEOUT_MS = 30_000;
/** Added to shutdown_timeout before a worker that does not exit is killed. */
const EXIT_MARGIN_MS = 5_000;
/** Crash backoff: 250 ms doubling per crash in the last minute, at most 30 s. */
const CRASH_WINDOW_MS = 60_000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;

const metrics = new ClusterMetrics();
const snapshots = new Replies<Snapshot>();
/** Workers we asked to stop (or gave up on): their exit is expected, not a crash. */
const retiring = new Set<number>();
/** New workers whose start-up a replacement is waiting for: a failure is handled there. */
const starting = new Set<number>();
const crashTimes: number[] = [];
const respawnTimers = new Set<NodeJS.Timeout>();
let shuttingDown = false;
/** Replacements (recycle, rolling restart) run one at a time, in order. */
let replacements: Promise<void> = Promise.resolve();

function exitBoundMs(): number {
  return config().shutdown_timeout * 1000 + EXIT_MARGIN_MS;
}

/** Workers that reached 'listening': only they have their IPC handlers installed. */
const listening = new Set<number>();

function tell(worker: Worker, msg: ToWorker): void {
  // With a callback a closed channel is reported to it, instead of as an 'error' event.
  if (worker.isConnected()) worker.send(msg, undefined, undefined, () => undefined);
}

function liveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
}

/** Resolves true once the worker listens, false if it exits or the time is up first. */
function waitListening(worker: Worker, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      worker.off('listening', onListen);
      worker.off('exit', onExit);
      resolve(ok);
    };
    const onListen = () => done(true);
    const onExit = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    timer.unref();
    worker.once('listening', onListen);
    worker.once('exit', onExit);
  });
}

/** Resolves true once the worker has exited, false if the time is up first. */
function waitExit(worker: Worker, ms: number): Promise<boolean> {
  if (worker.isDead()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      worker.off('exit', onExit);
      resolve(false);
    }, ms);
    timer.unref();
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    worker.once('exit', onExit);
  });
}

/** Graceful stop: ask, wait up to shutdown_timeout + margin, then kill. */
async function stopWorker(worker: Worker): Promise<void> {
  retiring.add(worker.id);
  // A worker still starting may not listen to IPC yet, and has served nothing: a signal will do.
  if (listening.has(worker.id)) tell(worker, { wt: 'shutdown' });
  else worker.process.kill('SIGTERM');
  if (await waitExit(worker, exitBoundMs())) return;
  log.error('shutdown-timeout', 'worker did not exit in time: killing it', { pid: worker.process.pid });
  worker.process.kill('SIGKILL');
  await waitExit(worker, EXIT_MARGIN_MS);
}

function spawn(): Worker {
  const worker = cluster.fork();
  metrics.add(worker.id);
  worker.on('message', (msg: unknown) => onMessage(worker, msg));
  worker.on('listening', () => listening.add(worker.id));
  worker.on('error', (err: Error) => log.warning('worker-err', `IPC with worker failed: ${err.message}`, { pid: worker.process.pid }));
  // Retire once both the process and its IPC channel are gone, so a final snapshot sent just
  // before exiting has been read first.
  let exited = false;
  let disconnected = false;
  const gone = () => {
    if (exited && disconnected) metrics.retire(worker.id);
  };
  worker.on('disconnect', () => {
    disconnected = true;
    gone();
  });
  worker.on('exit', (code: number | null, signal: string | null) => {
    exited = true;
    listening.delete(worker.id);
    if (!worker.isConnected()) disconnected = true;
    gone();
    onExit(worker, code, signal);
  });
  log.info('worker-start', 'worker forked', { pid: worker.process.pid });
  return worker;
}

function onExit(worker: Worker, code: number | null, signal: string | null): void {
  const pid = worker.process.pid;
  if (retiring.delete(worker.id)) {
    log.info('worker-exit', 'worker stopped', { pid, code, signal });
    return;
  }
  log.error('worker-exit', 'worker exited unexpectedly', { pid, code, signal });
  if (shuttingDown || starting.has(worker.id)) return; // a pending replacement reports its own failure
  const now = Date.now();
  crashTimes.push(now);
  while (crashTimes.length > 0 && crashTimes[0] < now - CRASH_WINDOW_MS) crashTimes.shift();
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (crashTimes.length - 1));
  // Not unref'd: when every worker is down, this timer is what the primary is waiting for.
  const timer = setTimeout(() => {
    respawnTimers.delete(timer);
    if (!shuttingDown) spawn();
  }, delay);
  respawnTimers.add(timer);
}

/** Starts a replacement, waits until it listens, then gracefully stops the old worker. */
function replace(old: Worker, why: string): Promise<void> {
  const run = async () => {
    if (shuttingDown || old.isDead() || retiring.has(old.id)) return;
    log.info('worker-recycle', `replacing worker: ${why}`, { pid: old.process.pid });
    const fresh = spawn();
    starting.add(fresh.id);
    const ok = await waitListening(fresh, LISTEN_TIMEOUT_MS);
    starting.delete(fresh.id);
    if (!ok) {
      log.error('worker-recycle', 'replacement did not start listening; the old worker keeps serving', { pid: fresh.process.pid });
      if (!fresh.isDead()) {
        retiring.add(fresh.id);
        fresh.process.kill('SIGKILL');
      }
      return;
    }
    await stopWorker(old);
  };
  const guarded = () =>
    run().catch((err: unknown) => log.error('task-exc', `worker replacement failed: ${(err as Error).message}`, { pid: old.process.pid }));
  replacements = replacements.then(guarded);
  return replacements;
}

/** Fresh snapshots from every live worker (each bounded), then the merged text. */
async function aggregateText(): Promise<string> {
  await Promise.all(
    liveWorkers()
      .filter((w) => w.isConnected() && listening.has(w.id))
      .map(async (w) => {
        const { id, reply } = snapshots.open(COLLECT_TIMEOUT_MS, `metrics of worker ${w.process.pid}`);
        tell(w, { wt: 'collect', id });
        try {
          metrics.update(w.id, await reply);
        } catch {
          // Slow or exiting worker: its last snapshot stands in, so nothing goes backwards.
        }
      }),
  );
  return metrics.text();
}

function onMessage(worker: Worker, msg: unknown): void {
  if (!isToPrimary(msg)) return;
  switch (msg.wt) {
    case 'recycle':
      void replace(worker, 'request quota reached');
      return;
    case 'snapshot':
      snapshots.resolve(msg.id, msg.metrics);
      return;
    case 'final':
      metrics.update(worker.id, msg.metrics);
      return;
    case 'aggregate':
      aggregateText().then(
        (text) => tell(worker, { wt: 'aggregate-result', id: msg.id, text }),
        (err: unknown) => tell(worker, { wt: 'aggregate-result', id: msg.id, error: (err as Error).message }),
      );
      return;
  }
}

function onReload(): void {
  log.info('sig-received', 'SIGUSR1 received: reloading config in the primary and every worker');
  reloadConfig().catch((err: unknown) => {
    const message = err instanceof ConfigError ? err.message : 'unexpected error';
    log.error('config-err', `config reload failed: ${message}`);
  });
  // Workers re-read the files themselves and report their own result.
  for (const w of liveWorkers()) tell(w, { wt: 'reload' });
}

async function onRollingRestart(): Promise<void> {
  log.info('sig-received', 'SIGHUP received: checking the config and endpoint files, then restarting workers one at a time');
  // New workers read the files as they are now: with a set that fails its checks every one of
  // them would fail to start, so it is refused before any worker is replaced. So is a set with a
  // statement its database refuses, which the single process and start-up refuse too.
  try {
    const candidate = loadSettings(configPaths());
    await checkEndpointStatements(candidate, loadEndpoints(candidate), { plan: true });
  } catch (err) {
    if (err instanceof ConfigError) logConfigError(err, 'switch');
    else log.error('config-err', `rolling restart refused, the workers keep serving: ${(err as Error).message}`);
    return;
  }
  for (const w of liveWorkers()) void replace(w, 'rolling restart');
}

async function onShutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info('sig-received', `${signal} received: stopping all workers`);
  for (const t of respawnTimers) clearTimeout(t);
  respawnTimers.clear();
  await Promise.all(liveWorkers().map((w) => stopWorker(w)));
  log.info('tasks-done', 'all workers stopped');
  flushLogs();
  process.exit(0);
}

/**
 * Starts the cluster. Resolves once the first workers listen (or failed to start); from then on
 * the primary lives on its signal handlers and exits 0 after a SIGTERM/SIGINT shutdown.
 */
export async function runPrimary(): Promise<void> {
  process.on('SIGUSR1', onReload);
  process.on('SIGHUP', () => void onRollingRestart());
  process.on('SIGTERM', () => void onShutdown('SIGTERM'));
  process.on('SIGINT', () => void onShutdown('SIGINT'));
  // Keeps the rate-limit counters of every worker (rate-limiter-flexible's IPC, channel
  // rate_limiter_flexible: no clash with our `wt` messages), so a limit holds for the whole group.
  new RateLimiterClusterMaster();
  const n = config().workers;
  log.info('task-running', `cluster primary starting ${n} workers`, { workers: n });
  const first = Array.from({ length: n }, () => spawn());
  await Promise.all(first.map((w) => waitListening(w, LISTEN_TIMEOUT_MS)));
}

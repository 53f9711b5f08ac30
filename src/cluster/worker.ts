/**
 * The worker side of cluster mode: answers the primary's IPC (reload, shutdown, metrics
 * collection), asks it for the cluster-wide metrics on a scrape, and counts requests towards
 * recycling after max_requests (+ 0..max_requests_jitter).
 */
import { randomInt } from 'node:crypto';
import { config } from '../config/index.js';
import { flushLogs, getLogger } from '../log/index.js';
import type { Metrics } from '../metrics/catalogue.js';
import { isToWorker, type Snapshot, type ToPrimary } from './messages.js';
import { Replies } from './replies.js';

const log = getLogger('worker.ts');

/** How long a scrape waits for the primary's aggregate (it bounds each worker at 2 s). */
export const AGGREGATE_TIMEOUT_MS = 5_000;
/** Beyond shutdown_timeout, how long shutdown() may take before the worker exits anyway. */
const SHUTDOWN_MARGIN_MS = 5_000;
/**
 * After it stops accepting, a worker keeps serving normally this long before shutting down: a
 * connection the primary handed over just before the close still gets its answer, not a 503.
 */
export const DRAIN_GRACE_MS = 300;

export interface WorkerOptions {
  metrics: Metrics;
  /** Re-reads config (and records wt_config_reloads_total); must not throw. */
  reload: () => void;
  /** Stops accepting, finishes in-flight requests, closes pools. Must resolve, not exit. */
  shutdown: () => Promise<void>;
  /**
   * Stops taking new connections without refusing requests yet (e.g. `() => app.server.close()`).
   * The primary then hands new connections to the other workers, so a recycled worker's clients
   * never see a "shutting down" 503. Without it shutdown() starts at once.
   */
  stopAccepting?: () => void;
}

export interface WorkerHandle {
  getAggregateMetrics(): Promise<string>;
  countRequest(): void;
}

let active: WorkerHandle | undefined;

/** For the onResponse hook: counts towards recycling in a cluster worker; a no-op otherwise. */
export function countRequest(): void {
  active?.countRequest();
}

function send(msg: ToPrimary, cb?: (err: Error | null) => void): void {
  if (process.send === undefined || !process.connected) {
    cb?.(new Error('no IPC channel to the primary'));
    return;
  }
  process.send(msg, undefined, undefined, (err) => cb?.(err));
}

/** The request quota of this worker: max_requests plus a random 0..jitter so workers do not recycle together. */
function requestQuota(): number {
  const { max_requests, max_requests_jitter } = config();
  if (max_requests <= 0) return Infinity;
  return max_requests + randomInt(max_requests_jitter + 1);
}

async function snapshot(metrics: Metrics): Promise<Snapshot> {
  // getMetricsAsJSON's typings declare `type` as an enum; at run time it is the exposition string.
  return (await metrics.registry.getMetricsAsJSON()) as unknown as Snapshot;
}

export function setupWorker(opts: WorkerOptions): WorkerHandle {
  const aggregates = new Replies<string>();
  const quota = requestQuota();
  let served = 0;
  let recycleAsked = false;
  let stopping = false;

  const gracefulExit = async () => {
    if (stopping) return;
    stopping = true;
    log.info('shutdown-wait', 'primary asked this worker to stop');
    if (opts.stopAccepting !== undefined) {
      try {
        opts.stopAccepting();
        await new Promise((r) => setTimeout(r, DRAIN_GRACE_MS));
      } catch (err) {
        log.error('task-exc', 'could not stop accepting connections', { error: (err as Error).message });
      }
    }
    const bound = config().shutdown_timeout * 1000 + SHUTDOWN_MARGIN_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        opts.shutdown(),
        new Promise<void>((resolve) => {
          // Deliberately not unref'd: this worker must leave through the final-snapshot path below.
          timer = setTimeout(() => {
            log.error('shutdown-timeout', 'graceful shutdown did not finish in time; exiting anyway', { timeout_ms: bound });
            resolve();
          }, bound);
        }),
      ]);
    } catch (err) {
      log.error('task-exc', 'graceful shutdown failed', { error: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
    // The final snapshot lets the primary keep this worker's counters after it is gone.
    let metrics: Snapshot = [];
    try {
      metrics = await snapshot(opts.metrics);
    } catch (err) {
      log.error('task-exc', 'final metrics snapshot failed', { error: (err as Error).message });
    }
    flushLogs();
    send({ wt: 'final', metrics }, () => process.exit(0));
  };

  process.on('message', (msg: unknown) => {
    if (!isToWorker(msg)) return;
    switch (msg.wt) {
      case 'reload':
        log.info('sig-received', 'primary asked for a config reload');
        try {
          opts.reload();
        } catch (err) {
          log.error('task-exc', 'config reload failed', { error: (err as Error).message });
        }
        return;
      case 'shutdown':
        void gracefulExit();
        return;
      case 'collect':
        snapshot(opts.metrics).then(
          (metrics) => send({ wt: 'snapshot', id: msg.id, metrics }),
          (err: unknown) => log.error('task-exc', 'metrics snapshot failed', { error: (err as Error).message }),
        );
        return;
      case 'aggregate-result':
        if (msg.text !== undefined) aggregates.resolve(msg.id, msg.text);
        else aggregates.reject(msg.id, new Error(msg.error ?? 'no aggregate'));
        return;
    }
  });

  const handle: WorkerHandle = {
    getAggregateMetrics() {
      const { id, reply } = aggregates.open(AGGREGATE_TIMEOUT_MS, 'cluster metrics');
      send({ wt: 'aggregate', id }, (err) => {
        if (err) aggregates.reject(id, err);
      });
      return reply;
    },
    countRequest() {
      served += 1;
      if (served >= quota && !recycleAsked) {
        recycleAsked = true;
        log.info('worker-recycle', 'request quota reached: asking the primary for a replacement', { requests: served });
        send({ wt: 'recycle' });
      }
    },
  };
  active = handle;
  return handle;
}

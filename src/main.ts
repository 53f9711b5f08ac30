/**
 * Process entry. Loads config (a bad file stops start-up with a config-err record and exit 1),
 * then runs either a single gateway process or, with workers > 1, a cluster primary whose workers
 * each run a gateway. Signals: SIGUSR1 reload, SIGTERM/SIGINT graceful shutdown, SIGHUP (cluster)
 * rolling restart.
 */
import './runtime-flags.js';
import cluster from 'node:cluster';
import { config, initConfig } from './config/index.js';
import { ConfigError } from './errors.js';
import { createGateway, logConfigError, type Gateway } from './gateway.js';
import { flushLogs, getLogger, oneLineTraceback, shareStdout } from './log/index.js';
import { runPrimary } from './cluster/primary.js';
import { setupWorker } from './cluster/worker.js';

const log = getLogger('main.ts');

function exitNow(code: number): never {
  flushLogs();
  process.exit(code);
}

process.on('uncaughtException', (err) => {
  log.critical('traceback', `uncaught exception: ${err.message}`, { traceback: oneLineTraceback(err) });
  exitNow(1);
});
process.on('unhandledRejection', (reason) => {
  log.error('traceback', 'unhandled promise rejection', { traceback: oneLineTraceback(reason) });
});

async function runGateway(): Promise<void> {
  let worker: ReturnType<typeof setupWorker> | undefined;
  const gateway: Gateway = await createGateway(
    cluster.isWorker ? { metricsText: () => worker!.getAggregateMetrics(), onRequestDone: () => worker!.countRequest() } : {},
  );
  const shutdown = async (signal: string) => {
    log.info('sig-received', `${signal} received: graceful shutdown`);
    await gateway.shutdown();
    exitNow(0);
  };
  // A SIGUSR1 listener also keeps Node from opening its inspector on that signal.
  process.on('SIGUSR1', () => {
    log.info('sig-received', 'SIGUSR1 received: reloading config');
    gateway.reload();
  });
  if (cluster.isWorker) {
    worker = setupWorker({
      metrics: gateway.metrics,
      reload: () => gateway.reload(),
      shutdown: () => gateway.shutdown(),
      // Stop taking connections first, so a recycled worker answers no 503 to connections handed to it.
      stopAccepting: () => gateway.app.server.close(),
    });
    // The primary coordinates shutdown of the whole group (Ctrl-C reaches every process).
    process.on('SIGINT', () => undefined);
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
  } else {
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
  }
  await gateway.listen();
}

async function main(): Promise<void> {
  try {
    initConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      logConfigError(err, 'start-up');
      exitNow(1);
    }
    throw err;
  }
  if (cluster.isPrimary && config().workers > 1) {
    shareStdout();
    await runPrimary();
  } else await runGateway();
}

main().catch((err: unknown) => {
  log.critical('start-err', `start-up failed: ${err instanceof Error ? err.message : String(err)}`, { traceback: oneLineTraceback(err) });
  exitNow(1);
});

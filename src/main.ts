/**
 * Process entry. Loads config (a bad file stops start-up with a config-err record and exit 1),
 * checks the declared statements on their databases (src/endpoints/startup-check.ts), then runs
 * either a single gateway process or, with workers > 1, a cluster primary whose workers each run a
 * gateway. Signals: SIGUSR1 reload, SIGTERM/SIGINT graceful shutdown, SIGHUP new
 * endpoint files (a single process switches to a new app, a cluster restarts its workers one at a
 * time). The process that takes these signals (the single process, or the primary)
 * writes its pid to `pid_file` once it serves.
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { config, configPaths, initConfig } from './config/index.js';
import type { Endpoint } from './endpoints/declaration.js';
import { loadEndpoints } from './endpoints/load.js';
import { checkEndpointStatements, type RowColumns } from './endpoints/startup-check.js';
import { ConfigError } from './errors.js';
import { createGateway, logConfigError, prepareResources, type Gateway } from './gateway.js';
import { flushLogs, getLogger, oneLineTraceback, shareStdout } from './log/index.js';
import { runPrimary } from './cluster/primary.js';
import { setupWorker } from './cluster/worker.js';
import { writePidFile } from './pid-file.js';
import { exposureAtStart } from './auth/exposure.js';

const log = getLogger('main.ts');

// Until a SIGUSR1 listener exists, Node answers that signal by opening its inspector on
// 127.0.0.1:9229; one sent during start-up is ignored instead (the real one is added later).
process.on('SIGUSR1', () => undefined);
// SIGHUP's default action ends the process; one sent during start-up is ignored instead.
if (cluster.isPrimary) process.on('SIGHUP', () => undefined);

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

async function runGateway(rowColumns: RowColumns): Promise<void> {
  let worker: ReturnType<typeof setupWorker> | undefined;
  const gateway: Gateway = await createGateway({
    rowColumns,
    ...(cluster.isWorker ? { metricsText: () => worker!.getAggregateMetrics(), onRequestDone: () => worker!.countRequest(), clusterRateLimits: true } : {}),
  });
  const shutdown = async (signal: string) => {
    log.info('sig-received', `${signal} received: graceful shutdown`);
    await gateway.shutdown();
    exitNow(0);
  };
  process.on('SIGUSR1', () => {
    log.info('sig-received', 'SIGUSR1 received: reloading config');
    void gateway.reload();
  });
  if (cluster.isWorker) {
    worker = setupWorker({
      metrics: gateway.metrics,
      reload: () => void gateway.reload(),
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
    process.on('SIGHUP', () => {
      log.info('sig-received', 'SIGHUP received: switching to the endpoint files as they are now');
      void gateway.switchEndpoints();
    });
  }
  await gateway.listen();
  if (!cluster.isWorker) announcePid();
}

/** Writes the pid file once this process serves and handles its signals; a failure stops start-up. */
function announcePid(): void {
  const file = config().pid_file;
  if (!file) return;
  const written = writePidFile(file);
  if (written.replacedPid !== undefined) {
    log.warning('pid-file', 'pid file held the pid of a running process; replaced (two gateways sharing one pid_file?)', {
      file: written.path,
      replaced_pid: written.replacedPid,
    });
  }
}

/** Says which files the configuration came from, so a reload's edits go to the right one. */
function logConfigFiles(): void {
  const { main, override } = configPaths();
  log.info('config-files', 'configuration loaded', {
    config_file: resolve(main),
    override_file: override ? resolve(override) : undefined,
    override_present: override ? existsSync(override) : undefined,
    pid_file: config().pid_file ? resolve(config().pid_file) : undefined,
  });
}

/** Says, at every start, when anyone who reaches the port can call the data; auth.required refuses it. */
function checkExposure(endpoints: Endpoint[]): void {
  const exposure = exposureAtStart(config(), endpoints.filter((ep) => ep.auth !== undefined).length);
  if (exposure?.refuse) {
    logConfigError(new ConfigError(exposure.message, { file: configPaths().main, keys: ['auth.required'] }), 'start-up');
    exitNow(1);
  }
  if (exposure) log.warning('auth-warn', exposure.message, { host: config().host });
}

/**
 * The declared statements on their databases, before anything is served (src/endpoints/startup-check.ts):
 * the single process or the primary refuses to start when a database refuses one; a cluster worker
 * only reads the row types, its primary having checked the statements.
 */
async function checkStatements(endpoints: Endpoint[] | undefined): Promise<RowColumns> {
  try {
    await prepareResources(config());
    return await checkEndpointStatements(config(), endpoints ?? loadEndpoints(config()), { plan: cluster.isPrimary });
  } catch (err) {
    if (err instanceof ConfigError) {
      logConfigError(err, 'start-up');
      exitNow(1);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  let endpoints: Endpoint[] | undefined;
  try {
    initConfig();
    // The primary checks the endpoint files too: in a cluster a bad one would otherwise only make
    // the workers fail and be restarted, again and again, instead of stopping start-up.
    if (cluster.isPrimary) endpoints = loadEndpoints(config());
  } catch (err) {
    if (err instanceof ConfigError) {
      logConfigError(err, 'start-up');
      exitNow(1);
    }
    throw err;
  }
  if (cluster.isPrimary) {
    logConfigFiles();
    checkExposure(endpoints ?? []);
  }
  const rowColumns = await checkStatements(endpoints);
  if (cluster.isPrimary && config().workers > 1) {
    shareStdout();
    await runPrimary();
    announcePid();
  } else await runGateway(rowColumns);
}

main().catch((err: unknown) => {
  log.critical('start-err', `start-up failed: ${err instanceof Error ? err.message : String(err)}`, { traceback: oneLineTraceback(err) });
  exitNow(1);
});

/**
 * One running gateway: resources, metrics and the HTTP app wired together, with start-up,
 * reload, endpoint switch and graceful shutdown. main.ts drives it from signals (or a cluster
 * primary over IPC).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { config, configPaths, loadSettings, reloadConfig, type ConfigChange, type Settings, type SettingsReader } from './config/index.js';
import { createConnector } from './db/index.js';
import { ensureSqliteSample } from './db/sample-data.js';
import { workerKind, type WorkerKind } from './db/sqlite-interrupt.js';
import { buildApp } from './app.js';
import type { Endpoint } from './endpoints/declaration.js';
import { checkEndpointStatements, type RowColumns } from './endpoints/startup-check.js';
import { loadEndpoints } from './endpoints/load.js';
import { ConfigError } from './errors.js';
import { diffEndpoints } from './endpoints/diff.js';
import { createRateLimitStore } from './limits/rate-limit-store.js';
import { cacheIdOf } from './cache/endpoint-cache.js';
import { ResponseCache } from './cache/response-cache.js';
import { addressUrl, SharedServer, type MountedApp } from './http/shared-server.js';
import type { ExpressLane } from './http/express-lane.js';
import { getLogger, isLevelEnabled, setLogLevel } from './log/index.js';
import { bindCacheMetrics, bindResourceMetrics, connectorHooks, initCacheChildren, initChildren, recordConfigReload, recordQuery, requestObserver } from './metrics/bind.js';
import { createMetrics, type Metrics } from './metrics/catalogue.js';
import { metricsPlugin } from './metrics/plugin.js';
import { startProcessMetrics } from './metrics/process.js';
import { ResourceManager } from './resources/resource-manager.js';
import { startTracing, TRACE_FLUSH_SECONDS } from './tracing/tracer.js';

const log = getLogger('gateway.ts');

export interface GatewayOptions {
  /**
   * The live settings this gateway reads at each use; the process config (which reload() re-reads)
   * by default. Gateways with their own readers run side by side in one process.
   */
  settings?: SettingsReader;
  /** Replaces the local registry's text on /metrics (cluster workers serve the aggregate). */
  metricsText?: () => Promise<string>;
  /** Called once per finished request (cluster workers count towards recycling). */
  onRequestDone?: () => void;
  /** Row columns read from the database at start-up, for endpoints without `columns` (src/endpoints/startup-check.ts). */
  rowColumns?: RowColumns;
  /** Count rate limits through the cluster primary (a cluster worker), unless rate_limit_redis names a Redis. */
  clusterRateLimits?: boolean;
}

export interface Gateway {
  /** The app serving now; switchEndpoints() replaces it. */
  readonly app: FastifyInstance;
  metrics: Metrics;
  resources: ResourceManager;
  /** Opens pools and listens on HOST:PORT; resolves to the bound address. */
  listen(): Promise<string>;
  /** Re-reads the config files; on a bad file keeps the running config. Resolves to whether it applied; never rejects. */
  reload(): Promise<boolean>;
  /**
   * Re-reads the config and the endpoint files and serves them from a new app on the same server,
   * resources and metrics; the old app finishes its requests. A refused set leaves everything as
   * it was. Resolves to whether it switched; never rejects.
   */
  switchEndpoints(): Promise<boolean>;
  /** Stops accepting, lets in-flight requests finish up to shutdown_timeout, then closes everything. */
  shutdown(): Promise<void>;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function describeChanges(changes: ConfigChange[]): string {
  return changes.map((c) => (c.summary !== undefined ? `${c.key}: ${c.summary}` : `${c.key}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`)).join('; ');
}

const REFUSED = {
  'start-up': 'config refused',
  reload: 'config reload refused, running config unchanged',
  switch: 'endpoint switch refused, the running config and endpoints keep serving',
} as const;

/** Logs a rejected config file the same way at start-up, on reload and on an endpoint switch. */
export function logConfigError(err: ConfigError, when: keyof typeof REFUSED): void {
  log.error('config-err', `${REFUSED[when]}: ${err.message}`, {
    file: err.file,
    keys: err.keys.join(',') || undefined,
  });
}

/** The sample database is created on first start; any other missing SQLite file is a mistake named now. */
function openableSqlite(rid: string, target: Settings['secure'][string]): void {
  if (target.db_path === ':memory:' || existsSync(target.db_path)) return;
  if (target.db_sample) {
    ensureSqliteSample(target.db_path);
    return;
  }
  throw new ConfigError(
    `secure.${rid}.db_path: SQLite database file ${target.db_path} does not exist (only a resource with db_sample: true is created, holding the sample table)`,
    { keys: [`secure.${rid}.db_path`] },
  );
}

const warnedProcesses = new Set<string>();

/** What the resource's SQLite connections run in: a resource that asks for threads and cannot have them stops start-up. */
function sqliteWorkersOf(rid: string, target: Settings['secure'][string]): void {
  let workers: WorkerKind;
  try {
    workers = workerKind(target.sqlite_workers);
  } catch (err) {
    throw new ConfigError(`secure.${rid}.sqlite_workers: ${(err as Error).message}`, { keys: [`secure.${rid}.sqlite_workers`] });
  }
  if (workers.kind === 'processes' && target.sqlite_workers === 'auto' && !warnedProcesses.has(rid)) {
    warnedProcesses.add(rid); // prepareResources runs before and again inside createGateway
    log.warning('sqlite-workers', `${rid}: SQLite connections run in worker processes (slower, heavier): ${workers.why}`, { resource: rid });
  }
}

/** Before anything connects: the SQLite sample database on first start, what SQLite connections run in, ODBC support. */
export async function prepareResources(cfg: Settings): Promise<void> {
  for (const rid of cfg.resource_ids) {
    const target = cfg.secure[rid];
    if (target.db_type === 'sqlite') {
      openableSqlite(rid, target);
      sqliteWorkersOf(rid, target);
    }
    // The odbc package is optional: without it an ODBC resource could never serve, so say so now.
    if (target.db_type === 'odbc') await (await import('./db/odbc.js')).requireOdbc();
  }
}

export async function createGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const settings = opts.settings ?? config;
  const cfg = settings();
  setLogLevel(cfg.log_level);
  await prepareResources(cfg);

  const metrics = createMetrics();
  const resources = new ResourceManager({ connectorFor: (rid) => createConnector(rid, settings().secure[rid], connectorHooks(metrics, rid)), settings });
  const unbind = bindResourceMetrics(metrics, resources, [...cfg.resource_ids]);
  // One per process, shared by every app an endpoint switch builds: counts survive a switch.
  const rateLimits = createRateLimitStore(settings, { redis: true, cluster: opts.clusterRateLimits });
  // Also one per process: entries survive an endpoint switch (those of a changed endpoint are never read again).
  const responseCache = new ResponseCache(settings, { redis: true });
  const unbindCache = bindCacheMetrics(metrics, responseCache);
  // Also one per process; undefined (and the OpenTelemetry SDK never loaded) unless otel_traces is on.
  const tracer = await startTracing(settings, packageVersion());
  let shuttingDown = false;
  const server = new SharedServer(cfg);
  /** Apps not closed yet: the active one and any still draining after a switch. */
  const open = new Set<MountedApp>();

  /** Row types of the endpoints served, read from their databases (start-up, then each switch). */
  let rowColumns = opts.rowColumns;

  /** Builds an app over the shared server serving `endpoints`, with metric children for its routes. */
  const mountApp = async () => {
    let express: ExpressLane | undefined;
    const mounted = await server.mount(async (serverFactory) => {
      const routeUrls: string[] = [];
      const app = await buildApp({
        settings,
        acquirer: resources,
        readiness: () => resources.readiness(),
        observer: requestObserver(metrics, () => settings().client_metrics, opts.onRequestDone),
        onQuery: (ev) => recordQuery(metrics, ev),
        metricsPlugin: async (instance) => {
          await instance.register(metricsPlugin, { metrics, getText: opts.metricsText, settings });
        },
        isShuttingDown: () => shuttingDown,
        docs: settings().docs_enabled,
        version: packageVersion(),
        routeUrls,
        serverFactory,
        rowColumns,
        rateLimits,
        responseCache,
        tracer,
        onExpressLane: (lane) => (express = lane),
      });
      await app.ready();
      initChildren(metrics, [...new Set(routeUrls)], [...settings().resource_ids], settings().client_metrics);
      initCacheChildren(metrics, [...responseCache.endpoints]);
      return app;
    });
    mounted.express = express;
    return mounted;
  };

  let served: Endpoint[] = loadEndpoints(cfg);
  const first = await mountApp();
  server.activate(first);
  open.add(first);
  const stopProcessMetrics = startProcessMetrics(metrics, settings);

  /** Writes the reload record under whichever of the old and new log levels lets it through. */
  const reportReload = (changes: ConfigChange[]) => {
    const report = () =>
      log.info('config-reload', changes.length > 0 ? `config reloaded: ${changes.length} key(s) changed` : 'config reloaded: no changes', {
        changes: changes.length > 0 ? describeChanges(changes) : undefined,
      });
    // So a change of log_level is itself on record in both directions.
    const visibleBefore = isLevelEnabled('info');
    if (visibleBefore) report();
    setLogLevel(settings().log_level);
    if (!visibleBefore) report();
  };

  /** cache_clear_on_reload: a reload empties the response cache, and says so. */
  const clearCacheOnReload = async () => {
    if (!settings().cache_clear_on_reload) return;
    await responseCache.clear();
    log.info('cache-clear', 'config reloaded: response cache emptied (cache_clear_on_reload)');
  };

  /** Lets a replaced app finish its requests (at most shutdown_timeout), then closes it. */
  const retire = async (old: MountedApp) => {
    const drained = await old.drained(settings().shutdown_timeout * 1000);
    if (!drained) {
      log.warning('endpoints-switch', 'previous endpoints still had requests after shutdown_timeout; their app is closed, the requests go on', {
        in_flight: old.requestsInFlight,
      });
    }
    try {
      await old.close();
      log.info('endpoints-switch', 'previous endpoints drained and closed');
    } catch (err) {
      log.error('endpoints-switch', `closing the previous endpoints' app failed: ${(err as Error).message}`);
    } finally {
      open.delete(old);
    }
  };

  const switchOnce = async (): Promise<boolean> => {
    if (shuttingDown) return false;
    let next: Endpoint[] = [];
    let fresh: MountedApp;
    const columnsBefore = rowColumns;
    try {
      // The new set's statements first, on their databases as at start-up: one a database refuses
      // refuses the switch before anything is applied. Their row types go to the new app.
      const candidate = opts.settings ? settings() : loadSettings(configPaths());
      rowColumns = await checkEndpointStatements(candidate, loadEndpoints(candidate), { plan: true });
      if (opts.settings) next = loadEndpoints(settings());
      else {
        // As a reload reads the config, and refused whole (nothing applied) when the endpoint files fail.
        const changes = await reloadConfig((after) => {
          next = loadEndpoints(after);
        });
        reportReload(changes);
        await clearCacheOnReload();
      }
      fresh = await mountApp();
    } catch (err) {
      rowColumns = columnsBefore;
      recordConfigReload(metrics, false);
      if (err instanceof ConfigError) logConfigError(err, 'switch');
      else log.error('config-err', `endpoint switch failed, the running endpoints keep serving: ${(err as Error).message}`);
      return false;
    }
    recordConfigReload(metrics, true);
    if (shuttingDown) {
      await fresh.close().catch(() => undefined);
      return false;
    }
    const old = server.activate(fresh);
    open.add(fresh);
    const { added, removed, changed } = diffEndpoints(served, next);
    served = next;
    log.info('endpoints-switch', `serving ${next.length} declared endpoint(s): ${added.length} added, ${removed.length} removed, ${changed.length} changed`, {
      endpoints: next.length,
      added: added.join(', ') || undefined,
      removed: removed.join(', ') || undefined,
      changed: changed.join(', ') || undefined,
    });
    if (old) void retire(old);
    // Entries of endpoints removed or changed are never read again: their memory goes now.
    responseCache.retain(new Set(next.filter((ep) => ep.cache !== undefined).map(cacheIdOf)));
    return true;
  };
  /** Switches run one after another. */
  let switching: Promise<boolean> = Promise.resolve(true);

  let shutdownPromise: Promise<void> | undefined;
  return {
    get app() {
      return server.current.app;
    },
    metrics,
    resources,
    async listen() {
      resources.start();
      await Promise.all([resources.warm(), responseCache.ready()]);
      const { host, port } = settings();
      const bound = await server.listen(host, port);
      const address = addressUrl(bound);
      log.info('listening', `WatchTower listening on ${address}`, { host, port: bound.port, resources: settings().resource_ids.join(',') });
      return address;
    },
    async reload() {
      try {
        const changes = await reloadConfig();
        recordConfigReload(metrics, true);
        reportReload(changes);
        await clearCacheOnReload();
        return true;
      } catch (err) {
        recordConfigReload(metrics, false);
        if (err instanceof ConfigError) logConfigError(err, 'reload');
        else log.error('config-err', `config reload failed: ${(err as Error).message}`);
        return false;
      }
    },
    switchEndpoints() {
      switching = switching.then(switchOnce, switchOnce);
      return switching;
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        shuttingDown = true;
        const timeout = settings().shutdown_timeout;
        log.info('shutdown', 'shutting down: no new requests, waiting for in-flight ones', { shutdown_timeout: timeout });
        // The apps (the active one, and any still draining after a switch), then the server they share.
        const closed = Promise.all([...[...open].map((m) => m.close()), server.close()]);
        let timer: NodeJS.Timeout | undefined;
        const inTime = await Promise.race([
          closed.then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), timeout * 1000);
          }),
        ]);
        clearTimeout(timer);
        if (!inTime) log.warning('shutdown-timeout', 'in-flight requests still running after shutdown_timeout; answering 503 to waiters');
        await resources.shutdown(inTime ? 1 : 5);
        if (!inTime) {
          server.server.closeAllConnections();
          await closed;
        }
        stopProcessMetrics();
        unbind();
        await rateLimits.close();
        unbindCache();
        responseCache.close();
        // The spans of the last requests: sent within a bound, so an absent collector cannot hold up the exit.
        await tracer?.shutdown(Math.min(TRACE_FLUSH_SECONDS, settings().shutdown_timeout) * 1000);
        log.info('shutdown-done', 'shutdown complete');
      })();
      return shutdownPromise;
    },
  };
}

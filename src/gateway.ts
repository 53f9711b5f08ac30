/**
 * One running gateway: resources, metrics and the HTTP app wired together, with start-up,
 * reload and graceful shutdown. main.ts drives it from signals (or a cluster primary over IPC).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { config, reloadConfig, type ConfigChange, type SettingsReader } from './config/index.js';
import { createConnector } from './db/index.js';
import { requireOdbc } from './db/odbc.js';
import { ensureSqliteSample } from './db/sample-data.js';
import { buildApp } from './app.js';
import { ConfigError } from './errors.js';
import { getLogger, isLevelEnabled, setLogLevel } from './log/index.js';
import { bindResourceMetrics, initChildren, recordConfigReload, recordQuery, recordRequest } from './metrics/bind.js';
import { createMetrics, type Metrics } from './metrics/catalogue.js';
import { metricsPlugin } from './metrics/plugin.js';
import { startProcessMetrics } from './metrics/process.js';
import { ResourceManager } from './resources/resource-manager.js';

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
}

export interface Gateway {
  app: FastifyInstance;
  metrics: Metrics;
  resources: ResourceManager;
  /** Opens pools and listens on HOST:PORT; resolves to the bound address. */
  listen(): Promise<string>;
  /** Re-reads the config files; on a bad file keeps the running config. Resolves to whether it applied; never rejects. */
  reload(): Promise<boolean>;
  /** Stops accepting, lets in-flight requests finish up to shutdown_timeout, then closes everything. */
  shutdown(): Promise<void>;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function describeChanges(changes: ConfigChange[]): string {
  return changes.map((c) => `${c.key}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join('; ');
}

/** Logs a rejected config file the same way at start-up and on reload. */
export function logConfigError(err: ConfigError, when: 'start-up' | 'reload'): void {
  log.error('config-err', `${when === 'reload' ? 'config reload refused, running config unchanged' : 'config refused'}: ${err.message}`, {
    file: err.file,
    keys: err.keys.join(',') || undefined,
  });
}

export async function createGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const settings = opts.settings ?? config;
  const cfg = settings();
  setLogLevel(cfg.log_level);
  for (const rid of cfg.resource_ids) {
    const target = cfg.secure[rid];
    if (target.db_type === 'sqlite') ensureSqliteSample(target.db_path);
    // The odbc package is optional: without it an ODBC resource could never serve, so say so now.
    if (target.db_type === 'odbc') await requireOdbc();
  }

  const metrics = createMetrics();
  const resources = new ResourceManager({ connectorFor: (rid) => createConnector(rid, settings().secure[rid]), settings });
  const unbind = bindResourceMetrics(metrics, resources, [...cfg.resource_ids]);
  let shuttingDown = false;
  const routeUrls: string[] = [];

  const app = await buildApp({
    settings,
    acquirer: resources,
    readiness: () => resources.readiness(),
    observer: {
      requestDone(endpoint, statusCode, seconds) {
        recordRequest(metrics, endpoint, statusCode, seconds);
        opts.onRequestDone?.();
      },
    },
    onQuery: (ev) => recordQuery(metrics, ev),
    metricsPlugin: async (instance) => {
      await instance.register(metricsPlugin, { metrics, getText: opts.metricsText, settings });
    },
    isShuttingDown: () => shuttingDown,
    docs: cfg.docs_enabled,
    version: packageVersion(),
    routeUrls,
  });
  await app.ready();
  initChildren(metrics, [...new Set(routeUrls)], [...cfg.resource_ids]);
  const stopProcessMetrics = startProcessMetrics(metrics, settings);

  let shutdownPromise: Promise<void> | undefined;
  return {
    app,
    metrics,
    resources,
    async listen() {
      resources.start();
      await resources.warm();
      const { host, port } = settings();
      const address = await app.listen({ host, port });
      log.info('listening', `WatchTower listening on ${address}`, {
        host,
        port: app.server.address() && typeof app.server.address() === 'object' ? (app.server.address() as { port: number }).port : port,
        resources: settings().resource_ids.join(','),
      });
      return address;
    },
    async reload() {
      try {
        const changes = await reloadConfig();
        recordConfigReload(metrics, true);
        const report = () =>
          log.info('config-reload', changes.length > 0 ? `config reloaded: ${changes.length} key(s) changed` : 'config reloaded: no changes', {
            changes: changes.length > 0 ? describeChanges(changes) : undefined,
          });
        // Written under whichever of the old and new levels lets it through, so a change of
        // log_level is itself on record in both directions.
        const visibleBefore = isLevelEnabled('info');
        if (visibleBefore) report();
        setLogLevel(settings().log_level);
        if (!visibleBefore) report();
        return true;
      } catch (err) {
        recordConfigReload(metrics, false);
        if (err instanceof ConfigError) logConfigError(err, 'reload');
        else log.error('config-err', `config reload failed: ${(err as Error).message}`);
        return false;
      }
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        shuttingDown = true;
        const timeout = settings().shutdown_timeout;
        log.info('shutdown', 'shutting down: no new requests, waiting for in-flight ones', { shutdown_timeout: timeout });
        const closed = app.close();
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
          app.server.closeAllConnections();
          await closed;
        }
        stopProcessMetrics();
        unbind();
        log.info('shutdown-done', 'shutdown complete');
      })();
      return shutdownPromise;
    },
  };
}

/**
 * WatchTower as a plugin for an app of one's own (docs/plugin.md). It owns what the gateway process
 * owns, its resource manager and metrics, and registers the gateway's HTTP layer (./app.ts) into
 * the host app, not encapsulated: the host's own routes that declare `config: { resources: [...] }`
 * hold their connections before the handler runs and run statements through `request.db`, with the
 * limits, timeouts, records and metrics of the declared endpoints. Pools open when the app gets
 * ready and close, once, when it closes; from the start of app.close() requests are answered 503.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { gatewayHttp } from './app.js';
import { defaultConfigPaths, loadSettings, type ConfigPaths, type Settings, type SettingsReader } from './config/index.js';
import { createConnector } from './db/index.js';
import { loadEndpoints } from './endpoints/load.js';
import { checkEndpointStatements } from './endpoints/startup-check.js';
import { packageVersion, prepareResources } from './gateway.js';
import { createRateLimitStore } from './limits/rate-limit-store.js';
import { getLogger, setLogLevel } from './log/index.js';
import { bindCacheMetrics, bindResourceMetrics, connectorHooks, initCacheChildren, initChildren, recordQuery, requestObserver } from './metrics/bind.js';
import { ResponseCache } from './cache/response-cache.js';
import { createMetrics, type Metrics } from './metrics/catalogue.js';
import { metricsPlugin } from './metrics/plugin.js';
import { startProcessMetrics } from './metrics/process.js';
import { ResourceManager } from './resources/resource-manager.js';
import { startTracing, TRACE_FLUSH_SECONDS } from './tracing/tracer.js';

const log = getLogger('plugin.ts');

export interface WatchtowerOptions {
  /**
   * The configuration: a Settings object (see loadConfig), a function returning the settings in
   * force (called at each use, so swapping what it returns reloads the reloadable keys), the path
   * of the main config file, or the main and override paths. Default: the files the gateway reads
   * (env WT_CONFIG and OVERRIDE_CONFIG_PATH, else config/watchtower.yaml).
   */
  config?: Settings | SettingsReader | string | ConfigPaths;
  /** Serve the endpoints of the config's endpoint files (key `endpoints`); default true. */
  endpoints?: boolean;
  /** Serve GET /metrics; default true. */
  metrics?: boolean;
  /** Serve the OpenAPI document and Swagger UI at /docs; default the config's docs_enabled. */
  docs?: boolean;
  /** Serve GET /health/live and /health/ready; default true. */
  health?: boolean;
}

/** What the plugin owns, on `app.watchtower`. */
export interface WatchtowerHandle {
  /** The settings in force. */
  readonly settings: SettingsReader;
  /** The request slots and connection pools of the configured resources. */
  readonly resources: ResourceManager;
  /** The wt_* metrics (its `registry` is what /metrics serves). */
  readonly metrics: Metrics;
}

declare module 'fastify' {
  interface FastifyInstance {
    watchtower: WatchtowerHandle;
  }
}

/** Reads the config files as the gateway does: a bad file throws a ConfigError naming the file and keys. */
export function loadConfig(paths: string | ConfigPaths = defaultConfigPaths()): Settings {
  return loadSettings(typeof paths === 'string' ? { main: paths } : paths);
}

function settingsReader(config: WatchtowerOptions['config']): SettingsReader {
  if (typeof config === 'function') return config;
  const settings = config === undefined || typeof config === 'string' || !('resource_ids' in config) ? loadConfig(config) : config;
  return () => settings;
}

async function watchtowerPlugin(app: FastifyInstance, opts: WatchtowerOptions): Promise<void> {
  const settings = settingsReader(opts.config);
  const cfg = settings();
  setLogLevel(cfg.log_level);
  await prepareResources(cfg);
  // As the gateway's start-up: a declared statement its database refuses fails the registration
  // (ConfigError), and endpoints without `columns` get the row types the database gives.
  const rowColumns = opts.endpoints === false ? undefined : await checkEndpointStatements(cfg, loadEndpoints(cfg), { plan: true });

  const metrics = createMetrics();
  const resources = new ResourceManager({ connectorFor: (rid) => createConnector(rid, settings().secure[rid], connectorHooks(metrics, rid)), settings });
  const unbind = bindResourceMetrics(metrics, resources, [...cfg.resource_ids]);
  const rateLimits = createRateLimitStore(settings, { redis: true });
  const responseCache = new ResponseCache(settings, { redis: true });
  const unbindCache = bindCacheMetrics(metrics, responseCache);
  // Undefined (and the OpenTelemetry SDK never loaded) unless otel_traces is on.
  const tracer = await startTracing(settings, packageVersion());
  const routeUrls: string[] = [];
  let closing = false;
  let stopProcessMetrics: (() => void) | undefined;
  let overdue: NodeJS.Timeout | undefined;

  app.decorate('watchtower', { settings, resources, metrics } satisfies WatchtowerHandle);
  await app.register(gatewayHttp, {
    settings,
    acquirer: resources,
    readiness: () => resources.readiness(),
    observer: requestObserver(metrics, () => settings().client_metrics),
    onQuery: (ev) => recordQuery(metrics, ev),
    metricsPlugin: async (instance) => {
      if (opts.metrics !== false) await instance.register(metricsPlugin, { metrics, settings });
    },
    isShuttingDown: () => closing,
    docs: opts.docs ?? cfg.docs_enabled,
    version: packageVersion(),
    routeUrls,
    rowColumns,
    health: opts.health,
    endpoints: opts.endpoints,
    rateLimits,
    responseCache,
    tracer,
  });

  // Every route is known by now (the host's too), so their metric series start at zero.
  app.addHook('onReady', async () => {
    resources.start();
    await Promise.all([resources.warm(), responseCache.ready()]);
    initChildren(metrics, [...new Set(routeUrls)], [...settings().resource_ids], settings().client_metrics);
    initCacheChildren(metrics, [...responseCache.endpoints]);
    stopProcessMetrics = startProcessMetrics(metrics, settings);
  });

  // The start of app.close(): new requests are answered 503 while those in flight finish, for at
  // most shutdown_timeout; then waiters get 503 and the connections still open are closed.
  app.addHook('preClose', (done) => {
    closing = true;
    const timeout = settings().shutdown_timeout;
    log.info('shutdown', 'shutting down: no new requests, waiting for in-flight ones', { shutdown_timeout: timeout });
    overdue = setTimeout(() => {
      log.warning('shutdown-timeout', 'in-flight requests still running after shutdown_timeout; answering 503 to waiters');
      void resources.shutdown(5);
      app.server.closeAllConnections();
    }, timeout * 1000);
    overdue.unref();
    done();
  });

  // Runs once the server has closed, so no request holds anything unless shutdown_timeout passed.
  app.addHook('onClose', async () => {
    clearTimeout(overdue);
    stopProcessMetrics?.();
    // Idempotent: after the overdue path above this waits for the same shutdown.
    await resources.shutdown(1);
    unbind();
    await rateLimits.close();
    unbindCache();
    responseCache.close();
    await tracer?.shutdown(Math.min(TRACE_FLUSH_SECONDS, settings().shutdown_timeout) * 1000);
    log.info('shutdown-done', 'shutdown complete');
  });
}

/** The plugin: `await app.register(watchtower, options)` before adding routes that declare resources. */
export const watchtower = fp(watchtowerPlugin, { fastify: '5.x', name: 'watchtower' });

// The gateway (dist/) wired as src/gateway.ts wires it (resource manager, metrics, logs, optionally
// the response cache, the app of src/app.ts with the endpoint files of its config), for benchmark
// servers that add hand-written routes to the same app. createGateway() cannot be used for that: its
// app is ready, and closed to new routes, before a caller gets it.
import { buildApp } from '../../dist/app.js';
import { ResponseCache } from '../../dist/cache/response-cache.js';
import { config, initConfig } from '../../dist/config/index.js';
import { createConnector } from '../../dist/db/index.js';
import { ensureSqliteSample } from '../../dist/db/sample-data.js';
import { flushLogs, setLogLevel } from '../../dist/log/index.js';
import { bindCacheMetrics, bindResourceMetrics, initCacheChildren, initChildren, recordQuery, recordRequest } from '../../dist/metrics/bind.js';
import { createMetrics } from '../../dist/metrics/catalogue.js';
import { metricsPlugin } from '../../dist/metrics/plugin.js';
import { startProcessMetrics } from '../../dist/metrics/process.js';
import { ResourceManager } from '../../dist/resources/resource-manager.js';
import { SharedServer } from '../../dist/http/shared-server.js';

/**
 * Reads the config (env WT_CONFIG; one resource), builds the app, lets `addRoutes` add its routes,
 * then opens the pools and listens on HOST/PORT; SIGTERM and SIGINT close everything and exit.
 * @param {{ cache?: boolean, addRoutes: (app: import('fastify').FastifyInstance, ctx: { rid: string, target: Record<string, unknown>, metrics: unknown }) => void }} opts
 */
export async function serveWiredGateway(opts) {
  const settings = initConfig();
  setLogLevel(settings.log_level);
  const rid = settings.resource_ids[0];
  const target = settings.secure[rid];
  if (target.db_type === 'sqlite') ensureSqliteSample(target.db_path);

  const metrics = createMetrics();
  const resources = new ResourceManager({ connectorFor: (id) => createConnector(id, config().secure[id]) });
  bindResourceMetrics(metrics, resources, [...settings.resource_ids]);
  const responseCache = opts.cache ? new ResponseCache(config) : undefined;
  if (responseCache) bindCacheMetrics(metrics, responseCache);
  const routeUrls = [];
  // Served as src/gateway.ts serves: the app over the shared server, which asks the app's express lane first.
  const server = new SharedServer(settings);
  let express;
  const mounted = await server.mount(async (serverFactory) => {
    const app = await buildApp({
      acquirer: resources,
      readiness: () => resources.readiness(),
      observer: { requestDone: (endpoint, statusCode, seconds) => recordRequest(metrics, endpoint, statusCode, seconds) },
      onQuery: (ev) => recordQuery(metrics, ev),
      metricsPlugin: async (instance) => instance.register(metricsPlugin, { metrics }),
      isShuttingDown: () => false,
      docs: false,
      version: 'bench',
      routeUrls,
      responseCache,
      serverFactory,
      onExpressLane: (lane) => (express = lane),
    });
    opts.addRoutes(app, { rid, target, metrics });
    await app.ready();
    return app;
  });
  mounted.express = express;
  server.activate(mounted);
  initChildren(metrics, [...new Set(routeUrls)], [...settings.resource_ids]);
  if (responseCache) initCacheChildren(metrics, [...responseCache.endpoints]);
  const stopProcessMetrics = startProcessMetrics(metrics);
  resources.start();
  await resources.warm();
  await server.listen(settings.host, settings.port);

  const shutdown = async () => {
    await mounted.close();
    await server.close();
    await resources.shutdown(1);
    responseCache?.close();
    stopProcessMetrics();
    flushLogs();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

// The gateway (dist/) wired as src/gateway.ts wires it (resource manager, metrics, logs, response
// cache, the app of src/app.ts with the endpoint files of its config), plus one hand-written route
// on the same app answering fixed bytes without a database: the cached endpoint's own answer, read
// from a file once the bench has fetched it. A cache hit and this route go through the same
// request hooks, records and metrics, so the difference between them is the cache's own cost.
//
// env WT_CONFIG: the config (one resource, `endpoints` naming the bench's endpoint file);
// BENCH_CACHE_BODY: the file the route answers (read at its first request); HOST, PORT.
//
//   GET /bare/rows   the bytes of BENCH_CACHE_BODY as application/json
import { readFileSync } from 'node:fs';
import { buildApp } from '../dist/app.js';
import { ResponseCache } from '../dist/cache/response-cache.js';
import { config, initConfig } from '../dist/config/index.js';
import { createConnector } from '../dist/db/index.js';
import { ensureSqliteSample } from '../dist/db/sample-data.js';
import { flushLogs, setLogLevel } from '../dist/log/index.js';
import { bindCacheMetrics, bindResourceMetrics, initCacheChildren, initChildren, recordQuery, recordRequest } from '../dist/metrics/bind.js';
import { createMetrics } from '../dist/metrics/catalogue.js';
import { metricsPlugin } from '../dist/metrics/plugin.js';
import { startProcessMetrics } from '../dist/metrics/process.js';
import { ResourceManager } from '../dist/resources/resource-manager.js';

const settings = initConfig();
setLogLevel(settings.log_level);
const rid = settings.resource_ids[0];
const target = settings.secure[rid];
if (target.db_type === 'sqlite') ensureSqliteSample(target.db_path);

const metrics = createMetrics();
const resources = new ResourceManager({ connectorFor: (id) => createConnector(id, config().secure[id]) });
bindResourceMetrics(metrics, resources, [...settings.resource_ids]);
const responseCache = new ResponseCache(config);
bindCacheMetrics(metrics, responseCache);
const routeUrls = [];
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
});

let body;
app.get('/bare/rows', (_req, reply) => {
  body ??= readFileSync(process.env.BENCH_CACHE_BODY ?? '');
  reply.type('application/json; charset=utf-8').send(body);
});

await app.ready();
initChildren(metrics, [...new Set(routeUrls)], [...settings.resource_ids]);
initCacheChildren(metrics, [...responseCache.endpoints]);
const stopProcessMetrics = startProcessMetrics(metrics);
resources.start();
await resources.warm();
await app.listen({ host: settings.host, port: settings.port });

const shutdown = async () => {
  await app.close();
  await resources.shutdown(1);
  responseCache.close();
  stopProcessMetrics();
  flushLogs();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

/**
 * The gateway's HTTP layer as one Fastify plugin (gatewayHttp), and buildApp: a Fastify instance
 * with the constructor options no plugin can set (./http/fastify-options.ts) and that plugin
 * registered, plus the sample's code routes. The plugin is not encapsulated: its hooks, error
 * replies, input rules and `request.db` reach every route of the app, also routes added after it
 * (the embeddable plugin of ./plugin.ts registers the same one). What it serves from (resources,
 * metrics) is handed in, so tests can build apps side by side.
 */
import { config, type SettingsReader } from './config/index.js';
import Fastify, { type FastifyInstance, type FastifyServerFactory } from 'fastify';
import fp from 'fastify-plugin';
import { registerAuth } from './auth/hook.js';
import { registerAcquire, type ResourceAcquirer } from './http/acquire.js';
import { registerClientErrors } from './http/client-errors.js';
import { registerErrorReplies } from './http/error-reply.js';
import { fastifyOptions } from './http/fastify-options.js';
import { isQuiet, registerLifecycle, type RequestObserver } from './http/lifecycle.js';
import { registerRequestDb } from './http/request-db.js';
import { registerBodyParsers, registerStrictQueryIntegers } from './http/strict-input.js';
import { registerSwagger } from './http/swagger.js';
import { registerValidation } from './http/validation.js';
import { registerNetworkRules } from './limits/network-rules.js';
import { createRateLimitStore, type RateLimitStore } from './limits/rate-limit-store.js';
import { registerRateLimits } from './limits/rate-limits.js';
import type { QueryDeps, QueryListener } from './query/query.js';
import { healthRoutes, type Readiness } from './routes/health.js';
import { trafficCompareRoute } from './routes/traffic-compare.js';
import { endpointRoutes } from './endpoints/routes.js';
import type { RowColumns } from './endpoints/startup-check.js';
import { ResponseCache } from './cache/response-cache.js';
import { ParamsMemo } from './cache/params-memo.js';
import { expressLane, type ExpressLane } from './http/express-lane.js';
import type { RequestTracer } from './tracing/tracer.js';

export interface AppParts {
  /** The live settings every hook and route reads at each use; the process config by default. */
  settings?: SettingsReader;
  acquirer: ResourceAcquirer;
  readiness: () => Readiness;
  observer: RequestObserver;
  onQuery: QueryListener;
  /** Registers GET /metrics. */
  metricsPlugin: (app: FastifyInstance) => Promise<void> | void;
  isShuttingDown: () => boolean;
  docs: boolean;
  version: string;
  /** Filled with the URL template of every route counted in the request metrics, for metric children. */
  routeUrls?: string[];
  /**
   * Serve on a server the caller owns (src/http/shared-server.ts), which then applies the server
   * timeouts itself; the app never listens or closes it.
   */
  serverFactory?: FastifyServerFactory;
  /** Row columns read from the database, for declared endpoints without `columns`. */
  rowColumns?: RowColumns;
  /**
   * Where rate-limit counters live; one per process, kept across endpoint switches and closed by its
   * owner. Default: this app's own memory.
   */
  rateLimits?: RateLimitStore;
  /**
   * The response cache of declared endpoints with `cache`; one per process, kept across endpoint
   * switches and closed by its owner. Default: this app's own memory, closed with the app.
   */
  responseCache?: ResponseCache;
  /** Traces the requests (`otel_traces`); one per process, kept across endpoint switches and shut down by its owner. */
  tracer?: RequestTracer;
  /**
   * Given the app's express lane (src/http/express-lane.ts), for a server the caller owns to ask
   * before the app; not called when no request could take it (traces on, or the cache in Redis).
   */
  onExpressLane?: (lane: ExpressLane) => void;
}

/** What the HTTP layer serves besides what every app gets (the request hooks, error replies, input rules). */
export interface GatewayHttpOptions extends AppParts {
  /** GET /health/live and /health/ready; default true. */
  health?: boolean;
  /** The endpoints of the config's endpoint files; default true. */
  endpoints?: boolean;
  /** Code routes, registered before the declared endpoints (so one of those that takes their method and path is named as such). */
  routes?: (app: FastifyInstance, deps: QueryDeps) => void;
}

/**
 * The gateway's HTTP layer. Not encapsulated (fastify-plugin), so it applies to the app it is
 * registered in; routes added after it get the acquire hooks of their `config.resources`.
 */
export const gatewayHttp = fp(
  async (app: FastifyInstance, parts: GatewayHttpOptions) => {
    const settings = parts.settings ?? config;
    app.addHook('onRoute', (route) => {
      if (!isQuiet(route.url) && route.method !== 'HEAD') parts.routeUrls?.push(route.url);
    });
    registerValidation(app);
    registerLifecycle(app, parts.observer, parts.isShuttingDown, settings, parts.tracer);
    registerNetworkRules(app, settings);
    // Authentication and authorization: an app-level onRequest hook, so after the lifecycle's and before any route's own.
    registerAuth(app, settings);
    registerClientErrors(app, settings);
    registerErrorReplies(app, settings);
    registerRateLimits(app, settings, parts.rateLimits ?? createRateLimitStore(settings));
    registerAcquire(app, parts.acquirer, settings);
    registerStrictQueryIntegers(app);
    registerBodyParsers(app);
    const queryDeps = { onQuery: parts.onQuery, settings };
    registerRequestDb(app, queryDeps);
    if (parts.docs) await registerSwagger(app, parts.version, (rid) => parts.acquirer.has(rid), settings);
    await parts.metricsPlugin(app);
    if (parts.health !== false) healthRoutes(app, { readiness: parts.readiness, shuttingDown: parts.isShuttingDown });
    parts.routes?.(app, queryDeps);
    if (parts.endpoints !== false) {
      let cache = parts.responseCache;
      if (cache === undefined) {
        const own = (cache = new ResponseCache(settings));
        app.addHook('onClose', async () => own.close());
      }
      const memo = new ParamsMemo();
      endpointRoutes(app, queryDeps, parts.rowColumns, cache, memo);
      if (parts.onExpressLane !== undefined && parts.tracer === undefined && !cache.shared) {
        parts.onExpressLane(expressLane({ settings, memo, acquirer: parts.acquirer, observer: parts.observer, isShuttingDown: parts.isShuttingDown }));
      }
    }
  },
  { fastify: '5.x', name: 'watchtower-http' },
);

/** The sample's routes written in code. */
function sampleRoutes(app: FastifyInstance): void {
  trafficCompareRoute(app);
}

export async function buildApp(parts: AppParts): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    ...fastifyOptions(parts.settings ?? config),
    ...(parts.serverFactory ? { serverFactory: parts.serverFactory } : {}),
  });
  await app.register(gatewayHttp, { ...parts, routes: sampleRoutes });
  return app;
}

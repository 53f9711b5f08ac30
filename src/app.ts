/**
 * buildApp: the Fastify instance with its plugins and routes, nothing else. What it serves from
 * (resources, metrics) is handed in, so tests can build apps side by side.
 */
import { config, type SettingsReader } from './config/index.js';
import Fastify, { type FastifyInstance, type FastifyServerFactory } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { registerAcquire, type ResourceAcquirer } from './http/acquire.js';
import { earlyErrorHandlers, registerClientErrors } from './http/client-errors.js';
import { registerErrorReplies } from './http/error-reply.js';
import { isQuiet, registerLifecycle, type RequestObserver } from './http/lifecycle.js';
import { addMaxDecimalKeyword, registerBodyParsers, registerStrictQueryIntegers } from './http/strict-input.js';
import { registerSwagger } from './http/swagger.js';
import { fastifyTimeouts, nodeServerTimeouts } from './http/server-timeouts.js';
import type { QueryListener } from './query/query.js';
import { healthRoutes, type Readiness } from './routes/health.js';
import { trafficRoutes } from './routes/traffic.js';
import { dataframeRoutes } from './routes/dataframe.js';
import { endpointRoutes } from './endpoints/routes.js';
import type { RowColumns } from './endpoints/startup-check.js';

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
}

/** "querystring/limit must be <= 10000"; names the extra property where ajv knows it. */
function formatValidation(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const text = errors
    .map((e) => {
      const extra = (e.params as { additionalProperty?: string }).additionalProperty;
      return `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}${extra ? `: ${extra}` : ''}`;
    })
    .join('; ');
  return new Error(text);
}

export async function buildApp(parts: AppParts): Promise<FastifyInstance> {
  const settings = parts.settings ?? config;
  const app = Fastify({
    logger: false,
    // Answered by our own onRequest check, so the 503 body has the usual shape.
    return503OnClosing: false,
    // Never coerce (see http/strict-input.ts). Union types (`['integer', 'string']` counters) are
    // meant; without allowUnionTypes ajv warns on stderr at start-up.
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true },
      onCreate: (ajv) => addMaxDecimalKeyword(ajv),
    },
    schemaErrorFormatter: formatValidation,
    bodyLimit: 5 * 1024 * 1024,
    // Answers given before the app's hooks run get the usual headers and body (src/http/client-errors.ts).
    ...earlyErrorHandlers(settings),
    // Node would answer a Host-less HTTP/1.1 request with a bare 400; registerClientErrors does instead.
    http: { requireHostHeader: false, ...nodeServerTimeouts(settings()) },
    ...fastifyTimeouts(settings()),
    ...(parts.serverFactory ? { serverFactory: parts.serverFactory } : {}),
  });
  app.addHook('onRoute', (route) => {
    if (!isQuiet(route.url) && route.method !== 'HEAD') parts.routeUrls?.push(route.url);
  });
  registerLifecycle(app, parts.observer, parts.isShuttingDown, settings);
  registerClientErrors(app, settings);
  registerErrorReplies(app, settings);
  registerAcquire(app, parts.acquirer, settings);
  registerStrictQueryIntegers(app);
  registerBodyParsers(app);
  if (parts.docs) await registerSwagger(app, parts.version, (rid) => parts.acquirer.has(rid));
  await parts.metricsPlugin(app);
  healthRoutes(app, { readiness: parts.readiness, shuttingDown: parts.isShuttingDown });
  const queryDeps = { onQuery: parts.onQuery, settings };
  trafficRoutes(app, queryDeps);
  dataframeRoutes(app, queryDeps);
  endpointRoutes(app, queryDeps, parts.rowColumns);
  return app;
}

/**
 * buildApp: the Fastify instance with its plugins and routes, nothing else. What it serves from
 * (resources, metrics) is handed in, so tests can build apps side by side.
 */
import { config } from './config/index.js';
import Fastify, { type FastifyInstance } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { registerAcquire, type ResourceAcquirer } from './http/acquire.js';
import { clientErrorHandler, frameworkErrors, registerClientErrors } from './http/client-errors.js';
import { registerErrorReplies } from './http/error-reply.js';
import { isQuiet, registerLifecycle, type RequestObserver } from './http/lifecycle.js';
import { addMaxDecimalKeyword, registerBodyParsers, registerStrictQueryIntegers } from './http/strict-input.js';
import { registerSwagger } from './http/swagger.js';
import { fastifyTimeouts, nodeServerTimeouts } from './http/server-timeouts.js';
import type { QueryListener } from './query/query.js';
import { healthRoutes, type Readiness } from './routes/health.js';
import { trafficRoutes } from './routes/traffic.js';
import { dataframeRoutes } from './routes/dataframe.js';

export interface AppParts {
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
    clientErrorHandler,
    frameworkErrors,
    // Node would answer a Host-less HTTP/1.1 request with a bare 400; registerClientErrors does instead.
    http: { requireHostHeader: false, ...nodeServerTimeouts(config()) },
    ...fastifyTimeouts(config()),
  });
  app.addHook('onRoute', (route) => {
    if (!isQuiet(route.url) && route.method !== 'HEAD') parts.routeUrls?.push(route.url);
  });
  registerLifecycle(app, parts.observer, parts.isShuttingDown);
  registerClientErrors(app);
  registerErrorReplies(app);
  registerAcquire(app, parts.acquirer);
  registerStrictQueryIntegers(app);
  registerBodyParsers(app);
  if (parts.docs) await registerSwagger(app, parts.version, (rid) => parts.acquirer.has(rid));
  await parts.metricsPlugin(app);
  healthRoutes(app, { readiness: parts.readiness, shuttingDown: parts.isShuttingDown });
  trafficRoutes(app, { onQuery: parts.onQuery });
  dataframeRoutes(app, { onQuery: parts.onQuery });
  return app;
}

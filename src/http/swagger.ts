/**
 * OpenAPI 3 document at /docs/json and Swagger UI at /docs. What holds for every route is added
 * here rather than in each route's schema: the headers every response carries, the answers of the
 * body parser (413, 415), the cut stream; routes of resources not enabled on this server are left
 * out (they answer 404, so "Try it out" could only fail).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { SettingsReader } from '../config/index.js';
import { accessDocs, SECURITY_SCHEMES } from './openapi-access.js';
import { errorBodySchema, errorResponse } from './schemas.js';

type Json = Record<string, unknown>;

/** Header objects as OpenAPI 3.0 writes them (the route schemas' `headers` cannot say `required`). */
const EVERY_RESPONSE_HEADERS = {
  'X-Correlation-ID': {
    description: "The request's correlation id: the client's own X-Correlation-ID if it is valid, otherwise a new one (also `cid` in error bodies and in every log record)",
    required: true,
    schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
  },
  'X-Process-Time': {
    description: 'Seconds the gateway spent on the request; for a streamed response, until its first byte',
    required: true,
    schema: { type: 'string', pattern: '^[0-9]+\\.[0-9]{3}$' },
  },
  traceparent: {
    description:
      "Sent when the request carried a valid W3C `traceparent`: the caller's trace id and flags with this request's own span id (version 00). That trace id is also the correlation id when no valid X-Correlation-ID was given. With `otel_traces` on, sent to every traced request: the span id is its exported span, and a request without a `traceparent` gets the new trace it started",
    required: false,
    schema: { type: 'string', pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
  },
  'Server-Timing': {
    description:
      'Milliseconds spent waiting for request slots (`slot`) and pooled connections (`conn`) and running statements (`query`; for a streamed response, until its first row), e.g. `slot;dur=1.2, conn;dur=0.3, query;dur=4.5`. Sent by routes that use a database, unless `server_timing` is off',
    required: false,
    schema: { type: 'string' },
  },
} as const;

const RETRY_AFTER = {
  429: { description: 'Seconds to wait before retrying', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
  503: { description: 'Seconds to wait before retrying', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
} as const;

/** What any route answers once shutdown has begun (a request on a connection kept alive from before). */
const SHUTTING_DOWN = errorResponse('The server is shutting down', 'server is shutting down');

/** What any route with a request body can answer before its handler runs (Fastify's body parser). */
const BODY_ERRORS = {
  413: errorResponse('The body is larger than the server accepts', 'Request body is too large'),
  415: errorResponse('The body is not application/json', 'Unsupported Media Type: text/plain'),
} as const;

const STREAM_NOTE =
  '\n\nThe status and headers are sent before the first row. A failure after that (the query times out or fails, ' +
  'the database goes away, the client stops reading for too long) cannot change the status: the response is cut, ' +
  'the connection closing without the final chunk of the chunked encoding. A client must treat a response that did ' +
  'not end cleanly as failed, however many rows it got.';

/** A streamed data route: it holds database resources and answers text. */
function isStreamed(route: RouteOptions): boolean {
  const produces = (route.schema as { produces?: string[] } | undefined)?.produces;
  return (route.config?.resources?.length ?? 0) > 0 && produces?.includes('text/plain') === true;
}

/**
 * Every route answers 503 with the error body once shutdown has begun. A route with a 503 of its own
 * in another shape (/health/ready) may therefore send either.
 */
function addShutdownAnswer(responses: Record<string, Json>): void {
  const own = responses['503'];
  if (own === undefined) {
    responses['503'] = structuredClone(SHUTTING_DOWN);
    return;
  }
  const media = (own.content as Record<string, { schema?: Json }> | undefined)?.['application/json'];
  if (media?.schema === undefined || ((media.schema.required ?? []) as string[]).includes('cid')) return;
  media.schema = { anyOf: [media.schema, errorBodySchema] };
  own.description = `${String(own.description)}; while the server shuts down, an error body`;
}

/** Carries a route's access answers (openapi-access.ts) from `transform` to the finished operation. */
const ACCESS = 'x-wt-access';

/** Merges the access answers `transform` left on the operation; true when it asks for a credential. */
function addAccessAnswers(operation: Json, responses: Record<string, Json>): boolean {
  const access = operation[ACCESS] as { responses: Record<string, Json>; security?: Json[] } | undefined;
  if (access === undefined) return false;
  delete operation[ACCESS];
  // A route's own 401/403 (/metrics: basic auth, its allow-list) stay; the 429 was merged with the route's own.
  for (const [code, response] of Object.entries(access.responses)) if (code === '429' || responses[code] === undefined) responses[code] = response;
  if (access.security === undefined) return false;
  operation.security = access.security;
  return true;
}

/** Adds the headers, the body parser's errors and the shutdown 503 to every operation of the finished document. */
function addCommonResponses(doc: Json): Json {
  let secured = false;
  for (const pathItem of Object.values((doc.paths ?? {}) as Record<string, Record<string, Json>>)) {
    for (const operation of Object.values(pathItem)) {
      const responses = (operation.responses ?? {}) as Record<string, Json>;
      if (addAccessAnswers(operation, responses)) secured = true;
      if (operation.requestBody !== undefined) for (const [code, response] of Object.entries(BODY_ERRORS)) responses[code] ??= structuredClone(response);
      addShutdownAnswer(responses);
      for (const [code, response] of Object.entries(responses)) {
        const retryAfter = RETRY_AFTER[Number(code) as keyof typeof RETRY_AFTER] as Json | undefined;
        response.headers = { ...EVERY_RESPONSE_HEADERS, ...(retryAfter && { 'Retry-After': retryAfter }), ...(response.headers as Json | undefined) };
      }
      operation.responses = responses;
    }
  }
  if (secured) doc.components = { ...(doc.components as Json | undefined), securitySchemes: SECURITY_SCHEMES };
  return doc;
}

/** `enabled` tells whether a database resource is enabled (fixed for the life of the process). */
export async function registerSwagger(app: FastifyInstance, version: string, enabled: (resourceId: string) => boolean, settings: SettingsReader): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'WatchTower',
        description:
          'HTTP database gateway. Each data route declares the database resources it needs; a request runs only once it holds ' +
          'a request slot and a pooled connection for each. Every response carries X-Correlation-ID and X-Process-Time, and ' +
          'every error a JSON body {"detail", "cid"}. Only the routes whose resources are enabled on this server are listed; ' +
          'the others answer 404.',
        version,
      },
      tags: [
        { name: 'traffic', description: 'Sample hourly TCP traffic data' },
        { name: 'health', description: 'Probes' },
        { name: 'operations', description: 'Metrics and operations' },
      ],
    },
    transform: ({ schema, url, route }) => {
      if (!schema) return { schema, url };
      const resources = route.config?.resources ?? [];
      if (!resources.every(enabled)) return { schema: { ...schema, hide: true }, url };
      const own = ((schema as { response?: Json }).response ?? {}) as Json;
      const access = accessDocs({ url: route.url, config: route.config }, settings(), own);
      const withAccess = { ...schema, [ACCESS]: access };
      if (isStreamed(route)) return { schema: { ...withAccess, description: `${(schema as { description?: string }).description ?? ''}${STREAM_NOTE}` }, url };
      return { schema: withAccess, url };
    },
    transformObject: (documents) => ('openapiObject' in documents ? addCommonResponses(documents.openapiObject as Json) : documents.swaggerObject),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

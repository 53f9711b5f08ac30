/**
 * What the gateway keeps per request, on `request.wt`. Created in onRequest, so every later hook
 * and handler can rely on it; never module state, so nothing leaks between requests.
 */
import type { ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { Caller } from '../auth/caller.js';
import type { QueryRecord } from '../query/query.js';
import type { RequestResources } from '../resources/request-resources.js';

export interface RequestState {
  /** performance.now() at arrival. */
  start: number;
  cid: string;
  /** Whether this request writes request/request-stats records (not for /metrics, /docs, /health). */
  logged: boolean;
  /** The route template, when a route's hook set it (else read from Fastify at the end). */
  endpoint?: string;
  /** The raw response: a stream whose client stopped reading is cut off through it. */
  response?: ServerResponse;
  /** The client address, read once for the records. */
  client: string;
  /** Set once, on arrival, by the acquire hooks of a route that declares resources; their one owner. */
  resources?: RequestResources;
  /** What the request's statements did, for the query-stats record. */
  queries: QueryRecord[];
  /** The records of statements that failed before any row (src/query/query.ts); for their trace spans. */
  failedQueries?: QueryRecord[];
  /** The request's trace span, when `otel_traces` is on (src/tracing/). */
  span?: Span;
  /** Who is calling, once authentication has run (src/auth/); undefined: anonymous. */
  caller?: Caller;
  /** Whether the `request` record was written: once authentication has run, or at the end for a request refused before. */
  announced?: boolean;
  /** The code of the AppError the request was answered with, if any (counts refusals per caller). */
  errorCode?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    wt: RequestState;
  }
  interface FastifyContextConfig {
    /** Database resources the route needs; acquired before the handler runs. */
    resources?: string[];
  }
}

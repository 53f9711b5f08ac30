/**
 * Request lifecycle hooks: correlation id and request state on arrival, the request record once
 * the caller is known, response headers, and on completion the query-stats and request-stats
 * records, metrics, and the release of every resource the request held (also when the client went
 * away mid-response). Every record names the caller (`client_id`) beside the address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS, callerId } from '../auth/caller.js';
import type { SettingsReader } from '../config/index.js';
import { AppError, ShuttingDownError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { UNMATCHED_ENDPOINT } from '../metrics/bind.js';
import { queryLogTypeFor, queryStatsFields, roundSeconds } from '../query/query-log.js';
import { correlationId } from './cid.js';
import { DEFAULT_RETRY_AFTER_SECONDS } from './error-reply.js';
import { serverTiming } from './server-timing.js';
import { childTraceParent, parseTraceParent } from './traceparent.js';
import { spanTraceParent, type RequestTracer } from '../tracing/tracer.js';
import type { RequestState } from './request-state.js';

const log = getLogger('lifecycle.ts');
const requestRecord = log.record('info', 'request', ['client', 'client_id']);
const requestStatsRecord = log.record('info', 'request-stats', ['client', 'client_id', 'queries', 'status_code', 'content_length', 'duration', 'aborted']);

/**
 * Paths that write no request records and are not counted in the request metrics (as in the
 * original): scrapes, docs and probes would drown the real traffic, a 1 s scrape adding a request
 * per second to every per-URL panel. They still get X-Correlation-ID and X-Process-Time.
 */
const QUIET_PREFIXES = ['/metrics', '/docs', '/health/'];

export interface RequestObserver {
  /**
   * Called once per finished request that is not quiet, with the route template (or
   * UNMATCHED_ENDPOINT) and the caller's id (undefined: anonymous).
   */
  requestDone(endpoint: string, statusCode: number, seconds: number, caller?: string): void;
  /**
   * Called once per finished request answered with an AppError, quiet ones included (a refused
   * scrape is still a refusal), with the error's code and the caller's id (undefined: anonymous).
   */
  requestFailed?(code: string, caller: string | undefined): void;
}

export function isQuiet(url: string): boolean {
  for (const prefix of QUIET_PREFIXES) if (url.startsWith(prefix)) return true;
  return false;
}

/** The `msg` of a request's three records. */
export interface RecordMessages {
  request: string;
  queryStats: string;
  results: string;
}

/**
 * Made once per method and URL (most requests repeat one), so the records pass the same strings
 * each time and the log formatter recognises them at once instead of comparing new text. Bounded
 * in entries (emptied when full) and in URL length, so odd URLs cannot make it large.
 */
const recordMessages = new Map<string, RecordMessages>();
const MAX_RECORD_MESSAGES = 1000;
const MAX_CACHED_URL = 256;

function makeMessages(method: string, url: string): RecordMessages {
  const line = `${method} ${url}`;
  return { request: line, queryStats: `${line} query stats`, results: `${line} results` };
}

function messagesFor(method: string, url: string): RecordMessages {
  if (url.length > MAX_CACHED_URL) return makeMessages(method, url);
  const key = method === 'GET' ? url : `${method} ${url}`;
  let m = recordMessages.get(key);
  if (m === undefined) {
    m = makeMessages(method, url);
    if (recordMessages.size >= MAX_RECORD_MESSAGES) recordMessages.clear();
    recordMessages.set(key, m);
  }
  return m;
}

function isStream(payload: unknown): boolean {
  return typeof (payload as { pipe?: unknown } | null)?.pipe === 'function';
}

function seconds(state: RequestState): number {
  return (performance.now() - state.start) / 1000;
}

/** X-Process-Time under a second, per whole millisecond, made once: toFixed per response cost more than the rest of the header. */
const UNDER_A_SECOND: string[] = [];

function processTimeText(s: number): string {
  const ms = Math.round(s * 1000);
  if (ms < 0 || ms >= 1000) return s.toFixed(3);
  return (UNDER_A_SECOND[ms] ??= (ms / 1000).toFixed(3));
}

/**
 * Writes the `request` record once. Not on arrival: the caller is known only after the
 * authentication hooks, so it is written in preParsing (after every onRequest hook, before the body
 * is read or a resource waited for), or at the end for a request answered before that (refused,
 * rate-limited, shutting down).
 */
function announce(req: FastifyRequest, state: RequestState): void {
  if (!state.logged || state.announced) return;
  state.announced = true;
  requestRecord(messagesFor(req.method, req.url).request, [state.client, callerId(state)], state.cid);
}

/**
 * The records and metrics of a request the express lane answered without Fastify
 * (src/http/express-lane.ts): the same ones these hooks write for an anonymous request that ran no
 * query. `arrived` writes its request record; `ended`, when its response closed, its request-stats
 * record and metrics.
 */
export interface ExpressRecords {
  /** Returns the messages of its records, for ended(). */
  arrived(method: string, url: string, client: string, cid: string): RecordMessages;
  /** `length`: the Content-Length sent, if any. */
  ended(messages: RecordMessages, endpoint: string, client: string, cid: string, req: IncomingMessage, res: ServerResponse, start: number, length: string | undefined): void;
}

export function expressRecords(observer: RequestObserver): ExpressRecords {
  return {
    arrived: (method, url, client, cid) => {
      const messages = messagesFor(method, url);
      requestRecord(messages.request, [client, ANONYMOUS], cid);
      return messages;
    },
    ended: (messages, endpoint, client, cid, req, res, start, length) => {
      const duration = (performance.now() - start) / 1000;
      const statusCode = recordedStatus(res);
      observer.requestDone(endpoint, statusCode, duration, undefined);
      const aborted = wasAborted(req, res);
      requestStatsRecord(messages.results, [client, ANONYMOUS, 0, statusCode, length === undefined ? '-' : length, roundSeconds(duration), aborted || undefined], cid);
    },
  };
}

/** X-Process-Time of a response that leaves now, for a request that arrived at `start` (performance.now()). */
export function processTimeSince(start: number): string {
  return processTimeText((performance.now() - start) / 1000);
}

/**
 * `tracer`: present when `otel_traces` is on; every request that writes records (not the quiet
 * paths) then has a span, whose trace id also serves as its correlation id when none was sent.
 */
export function registerLifecycle(app: FastifyInstance, observer: RequestObserver, isShuttingDown: () => boolean, settings: SettingsReader, tracer?: RequestTracer): void {
  app.decorateRequest('wt', null as unknown as RequestState);

  app.addHook('onRequest', (req, reply, done) => {
    const cfg = settings();
    const trace = parseTraceParent(req.headers.traceparent);
    const start = performance.now();
    const logged = !isQuiet(req.url);
    const span = tracer !== undefined && logged ? tracer.start(req.method, trace, start) : undefined;
    const state: RequestState = {
      start,
      cid: correlationId(req.headers['x-correlation-id'], cfg.cid_len, span !== undefined ? span.spanContext().traceId : trace?.traceId),
      logged,
      client: req.ip,
      response: reply.raw,
      queries: [],
    };
    if (span !== undefined) state.span = span;
    req.wt = state;
    reply.header('X-Correlation-ID', state.cid);
    if (span !== undefined) reply.header('traceparent', spanTraceParent(span));
    else if (trace !== undefined) reply.header('traceparent', childTraceParent(trace));
    // The end of every request, answered or abandoned mid-response: 'close' always comes (once),
    // while Fastify's onResponse does not run for an abandoned one, so no hook is needed.
    reply.raw.on('close', () => finish(req, reply, observer, settings, tracer));
    done(isShuttingDown() ? new ShuttingDownError() : undefined);
  });

  app.addHook('preParsing', (req, _reply, payload, done) => {
    announce(req, req.wt);
    done(null, payload);
  });

  // The code of the error a request is answered with, whichever hook or handler raised it.
  app.addHook('onError', (req, _reply, err, done) => {
    if (req.wt && err instanceof AppError) req.wt.errorCode = err.code;
    done();
  });

  app.addHook('onSend', (req, reply, payload, done) => {
    const state = req.wt;
    // For a stream this is the time to the first byte: headers leave before the body.
    reply.header('X-Process-Time', processTimeText(seconds(state)));
    if (settings().server_timing) {
      const timing = serverTiming(state);
      if (timing !== undefined) reply.header('Server-Timing', timing);
    }
    // A complete body (not a stream) no longer needs the database: give the slot and connection
    // back now, so a queued request starts while this response is written. Streams, and statements
    // still running, keep them until they end.
    if (state.resources !== undefined && !isStream(payload)) state.resources.releaseIfIdle();
    // Requests in flight when shutdown began close their keep-alive connection with the response;
    // otherwise the server would wait for clients to drop idle sockets.
    if (isShuttingDown()) reply.header('Connection', 'close');
    // Every 503 says when to come back, also those a route sends itself (/health/ready, /metrics).
    if (reply.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('Retry-After', String(DEFAULT_RETRY_AFTER_SECONDS));
    done(null, payload);
  });
}

/**
 * Runs once per request, when its response closes: releases what it holds (synchronously unless a
 * stream must be cancelled or a statement is still running), then writes its records and metrics.
 * Never throws: it runs in an event listener.
 */
function finish(req: FastifyRequest, reply: FastifyReply, observer: RequestObserver, settings: SettingsReader, tracer: RequestTracer | undefined): void {
  const state = req.wt;
  // A request still waiting for its resources stops waiting (the client is gone); what it holds
  // goes back. The records follow the release, whether it succeeded or not.
  let releasing: Promise<void> | undefined;
  try {
    releasing = state.resources?.end();
  } catch (err) {
    logReleaseFailure(state, err);
  }
  if (releasing === undefined) {
    recordSafely(req, reply, observer, state, settings, tracer);
    return;
  }
  releasing.catch((err: unknown) => logReleaseFailure(state, err)).then(() => recordSafely(req, reply, observer, state, settings, tracer));
}

function logReleaseFailure(state: RequestState, err: unknown): void {
  log.error('release-err', 'releasing request resources failed', { error: err as Error, cid: state.cid });
}

function recordSafely(req: FastifyRequest, reply: FastifyReply, observer: RequestObserver, state: RequestState, settings: SettingsReader, tracer: RequestTracer | undefined): void {
  try {
    recordRequestEnd(req, reply, observer, state, settings, tracer);
  } catch (err) {
    log.error('request-end-err', 'recording the end of a request failed', { error: err as Error, cid: state.cid });
  }
}

/**
 * Logged and counted for a client that closed its connection before any response went out
 * (nginx's "client closed request"): it got no status at all, least of all the 200 the route meant.
 */
export const CLIENT_CLOSED_REQUEST = 499;

/** The status a closed response is recorded and counted with: the one sent, or 499 when none went out. */
function recordedStatus(res: ServerResponse): number {
  return res.headersSent ? res.statusCode : CLIENT_CLOSED_REQUEST;
}

/** The client went away, or the response was not written to its end. */
function wasAborted(req: IncomingMessage, res: ServerResponse): boolean {
  return req.aborted || !res.writableFinished;
}

function recordRequestEnd(req: FastifyRequest, reply: FastifyReply, observer: RequestObserver, state: RequestState, settings: SettingsReader, tracer: RequestTracer | undefined): void {
  if (state.errorCode !== undefined) observer.requestFailed?.(state.errorCode, state.caller?.id);
  if (!state.logged) return;
  announce(req, state);
  const duration = seconds(state);
  const statusCode = recordedStatus(reply.raw);
  // Data routes set their template when acquiring; Fastify's routeOptions builds an object per read.
  const endpoint = state.endpoint ?? (req.is404 ? UNMATCHED_ENDPOINT : (req.routeOptions.url ?? UNMATCHED_ENDPOINT));
  observer.requestDone(endpoint, statusCode, duration, state.caller?.id);
  const cfg = settings();
  const aborted = wasAborted(req.raw, reply.raw);
  const client_id = callerId(state);
  if (state.span !== undefined && tracer !== undefined) {
    const q = req.url.indexOf('?');
    tracer.end(state, {
      method: req.method,
      route: endpoint,
      path: q === -1 ? req.url : req.url.slice(0, q),
      statusCode,
      errorCode: state.errorCode,
      clientId: client_id,
      // Names an acquisition that failed (read only then: Fastify builds routeOptions at each read).
      resourceIds: state.resources?.acquisitionFailed ? req.routeOptions.config.resources : undefined,
    });
  }
  const queryFields = queryStatsFields(state.queries, queryLogTypeFor(req.url, cfg), cfg.query_results_log_max_len, { client: state.client, client_id, cid: state.cid });
  const msg = messagesFor(req.method, req.url);
  if (queryFields) log.info('query-stats', msg.queryStats, queryFields);
  const length = reply.getHeader('content-length');
  requestStatsRecord(
    msg.results,
    [state.client, client_id, state.queries.length, statusCode, length === undefined ? '-' : length, roundSeconds(duration), aborted || undefined],
    state.cid,
  );
}

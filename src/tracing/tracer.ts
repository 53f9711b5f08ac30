/**
 * Optional OpenTelemetry tracing (`otel_traces`): what the request hooks see of it. The SDK is
 * imported only when tracing is on (startTracing), so a gateway without it loads none of it and pays
 * one check per request. Spans of acquisitions and statements are built when the request ends, from
 * the times its records already hold (src/tracing/spans.ts), so nothing is carried through the code
 * while the request runs.
 */
import type { Span } from '@opentelemetry/api';
import type { SettingsReader } from '../config/index.js';
import type { TraceParent } from '../http/traceparent.js';
import type { RequestState } from '../http/request-state.js';

/** What the request span says once the request has ended. */
export interface FinishedRequest {
  method: string;
  /** The route template (or the unmatched-route label). */
  route: string;
  /** The path, without the query string. */
  path: string;
  statusCode: number;
  /** The code of the AppError the request was answered with. */
  errorCode?: string;
  clientId: string;
  /** The resource ids the route declares (its acquisitions), if any. */
  resourceIds?: readonly string[];
}

export interface RequestTracer {
  /** The span of a request that arrived at `start` (performance.now()), a child of the caller's span when it sent one. */
  start(method: string, parent: TraceParent | undefined, start: number): Span;
  /** Ends the request's span, with a child per acquisition and per statement, as of now. */
  end(state: RequestState, done: FinishedRequest): void;
  /** Sends the spans still queued and stops, within `timeoutMs`; never rejects. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Seconds shutdown waits at most for the spans still queued to reach the OTLP receiver (and at most shutdown_timeout). */
export const TRACE_FLUSH_SECONDS = 5;

/** The `traceparent` a traced request answers with: its own span, in its trace, with its sampled flag. */
export function spanTraceParent(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-${c.traceFlags & 1 ? '01' : '00'}`;
}

/** The tracer when `otel_traces` is on (the SDK loaded and the exporter set up), else undefined. */
export async function startTracing(settings: SettingsReader, version: string): Promise<RequestTracer | undefined> {
  if (!settings().otel_traces) return undefined;
  const { createOtelTracer } = await import('./otel.js');
  return createOtelTracer(settings, version);
}

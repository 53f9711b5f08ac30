/**
 * A request's spans: the request (SERVER) started on arrival, so its id can be answered in
 * `traceparent`; at its end a child per resource acquisition (slot, then connection) and per
 * statement (CLIENT), built from the times the request's records hold, with explicit start and end
 * times. Nothing is propagated through the request while it runs.
 */
import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  DB_SYSTEM_NAME_VALUE_MYSQL,
  DB_SYSTEM_NAME_VALUE_POSTGRESQL,
} from '@opentelemetry/semantic-conventions';
import type { SettingsReader } from '../config/index.js';
import type { DbType } from '../config/schema.js';
import { statementKind } from '../db/result-columns.js';
import type { TraceParent } from '../http/traceparent.js';
import type { RequestState } from '../http/request-state.js';
import type { QueryRecord } from '../query/query.js';
import type { Acquisition } from '../resources/request-resources.js';
import type { FinishedRequest } from './tracer.js';

// Incubating conventions are copied, as the semantic-conventions package asks, not imported.
const ATTR_DB_RESPONSE_RETURNED_ROWS = 'db.response.returned_rows';
const DB_SYSTEM_NAME_VALUE_SQLITE = 'sqlite';
const DB_SYSTEM_NAME_VALUE_OTHER_SQL = 'other_sql';

/** The gateway's own attributes. */
export const ATTR_WT_RESOURCE_ID = 'wt.resource_id';
export const ATTR_WT_CID = 'wt.cid';
export const ATTR_WT_CLIENT_ID = 'wt.client_id';
export const ATTR_WT_SLOT_WAIT = 'wt.slot_wait_seconds';
export const ATTR_WT_CONN_WAIT = 'wt.conn_wait_seconds';
export const ATTR_WT_RETRIES = 'wt.retries';

/** The SQL on a span is cut to this many characters (an endpoint's statement can be long). */
const MAX_QUERY_TEXT = 2048;

const DB_SYSTEMS: Record<DbType, string> = {
  postgres: DB_SYSTEM_NAME_VALUE_POSTGRESQL,
  mysql: DB_SYSTEM_NAME_VALUE_MYSQL,
  sqlite: DB_SYSTEM_NAME_VALUE_SQLITE,
  odbc: DB_SYSTEM_NAME_VALUE_OTHER_SQL,
};

/**
 * A performance.now() time as epoch milliseconds. Given performance.now() itself, the SDK anchors
 * each span to the wall clock on its own (Date.now(), to the millisecond), so spans of one request
 * could disagree by a millisecond about which came first; one anchor for all keeps them in order.
 */
function epochMs(t: number): number {
  return performance.timeOrigin + t;
}

/** The request's span, a child of the caller's span when a valid traceparent came with it. */
export function startRequestSpan(tracer: Tracer, method: string, parent: TraceParent | undefined, start: number): Span {
  const ctx =
    parent === undefined
      ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.parentId, traceFlags: parseInt(parent.flags, 16) & 1, isRemote: true });
  return tracer.startSpan(method, { kind: SpanKind.SERVER, startTime: epochMs(start), attributes: { [ATTR_HTTP_REQUEST_METHOD]: method } }, ctx);
}

function acquisitionSpan(tracer: Tracer, ctx: Context, a: Acquisition, errorCode: string | undefined): void {
  const span = tracer.startSpan(
    `acquire ${a.rid}`,
    {
      kind: SpanKind.INTERNAL,
      startTime: epochMs(a.start),
      attributes: { [ATTR_WT_RESOURCE_ID]: a.rid, [ATTR_WT_SLOT_WAIT]: a.slotWaitSeconds, [ATTR_WT_CONN_WAIT]: a.connWaitSeconds, [ATTR_ERROR_TYPE]: a.failed ? errorCode : undefined },
    },
    ctx,
  );
  // Refused or timed out; a client that left while it waited is no failure of the gateway's.
  if (a.failed && errorCode !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
  span.end(epochMs(a.end));
}

function statementSpan(tracer: Tracer, ctx: Context, settings: SettingsReader, q: QueryRecord): void {
  const operation = statementKind(q.sql);
  const span = tracer.startSpan(
    `${operation} ${q.resourceId}`,
    {
      kind: SpanKind.CLIENT,
      startTime: epochMs(q.startedAt),
      attributes: {
        [ATTR_DB_SYSTEM_NAME]: DB_SYSTEMS[settings().secure[q.resourceId]?.db_type ?? 'odbc'],
        [ATTR_DB_OPERATION_NAME]: operation,
        [ATTR_DB_QUERY_TEXT]: q.sql.length > MAX_QUERY_TEXT ? q.sql.slice(0, MAX_QUERY_TEXT) : q.sql,
        [ATTR_WT_RESOURCE_ID]: q.resourceId,
        [ATTR_DB_RESPONSE_RETURNED_ROWS]: q.error !== undefined ? undefined : typeof q.rowCount === 'number' ? q.rowCount : q.streamedRows,
        [ATTR_WT_RETRIES]: q.retries,
      },
    },
    ctx,
  );
  if (q.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: q.error });
  span.end(epochMs(q.startedAt + q.seconds * 1000));
}

/** Ends the request's span, after a child for each acquisition and each statement. */
export function endRequestSpans(tracer: Tracer, settings: SettingsReader, state: RequestState, done: FinishedRequest): void {
  const span = state.span;
  if (span === undefined) return;
  // An unsampled request (the caller's traceparent said so) records nothing: no children to build.
  if (span.isRecording()) {
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    if (state.resources !== undefined) for (const a of state.resources.acquisitions(done.resourceIds)) acquisitionSpan(tracer, ctx, a, done.errorCode);
    for (const q of state.queries) statementSpan(tracer, ctx, settings, q);
    if (state.failedQueries !== undefined) for (const q of state.failedQueries) statementSpan(tracer, ctx, settings, q);
    span.updateName(`${done.method} ${done.route}`);
    span.setAttributes({
      [ATTR_HTTP_ROUTE]: done.route,
      [ATTR_URL_PATH]: done.path,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: done.statusCode,
      [ATTR_CLIENT_ADDRESS]: state.client,
      [ATTR_WT_CID]: state.cid,
      [ATTR_WT_CLIENT_ID]: done.clientId,
      [ATTR_ERROR_TYPE]: done.errorCode ?? (done.statusCode >= 500 ? String(done.statusCode) : undefined),
    });
    // As the HTTP conventions ask of a server: 5xx is its failure, 4xx the client's.
    if (done.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: done.errorCode });
  }
  span.end(epochMs(performance.now()));
}

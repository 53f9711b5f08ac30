/**
 * Builds the fields of the query-stats record from a request's queries, shaped by the log type:
 * stats → q<i>_conn_id, q<i>_duration, q<i>_row_count (and q<i>_retries when it ran again);
 * stats_with_query adds q<i>_query (and its parameters); stats_with_results adds q<i>_results;
 * all adds both.
 */
import type { QueryLogType, Settings } from '../config/schema.js';
import type { QueryRecord } from './query.js';

/** The log type for a route: the special one when its path contains a special pattern. */
export function queryLogTypeFor(routePath: string, cfg: Settings): QueryLogType {
  for (const pattern of cfg.special_queries_routes_patterns) {
    if (routePath.includes(pattern)) return cfg.special_queries_log_type;
  }
  return cfg.queries_log_type;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

function resultsText(q: QueryRecord, max: number): string {
  if (q.rowCount === 'streamed') return '<streamed>';
  if (!q.results) return '';
  // Stringify only as much as can be shown: a few rows beyond the limit are never needed.
  let text = '[';
  for (let i = 0; i < q.results.length && text.length <= max; i++) {
    text += (i > 0 ? ',' : '') + JSON.stringify(q.results[i], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
  return truncate(text + ']', max);
}

interface QueryKeys {
  resourceId: string;
  connId: string;
  duration: string;
  rowCount: string;
  query: string;
  params: string;
  results: string;
  retries: string;
}

/** Field names per query index, built once: a record is written for every request. */
const keysByIndex: QueryKeys[] = [];

/**
 * The name as V8 keeps property names (internalized): a store with a freshly built string looks it
 * up in the string table every time.
 */
function propertyName(name: string): string {
  return Object.keys({ [name]: 0 })[0];
}

function keysFor(index: number): QueryKeys {
  let k = keysByIndex[index];
  if (k === undefined) {
    const p = `q${index + 1}_`;
    const key = (suffix: string) => propertyName(p + suffix);
    k = {
      resourceId: key('resource_id'),
      connId: key('conn_id'),
      duration: key('duration'),
      rowCount: key('row_count'),
      query: key('query'),
      params: key('params'),
      results: key('results'),
      retries: key('retries'),
    };
    keysByIndex[index] = k;
  }
  return k;
}

/** Seconds rounded to 0.1 ms, as a number (toFixed would allocate a string). */
export function roundSeconds(seconds: number): number {
  return Math.round(seconds * 1e4) / 1e4;
}

/** The fields are added to `fields` (so a caller's leading fields need no copy) and returned. */
export function queryStatsFields(
  queries: readonly QueryRecord[],
  type: QueryLogType,
  maxResultsLen: number,
  fields: Record<string, unknown> = {},
): Record<string, unknown> | undefined {
  if (type === 'none' || queries.length === 0) return undefined;
  const withQuery = type === 'stats_with_query' || type === 'all';
  const withResults = type === 'stats_with_results' || type === 'all';
  for (let index = 0; index < queries.length; index++) {
    const q = queries[index];
    const k = keysFor(index);
    fields[k.resourceId] = q.resourceId;
    fields[k.connId] = q.connId;
    fields[k.duration] = roundSeconds(q.seconds);
    fields[k.rowCount] = q.rowCount === 'streamed' ? '<streamed>' : q.rowCount;
    // Only when it ran more than once: most records never need the field.
    if (q.retries !== undefined && q.retries > 0) fields[k.retries] = q.retries;
    if (withQuery) {
      fields[k.query] = q.sql.replace(/\s+/g, ' ').trim();
      if (q.params.length > 0) fields[k.params] = JSON.stringify(q.params, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    }
    if (withResults) fields[k.results] = resultsText(q, maxResultsLen);
  }
  return fields;
}

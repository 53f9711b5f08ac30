/**
 * Builds the fields of the query-stats record from a request's queries, shaped by the log type:
 * stats → q<i>_conn_id, q<i>_duration, q<i>_row_count; stats_with_query adds q<i>_query (and its
 * parameters); stats_with_results adds q<i>_results; all adds both.
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
    const p = `q${index + 1}_`;
    fields[`${p}resource_id`] = q.resourceId;
    fields[`${p}conn_id`] = q.connId;
    fields[`${p}duration`] = Number(q.seconds.toFixed(4));
    fields[`${p}row_count`] = q.rowCount === 'streamed' ? '<streamed>' : q.rowCount;
    if (withQuery) {
      fields[`${p}query`] = q.sql.replace(/\s+/g, ' ').trim();
      if (q.params.length > 0) fields[`${p}params`] = JSON.stringify(q.params, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    }
    if (withResults) fields[`${p}results`] = resultsText(q, maxResultsLen);
  }
  return fields;
}

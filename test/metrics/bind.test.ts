import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ResourceEventMap } from '../../src/resources/events.js';
import { createMetrics } from '../../src/metrics/catalogue.js';
import { bindResourceMetrics, initChildren, recordConfigReload, recordQuery, recordRequest, statusClass, UNMATCHED_ENDPOINT } from '../../src/metrics/bind.js';
import { parseExposition, sumOf } from './exposition.js';

const RID = 'sqlite_traffic';

async function exposition(metrics: ReturnType<typeof createMetrics>) {
  return parseExposition(await metrics.registry.metrics());
}

describe('recordQuery', () => {
  it('counts queries and errors by type, and observes rows only for non-streamed successes', async () => {
    const m = createMetrics();
    initChildren(m, [], [RID]);
    recordQuery(m, { resourceId: RID, seconds: 0.01, rows: 10 });
    recordQuery(m, { resourceId: RID, seconds: 0.02 }); // streamed
    recordQuery(m, { resourceId: RID, seconds: 10, error: 'timeout' });
    recordQuery(m, { resourceId: RID, seconds: 0.5, error: 'other' });
    recordQuery(m, { resourceId: RID, seconds: 0.5, error: 'other' });
    const e = await exposition(m);
    expect(sumOf(e, 'wt_queries_total', { resource_id: RID })).toBe(5);
    expect(sumOf(e, 'wt_query_errors_total', { resource_id: RID, error_type: 'timeout' })).toBe(1);
    expect(sumOf(e, 'wt_query_errors_total', { resource_id: RID, error_type: 'other' })).toBe(2);
    expect(sumOf(e, 'wt_query_duration_seconds_count', { resource_id: RID })).toBe(5);
    expect(sumOf(e, 'wt_query_rows_count', { resource_id: RID })).toBe(1);
    expect(sumOf(e, 'wt_query_rows_sum', { resource_id: RID })).toBe(10);
  });
});

describe('recordRequest', () => {
  it('maps status codes to three classes', () => {
    expect([100, 200, 204, 304, 399].map(statusClass)).toEqual(['2xx', '2xx', '2xx', '2xx', '2xx']);
    expect([400, 404, 429, 499].map(statusClass)).toEqual(['4xx', '4xx', '4xx', '4xx']);
    expect([500, 503, 504].map(statusClass)).toEqual(['5xx', '5xx', '5xx']);
  });

  it('feeds the counter, the histogram and the sum/count summary', async () => {
    const m = createMetrics();
    recordRequest(m, '/sqlite-json', 200, 0.2);
    recordRequest(m, '/sqlite-json', 504, 20);
    recordRequest(m, UNMATCHED_ENDPOINT, 404, 0.001);
    const e = await exposition(m);
    expect(sumOf(e, 'wt_requests_total', { endpoint: '/sqlite-json' })).toBe(2);
    expect(sumOf(e, 'wt_request_duration_seconds_count', { endpoint: '/sqlite-json' })).toBe(2);
    expect(sumOf(e, 'wt_request_duration_summary_seconds_count', { endpoint: '/sqlite-json', status_code: '5xx' })).toBe(1);
    expect(sumOf(e, 'wt_request_duration_summary_seconds_sum', { endpoint: '/sqlite-json', status_code: '5xx' })).toBe(20);
    expect(sumOf(e, 'wt_request_duration_summary_seconds_count', { endpoint: UNMATCHED_ENDPOINT, status_code: '4xx' })).toBe(1);
    expect(e.samples.some((s) => 'quantile' in s.labels)).toBe(false);
  });

  it('counts config reloads by result', async () => {
    const m = createMetrics();
    recordConfigReload(m, true);
    recordConfigReload(m, false);
    recordConfigReload(m, true);
    const e = await exposition(m);
    expect(sumOf(e, 'wt_config_reloads_total', { result: 'success' })).toBe(2);
    expect(sumOf(e, 'wt_config_reloads_total', { result: 'error' })).toBe(1);
  });
});

describe('bindResourceMetrics', () => {
  it('feeds counters and histograms from events and live gauges from stats() at scrape time', async () => {
    const m = createMetrics();
    const source = Object.assign(new EventEmitter<ResourceEventMap>(), {
      level: { active: 3, pending: 7, open: 5, pooled: 2, inUse: 3, breaker: 1, maxActive: 4, maxConnections: 6 },
      stats(_rid: string) {
        return this.level;
      },
    });
    const unbind = bindResourceMetrics(m, source, [RID]);
    source.emit('slot-requested', { resourceId: RID });
    source.emit('slot-acquired', { resourceId: RID, waitSeconds: 0.002 });
    source.emit('slot-error', { resourceId: RID, type: 'overload', waitSeconds: 0 });
    source.emit('conn-created', { resourceId: RID, connId: 1, seconds: 0.01 });
    source.emit('conn-create-error', { resourceId: RID, type: 'timeout', error: new Error('x') });
    source.emit('conn-closed', { resourceId: RID, connId: 1, reason: 'max-uses' });
    source.emit('pool-empty', { resourceId: RID });
    source.emit('pool-exhausted', { resourceId: RID });
    source.emit('conn-acquired', { resourceId: RID, connId: 1, waitSeconds: 0.003 });
    source.emit('conn-acquire-error', { resourceId: RID, type: 'timeout' });
    source.emit('conn-released', { resourceId: RID, connId: 1, usageSeconds: 0.04 });
    source.emit('slot-released', { resourceId: RID });
    let e = await exposition(m);
    const r = { resource_id: RID };
    expect(sumOf(e, 'wt_resource_requests_total', r)).toBe(1);
    expect(sumOf(e, 'wt_request_slot_acquire_duration_seconds_count', r)).toBe(2);
    expect(sumOf(e, 'wt_request_slot_errors_total', { ...r, error_type: 'overload' })).toBe(1);
    expect(sumOf(e, 'wt_created_connections_total', r)).toBe(1);
    expect(sumOf(e, 'wt_conn_creation_errors_total', { ...r, error_type: 'timeout' })).toBe(1);
    expect(sumOf(e, 'wt_closed_connections_total', r)).toBe(1);
    expect(sumOf(e, 'wt_pool_empty_total', r)).toBe(1);
    expect(sumOf(e, 'wt_pool_exhausted_total', r)).toBe(1);
    expect(sumOf(e, 'wt_acquire_connection_duration_seconds_count', r)).toBe(1);
    expect(sumOf(e, 'wt_conn_acquire_errors_total', r)).toBe(1);
    expect(sumOf(e, 'wt_connection_usage_duration_seconds_sum', r)).toBeCloseTo(0.04);
    const now = Date.now() / 1000;
    for (const g of ['wt_last_request_time_seconds', 'wt_last_response_time_seconds', 'wt_last_conn_created_time_seconds', 'wt_last_conn_created_error_time_seconds']) {
      expect(Math.abs(sumOf(e, g, r) - now), g).toBeLessThan(5);
    }
    expect(sumOf(e, 'wt_pending_requests', r)).toBe(7);
    expect(sumOf(e, 'wt_in_progress_requests', r)).toBe(3);
    expect(sumOf(e, 'wt_open_connections', r)).toBe(5);
    expect(sumOf(e, 'wt_pooled_connections', r)).toBe(2);
    expect(sumOf(e, 'wt_breaker_state', r)).toBe(1);
    expect(sumOf(e, 'wt_max_active_requests', r)).toBe(4);
    expect(sumOf(e, 'wt_max_connections', r)).toBe(6);

    // Live gauges follow the source on the next scrape.
    source.level = { active: 0, pending: 1, open: 4, pooled: 4, inUse: 0, breaker: 0, maxActive: 2, maxConnections: 8 };
    e = await exposition(m);
    expect(sumOf(e, 'wt_pending_requests', r)).toBe(1);
    expect(sumOf(e, 'wt_pooled_connections', r)).toBe(4);
    expect(sumOf(e, 'wt_breaker_state', r)).toBe(0);
    expect(sumOf(e, 'wt_max_active_requests', r)).toBe(2);
    expect(sumOf(e, 'wt_max_connections', r)).toBe(8);

    unbind();
    expect(source.listenerCount('slot-requested')).toBe(0);
    source.emit('slot-requested', { resourceId: RID });
    e = await exposition(m);
    expect(sumOf(e, 'wt_resource_requests_total', r)).toBe(1);
  });
});

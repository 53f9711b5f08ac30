/**
 * The pieces of `watchtower stat` on hand-made input: the exposition parser, the quantile of
 * histogram buckets in PromQL's special cases, and the view's rates (counter resets, series new in
 * the later scrape, several targets added up). Prometheus itself checks the quantiles on a real
 * gateway's scrapes in prometheus-quantile.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ExpositionError, parseExposition } from '../../src/stat/exposition.js';
import { bucketQuantile } from '../../src/stat/quantile.js';
import type { Scrape } from '../../src/stat/scrape.js';
import { metricsUrl } from '../../src/stat/scrape.js';
import { renderJson, renderText } from '../../src/stat/render.js';
import { computeView } from '../../src/stat/view.js';

type OkScrape = Extract<Scrape, { ok: true }>;

describe('exposition parser', () => {
  it('reads names, escaped label values, special values and timestamps', () => {
    const samples = parseExposition(
      [
        '# HELP x_total A counter.',
        '# TYPE x_total counter',
        'x_total{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3',
        'h_bucket{le="+Inf"} +Inf',
        'nan NaN 1700000000000',
        'exp { k = "v" , } 1.5e3',
        '',
      ].join('\n'),
    );
    expect(samples).toEqual([
      { name: 'x_total', labels: { a: 'q"uote', b: 'back\\slash', c: 'new\nline' }, value: 3 },
      { name: 'h_bucket', labels: { le: '+Inf' }, value: Infinity },
      { name: 'nan', labels: {}, value: NaN },
      { name: 'exp', labels: { k: 'v' }, value: 1500 },
    ]);
  });

  it('names the line it cannot read', () => {
    expect(() => parseExposition('ok 1\nbad{a="1" 2')).toThrow(ExpositionError);
    expect(() => parseExposition('ok 1\nbad{a="1"} two')).toThrow(/metrics line 2: bad value for bad/);
  });
});

describe('bucketQuantile (PromQL histogram_quantile)', () => {
  const b = (pairs: [number, number][]) => pairs.map(([upperBound, count]) => ({ upperBound, count }));

  it('interpolates linearly within the bucket, the lowest one starting at 0', () => {
    const buckets = b([[0.1, 10], [0.5, 30], [1, 40], [Infinity, 40]]);
    expect(bucketQuantile(0.5, buckets)).toBeCloseTo(0.1 + 0.4 * (10 / 20), 12);
    expect(bucketQuantile(0.2, buckets)).toBeCloseTo(0.1 * (8 / 10), 12);
  });

  it('answers the highest finite bound for a rank in the +Inf bucket, NaN without a +Inf bucket or observations', () => {
    expect(bucketQuantile(0.99, b([[0.1, 1], [1, 2], [Infinity, 100]]))).toBe(1);
    expect(bucketQuantile(0.5, b([[0.1, 1], [1, 2]]))).toBeNaN();
    expect(bucketQuantile(0.5, b([[0.1, 0], [Infinity, 0]]))).toBeNaN();
    expect(bucketQuantile(0.5, b([[Infinity, 3]]))).toBeNaN();
  });

  it('q outside [0, 1] and a lowest bound at or below 0 as PromQL', () => {
    const buckets = b([[0, 5], [1, 10], [Infinity, 10]]);
    expect(bucketQuantile(-0.1, buckets)).toBe(-Infinity);
    expect(bucketQuantile(1.1, buckets)).toBe(Infinity);
    expect(bucketQuantile(0.2, buckets)).toBe(0);
  });

  it('sorts the buckets and forces them monotonic', () => {
    expect(bucketQuantile(0.5, b([[Infinity, 40], [1, 40], [0.1, 10], [0.5, 30]]))).toBeCloseTo(0.3, 12);
    // A lower count above a higher one is lifted to it (the envelope).
    expect(bucketQuantile(0.75, b([[0.1, 10], [0.5, 5], [1, 20], [Infinity, 20]]))).toBeCloseTo(0.5 + 0.5 * (5 / 10), 12);
  });
});

describe('metricsUrl', () => {
  it('appends /metrics to a base URL and keeps a metrics URL', () => {
    expect(metricsUrl('http://127.0.0.1:8000').href).toBe('http://127.0.0.1:8000/metrics');
    expect(metricsUrl('https://gw.example/wt/').href).toBe('https://gw.example/wt/metrics');
    expect(metricsUrl('http://h:1/metrics').href).toBe('http://h:1/metrics');
    expect(() => metricsUrl('ftp://h/')).toThrow(/only http and https/);
    expect(() => metricsUrl('localhost')).toThrow(/not a URL/);
  });
});

describe('computeView', () => {
  const scrape = (target: string, at: number, text: string): OkScrape => ({ target, ok: true, at, samples: parseExposition(text) });
  const queries = (n: number, extra = '') => `wt_queries_total{resource_id="r"} ${n}\nwt_open_connections{resource_id="r"} 2\n${extra}`;

  it('takes a counter lower than before as a reset, as rate() does', () => {
    const prev = new Map([['a', scrape('a', 0, queries(100))]]);
    const view = computeView(prev, [scrape('a', 2000, queries(30))]);
    expect(view.resources[0].queriesPerSecond).toBe(15);
    expect(view.intervalSeconds).toBe(2);
  });

  it('adds the targets up: rates per target, then summed; levels summed', () => {
    const prev = new Map([
      ['a', scrape('a', 0, queries(10))],
      ['b', scrape('b', 0, queries(50))],
    ]);
    const view = computeView(prev, [scrape('a', 1000, queries(20)), scrape('b', 2000, queries(54))]);
    expect(view.resources[0].queriesPerSecond).toBe(10 + 2);
    expect(view.resources[0].connections.open).toBe(4);
  });

  it('gives a series first seen in the later scrape no rate, and a target not read no rate', () => {
    const prev = new Map([['a', scrape('a', 0, queries(10))]]);
    const view = computeView(prev, [
      scrape('a', 1000, queries(20, 'wt_client_requests_total{client_id="new",status_code="2xx"} 5\n')),
      { target: 'b', ok: false, at: 1000, error: 'ECONNREFUSED' },
    ]);
    expect(view.clients.byRequests).toEqual([]);
    expect(view.resources[0].queriesPerSecond).toBe(10);
    expect(view.targets).toEqual([{ url: 'a', ok: true, intervalSeconds: 1 }, { url: 'b', ok: false, error: 'ECONNREFUSED' }]);
  });
  it('shows the configured maxima beside the levels, summed over targets, and - when a gateway does not expose them', () => {
    const limits = (maxActive: number, maxConns: number) =>
      [
        'wt_in_progress_requests{resource_id="r"} 1',
        'wt_pending_requests{resource_id="r"} 3',
        'wt_open_connections{resource_id="r"} 2',
        'wt_pooled_connections{resource_id="r"} 1',
        `wt_max_active_requests{resource_id="r"} ${maxActive}`,
        `wt_max_connections{resource_id="r"} ${maxConns}`,
      ].join('\n');
    const view = computeView(new Map(), [scrape('a', 1000, limits(4, 6)), scrape('b', 1000, limits(2, 3))]);
    expect(view.resources[0].slots).toEqual({ active: 2, max: 6, pending: 6 });
    expect(view.resources[0].connections).toEqual({ open: 4, pooled: 2, inUse: 2, max: 9 });
    const row = renderText(view).find((l) => l.startsWith('r '))!.split(/\s+/);
    expect(row.slice(0, 3)).toEqual(['r', '2/6/6', '4/2/9']);
    const json = JSON.parse(renderJson(view)) as { resources: { slots: unknown; connections: unknown }[] };
    expect(json.resources[0].slots).toEqual({ active: 2, max: 6, pending: 6 });
    expect(json.resources[0].connections).toEqual({ open: 4, pooled: 2, in_use: 2, max: 9 });

    // An older gateway without the gauges: the maxima are unknown, not 0.
    const older = computeView(new Map(), [scrape('a', 1000, queries(1))]);
    expect(older.resources[0].slots.max).toBeNull();
    expect(older.resources[0].connections.max).toBeNull();
    expect(renderText(older).find((l) => l.startsWith('r '))!.split(/\s+/).slice(1, 3)).toEqual(['0/-/0', '2/0/-']);
  });
});

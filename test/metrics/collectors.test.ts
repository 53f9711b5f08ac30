import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastGauge, FastHistogram, SumCountSummary } from '../../src/metrics/collectors.js';
import { parseExposition, type Sample } from './exposition.js';

const BUCKETS = [0.001, 0.05, 0.1, 0.5, 1, 2.5];

/** Samples in a stable order, labels compared as sets (label order in the text does not matter). */
async function samples(registry: Registry): Promise<Sample[]> {
  const key = (s: Sample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
  return parseExposition(await registry.metrics()).samples.sort((a, b) => key(a).localeCompare(key(b)));
}

describe('FastHistogram and FastCounter', () => {
  it('expose exactly what prom-client exposes for the same updates', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new FastHistogram('h_seconds', 'help', ['resource_id'], BUCKETS, ours);
    const ph = new Histogram({ name: 'h_seconds', help: 'help', labelNames: ['resource_id'], buckets: BUCKETS, registers: [theirs] });
    const c = new FastCounter('c_total', 'help', ['resource_id', 'error_type'], ours);
    const pc = new Counter({ name: 'c_total', help: 'help', labelNames: ['resource_id', 'error_type'], registers: [theirs] });
    const values = [0, 0.001, 0.0011, 0.05, 0.07, 0.1, 0.3, 0.5, 1, 2.5, 2.6, 99];
    values.forEach((v, i) => {
      const rid = i % 3 === 0 ? 'a' : 'b';
      // A fresh label object each time for one resource, a reused one for the other: same series either way.
      const labels = rid === 'a' ? { resource_id: 'a' } : REUSED;
      h.observe(labels, v);
      ph.observe({ resource_id: rid }, v);
      c.inc({ resource_id: rid, error_type: 'timeout' }, i);
      pc.inc({ resource_id: rid, error_type: 'timeout' }, i);
    });
    h.zero({ resource_id: 'never' });
    ph.zero({ resource_id: 'never' });
    expect(await samples(ours)).toEqual(await samples(theirs));
    const text = await ours.metrics();
    expect(text).toContain('# TYPE h_seconds histogram');
    expect(text).toContain('# TYPE c_total counter');
  });

  it('refuses what the built-in metrics refuse, and reset() empties them', async () => {
    const r = new Registry();
    const c = new FastCounter('c_total', 'help', ['x'], r);
    const h = new FastHistogram('h', 'help', ['x'], BUCKETS, r);
    expect(() => c.inc({ x: '1' }, -1)).toThrow(RangeError);
    expect(() => h.observe({ x: '1' }, Number.NaN)).toThrow(TypeError);
    c.inc({ x: '1' });
    r.resetMetrics();
    expect(parseExposition(await r.metrics()).samples).toEqual([]);
    c.inc(REUSED_X);
    c.inc(REUSED_X);
    expect(parseExposition(await r.metrics()).samples).toEqual([{ name: 'c_total', labels: { x: '1' }, value: 2 }]);
  });

  it('update the same series through a bound label set as through the labels, also after a reset', async () => {
    const r = new Registry();
    const c = new FastCounter('c_total', 'help', ['x'], r);
    const g = new FastGauge('g', 'help', ['x'], 'max', r);
    const h = new FastHistogram('h', 'help', ['x'], BUCKETS, r);
    const s = new SumCountSummary('s', 'help', ['x'], r);
    const labels = { x: '1' };
    const [bc, bg, bh, bs] = [c.bind(labels), g.bind(labels), h.bind(labels), s.bind(labels)];
    bc.inc();
    c.inc({ x: '1' }, 2);
    bg.set(7);
    bh.observe(0.07);
    h.observe({ x: '1' }, 3);
    bs.observe(0.5);
    const value = (samples: Sample[], name: string) => samples.find((x) => x.name === name)?.value;
    let e = parseExposition(await r.metrics()).samples;
    expect([value(e, 'c_total'), value(e, 'g'), value(e, 'h_count'), value(e, 'h_sum'), value(e, 's_count')]).toEqual([3, 7, 2, 3.07, 1]);
    expect(() => bc.inc(-1)).toThrow(RangeError);
    expect(() => bh.observe(Number.NaN)).toThrow(TypeError);
    // After a reset the bound handles must not keep updating series that are no longer exposed.
    r.resetMetrics();
    bc.inc();
    bh.observe(0.2);
    e = parseExposition(await r.metrics()).samples;
    expect([value(e, 'c_total'), value(e, 'h_count'), value(e, 'g')]).toEqual([1, 1, undefined]);
  });

  it('aggregate over cluster workers like the built-in metrics (sum, or max for last-time gauges)', async () => {
    const snapshot = async (n: number) => {
      const r = new Registry();
      const h = new FastHistogram('h', 'help', ['x'], BUCKETS, r);
      const s = new SumCountSummary('s', 'help', ['x'], r);
      new FastGauge('g_time', 'help', ['x'], 'max', r).set({ x: 'k' }, 1000 + n);
      for (let i = 0; i < n; i++) {
        h.observe({ x: 'k' }, 0.2);
        s.observe({ x: 'k' }, 0.2);
      }
      return r.getMetricsAsJSON();
    };
    const merged = parseExposition(await AggregatorRegistry.aggregate([await snapshot(2), await snapshot(3)]).metrics());
    const value = (name: string, labels: Record<string, string>) => merged.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    expect(value('h_bucket', { x: 'k', le: '0.5' })).toBe(5);
    expect(value('h_bucket', { x: 'k', le: '0.1' })).toBe(0);
    expect(value('h_count', { x: 'k' })).toBe(5);
    expect(value('s_count', { x: 'k' })).toBe(5);
    expect(value('s_sum', { x: 'k' })).toBeCloseTo(1);
    expect(value('g_time', { x: 'k' })).toBe(1003); // a "last time" gauge takes the latest worker's
  });
});

const REUSED = { resource_id: 'b' };
const REUSED_X = { x: '1' };

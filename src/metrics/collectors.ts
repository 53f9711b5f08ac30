/**
 * Counter, gauge, histogram and sum/count summary collectors for the metrics the request path updates.
 *
 * Hand-written because prom-client, on every update, copies the label object, validates it, hashes
 * it to a string and (for histograms) allocates a closure; a request makes about a dozen updates.
 * Here a label set is resolved to its series once, by the identity of the label object (callers
 * reuse label objects) and otherwise by a key, and an update is an addition. Its Summary also feeds
 * every observation into a t-digest even with no percentiles, which ours (sum and count only) skips.
 *
 * They speak prom-client's collector protocol (name/help/type/aggregator, get, reset), so the
 * registry's exposition and the cluster's aggregation treat them like the built-in metrics.
 */
import type { Aggregator, Metric, MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';

type Labels<L extends string> = Record<L, string>;
type Value = MetricValueWithName<string>;
type ValueLabels = Value['labels'];

/** A series' labels as exposition labels (a Record over L is one over string). */
const exposed = <L extends string>(labels: Labels<L>, extra?: { le: number | string }): ValueLabels =>
  (extra ? { ...labels, ...extra } : labels) as ValueLabels;

abstract class Collector<L extends string, S extends { labels: Labels<L> }> {
  abstract readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
  /** How cluster mode merges a series over workers. */
  aggregator: Aggregator = 'sum';
  private readonly byKey = new Map<string, S>();
  private byObject = new WeakMap<object, S>();
  /** Bumped by reset(): a bound series is then looked up again. */
  private generation = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    // The registry only calls get() and reset(); its typings list just the four built-in classes.
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(labels: Labels<L>): S;
  protected abstract values(s: S): Value[];

  /** The series of a label set, created (at zero) on first use. */
  series(labels: Labels<L>): S {
    const known = this.byObject.get(labels);
    if (known !== undefined) return known;
    let key = '';
    for (const n of this.labelNames) key += `${labels[n]}\u0000`;
    let s = this.byKey.get(key);
    if (s === undefined) {
      const own = {} as Labels<L>;
      for (const n of this.labelNames) own[n] = labels[n];
      s = this.create(own);
      this.byKey.set(key, s);
    }
    this.byObject.set(labels, s);
    return s;
  }

  /** Creates the series with zero values, so it is exposed before the first update. */
  zero(labels: Labels<L>): void {
    this.series(labels);
  }

  /**
   * The series of one label set, looked up once (and again after a reset): for the request path,
   * which updates the same few series on every request.
   */
  protected bound(labels: Labels<L>): () => S {
    let s = this.series(labels);
    let generation = this.generation;
    return () => {
      if (generation !== this.generation) {
        s = this.series(labels);
        generation = this.generation;
      }
      return s;
    };
  }

  reset(): void {
    this.byKey.clear();
    this.byObject = new WeakMap();
    this.generation++;
  }

  async get(): Promise<MetricObjectWithValues<Value>> {
    const values: Value[] = [];
    for (const s of this.byKey.values()) values.push(...this.values(s));
    // `type` is a string in the exposition protocol; prom-client's typings declare an enum.
    const type = this.type as unknown as MetricObjectWithValues<Value>['type'];
    return { name: this.name, help: this.help, type, aggregator: this.aggregator, values, collect: () => undefined };
  }
}

interface ValueSeries<L extends string> {
  labels: Labels<L>;
  value: number;
}

/** One number per series: what counters and gauges share. */
abstract class ValueCollector<L extends string> extends Collector<L, ValueSeries<L>> {
  protected create(labels: Labels<L>): ValueSeries<L> {
    return { labels, value: 0 };
  }

  protected values(s: ValueSeries<L>): Value[] {
    return [{ metricName: this.name, labels: exposed(s.labels), value: s.value }];
  }
}

export class FastCounter<L extends string> extends ValueCollector<L> {
  readonly type = 'counter';

  inc(labels: Labels<L>, value = 1): void {
    this.add(this.series(labels), value);
  }

  /** inc() for one label set, resolved once. */
  bind(labels: Labels<L>): { inc(value?: number): void } {
    const series = this.bound(labels);
    return { inc: (value = 1) => this.add(series(), value) };
  }

  private add(s: ValueSeries<L>, value: number): void {
    if (!(value >= 0)) throw new RangeError(`${this.name}: a counter only goes up (got ${value})`);
    s.value += value;
  }
}

/** A gauge that is only set (here: the "last time" gauges, set on every request). */
export class FastGauge<L extends string> extends ValueCollector<L> {
  readonly type = 'gauge';

  constructor(name: string, help: string, labelNames: readonly L[], aggregator: Aggregator, registry: Registry) {
    super(name, help, labelNames, registry);
    this.aggregator = aggregator;
  }

  set(labels: Labels<L>, value: number): void {
    this.series(labels).value = value;
  }

  /** set() for one label set, resolved once. */
  bind(labels: Labels<L>): { set(value: number): void } {
    const series = this.bound(labels);
    return {
      set: (value) => {
        series().value = value;
      },
    };
  }
}

interface HistogramSeries<L extends string> {
  labels: Labels<L>;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class FastHistogram<L extends string> extends Collector<L, HistogramSeries<L>> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels<L>, value: number): void {
    this.record(this.series(labels), value);
  }

  /** observe() for one label set, resolved once. */
  bind(labels: Labels<L>): { observe(value: number): void } {
    const series = this.bound(labels);
    return { observe: (value) => this.record(series(), value) };
  }

  private record(s: HistogramSeries<L>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a finite number: ${value}`);
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  protected create(labels: Labels<L>): HistogramSeries<L> {
    return { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  protected values(s: HistogramSeries<L>): Value[] {
    const bucket = `${this.name}_bucket`;
    const out: Value[] = [];
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += s.counts[i];
      out.push({ metricName: bucket, labels: exposed(s.labels, { le }), value: cumulative });
    });
    out.push({ metricName: bucket, labels: exposed(s.labels, { le: '+Inf' }), value: s.count });
    out.push({ metricName: `${this.name}_sum`, labels: exposed(s.labels), value: s.sum });
    out.push({ metricName: `${this.name}_count`, labels: exposed(s.labels), value: s.count });
    return out;
  }
}

interface SummarySeries<L extends string> {
  labels: Labels<L>;
  sum: number;
  count: number;
}

/** A Prometheus summary that exposes only _sum and _count. */
export class SumCountSummary<L extends string> extends Collector<L, SummarySeries<L>> {
  readonly type = 'summary';

  observe(labels: Labels<L>, value: number): void {
    this.record(this.series(labels), value);
  }

  /** observe() for one label set, resolved once. */
  bind(labels: Labels<L>): { observe(value: number): void } {
    const series = this.bound(labels);
    return { observe: (value) => this.record(series(), value) };
  }

  private record(s: SummarySeries<L>, value: number): void {
    s.sum += value;
    s.count += 1;
  }

  protected create(labels: Labels<L>): SummarySeries<L> {
    return { labels, sum: 0, count: 0 };
  }

  protected values(s: SummarySeries<L>): Value[] {
    return [
      { metricName: `${this.name}_sum`, labels: exposed(s.labels), value: s.sum },
      { metricName: `${this.name}_count`, labels: exposed(s.labels), value: s.count },
    ];
  }
}

/**
 * A Prometheus summary that exposes only _sum and _count.
 *
 * Hand-written because prom-client's Summary feeds every observation into a t-digest even with
 * `percentiles: []` (see its observe()), a per-request cost we do not want for a metric whose
 * quantiles nobody reads. This keeps two numbers per series and speaks prom-client's collector
 * protocol (get/reset/aggregator), so registries, exposition and cluster aggregation treat it
 * like any built-in metric.
 */
import type { Aggregator, Metric, MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';

interface Series<L extends string> {
  labels: Record<L, string>;
  sum: number;
  count: number;
}

export class SumCountSummary<L extends string> {
  readonly type = 'summary';
  readonly aggregator: Aggregator = 'sum';
  private readonly series = new Map<string, Series<L>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    // The registry only calls get() and reset(); its typings list just the four built-in classes.
    registry.registerMetric(this as unknown as Metric);
  }

  observe(labels: Record<L, string>, value: number): void {
    const s = this.child(labels);
    s.sum += value;
    s.count += 1;
  }

  /** Creates the series with zero values, so it is exposed before the first observation. */
  zero(labels: Record<L, string>): void {
    this.child(labels);
  }

  reset(): void {
    this.series.clear();
  }

  async get(): Promise<MetricObjectWithValues<MetricValueWithName<L>>> {
    const values: MetricValueWithName<L>[] = [];
    for (const s of this.series.values()) {
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    // `type` is a string in the exposition protocol; prom-client's typings declare an enum.
    return { name: this.name, help: this.help, type: this.type as unknown as MetricObjectWithValues<MetricValueWithName<L>>['type'], aggregator: this.aggregator, values, collect: () => undefined };
  }

  private child(labels: Record<L, string>): Series<L> {
    let key = '';
    for (const n of this.labelNames) key += labels[n] + '\u0000';
    let s = this.series.get(key);
    if (s === undefined) {
      const own = {} as Record<L, string>;
      for (const n of this.labelNames) own[n] = labels[n];
      s = { labels: own, sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }
}

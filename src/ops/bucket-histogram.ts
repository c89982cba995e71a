/**
 * A Prometheus histogram with one label, cheap to observe on the request path. prom-client's
 * Histogram validates and hashes the label set on every observe, even through a labelled
 * child; that was the largest third-party cost per proxied request in the gateway's
 * profile (`npm run bench:profile`). Here a child is an array of bucket counts; the
 * registry (still prom-client's) reads it only when scraped, through get(), in the same
 * shape prom-client's own histograms report, so the exposition text is the same.
 */
import type { Registry } from 'prom-client';
import { OwnMetric, type MetricValue } from './own-metric.ts';

export interface BucketHistogramChild {
  /** Records one value (seconds, or whatever the buckets are in). */
  observe(value: number): void;
}

interface Series {
  labelValue: string;
  child: BucketHistogramChild;
  /** Non-cumulative counts per upper bound; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class BucketHistogram extends OwnMetric {
  readonly type = 'histogram';
  readonly #label: string;
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(options: { name: string; help: string; label: string; buckets: readonly number[]; registers: Registry[] }) {
    super(options);
    this.#label = options.label;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
  }

  /** The child for one label value, made once. */
  labels(labelValue: string): BucketHistogramChild {
    const existing = this.#series.get(labelValue);
    if (existing) return existing.child;
    const bounds = this.#bounds;
    const series: Series = {
      labelValue,
      counts: new Float64Array(bounds.length + 1),
      sum: 0,
      count: 0,
      child: {
        observe(value: number): void {
          let i = 0;
          while (i < bounds.length && value > bounds[i]!) i++;
          series.counts[i]!++;
          series.sum += value;
          series.count++;
        },
      },
    };
    this.#series.set(labelValue, series);
    return series.child;
  }

  /** Cumulative buckets, then _sum and _count, per label value. */
  protected values(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += s.counts[i]!;
        values.push({ value: cumulative, labels: { le: bound, [this.#label]: s.labelValue }, metricName: `${this.name}_bucket` });
      });
      values.push({ value: s.count, labels: { le: '+Inf', [this.#label]: s.labelValue }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { [this.#label]: s.labelValue }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { [this.#label]: s.labelValue }, metricName: `${this.name}_count` });
    }
    return values;
  }

  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

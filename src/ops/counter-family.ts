/**
 * A Prometheus counter with labels, cheap to increment on the request path. A child of
 * prom-client's Counter hashes and validates its label set on every inc() and returns a
 * fresh object: work the gateway need not do per request (the whole per-request
 * accounting, this included, measured 6% paired; bench/README.md, "What each feature
 * costs"). Here a child is a number in a series made once per label set; the
 * registry (still prom-client's) reads the series only when scraped, through get(), in the
 * shape prom-client's own counters report, so the exposition text is the same, and the
 * workers' aggregation (ops/primary.ts) sums it as it sums theirs.
 */
import type { Registry } from 'prom-client';
import { OwnMetric, type MetricValue } from './own-metric.ts';

export interface CounterChild {
  /** Adds `by` (1 when omitted). */
  inc(by?: number): void;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly child: CounterChild;
  value: number;
  /** In #reported: a flag, so that an increment costs no Set lookup. */
  reported: boolean;
}

export class CounterFamily extends OwnMetric {
  readonly type = 'counter';
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, Series>();
  /** The label sets incremented since the start or the last reset, in that order: prom-client reports a set only after its first inc(). */
  readonly #reported = new Set<Series>();

  constructor(options: { name: string; help: string; labelNames: readonly string[]; registers: Registry[] }) {
    super(options);
    this.#labelNames = [...options.labelNames];
  }

  /** The child for these label values, in labelNames' order, made once. */
  labels(...values: string[]): CounterChild {
    if (values.length !== this.#labelNames.length) {
      throw new Error(`${this.name}: ${this.#labelNames.length} label values expected (${this.#labelNames.join(', ')}), got ${values.length}`);
    }
    const key = values.join('\n');
    const existing = this.#series.get(key);
    if (existing) return existing.child;
    const labels = Object.fromEntries(this.#labelNames.map((name, i) => [name, values[i]!]));
    const reported = this.#reported;
    const series: Series = {
      labels,
      value: 0,
      reported: false,
      child: {
        inc(by = 1): void {
          if (!(by >= 0)) throw new RangeError(`a counter only goes up: inc(${by})`);
          series.value += by;
          if (!series.reported) {
            series.reported = true;
            reported.add(series);
          }
        },
      },
    };
    this.#series.set(key, series);
    return series.child;
  }

  /** One value per label set incremented since the start or the last reset. */
  protected values(): MetricValue[] {
    return [...this.#reported].map((s) => ({ value: s.value, labels: { ...s.labels } }));
  }

  /** As prom-client's reset(): every label set gone from the report until incremented again. */
  reset(): void {
    for (const s of this.#series.values()) {
      s.value = 0;
      s.reported = false;
    }
    this.#reported.clear();
  }
}

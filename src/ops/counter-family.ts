/**
 * A Prometheus counter with labels, cheap to increment on the request path. A child of
 * prom-client's Counter hashes and validates its label set on every inc() and returns a
 * fresh object; per request that cost showed in the paired ablations (bench/README.md,
 * "Finding the cost"). Here a child is a number in a series made once per label set; the
 * registry (still prom-client's) reads the series only when scraped, through get(), in the
 * shape prom-client's own counters report, so the exposition text is the same, and the
 * workers' aggregation (ops/primary.ts) sums it as it sums theirs.
 */
import type { Registry } from 'prom-client';

export interface CounterChild {
  /** Adds `by` (1 when omitted). */
  inc(by?: number): void;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly child: CounterChild;
  value: number;
}

export class CounterFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, Series>();

  constructor(options: { name: string; help: string; labelNames: readonly string[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = [...options.labelNames];
    for (const registry of options.registers) registry.registerMetric(this as never);
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
    const series: Series = {
      labels,
      value: 0,
      child: {
        inc(by = 1): void {
          if (!(by >= 0)) throw new RangeError(`a counter only goes up: inc(${by})`);
          series.value += by;
        },
      },
    };
    this.#series.set(key, series);
    return series.child;
  }

  /** What prom-client's Registry formats: one value per label set. */
  async get() {
    const values = [...this.#series.values()].map((s) => ({ value: s.value, labels: { ...s.labels } }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const s of this.#series.values()) s.value = 0;
  }
}

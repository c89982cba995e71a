/**
 * What prom-client's Registry needs of a metric it did not make (counter-family.ts,
 * bucket-histogram.ts): a name, help, a type, the aggregator the workers' primary sums
 * with, get() in prom-client's shape and reset(). Registered as it is made.
 */
import type { Registry } from 'prom-client';

export interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export abstract class OwnMetric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  /** How ops/primary.ts combines the workers' values: summed, as prom-client does for its own counters and histograms. */
  readonly aggregator = 'sum';

  constructor(options: { name: string; help: string; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  protected abstract values(): MetricValue[];

  /** What the Registry formats. */
  async get() {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }

  abstract reset(): void;
}

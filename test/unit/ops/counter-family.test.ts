/**
 * The gateway's own counter must read exactly like prom-client's to a Prometheus scraper:
 * same family, labels and numbers, for any increments.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Counter, Registry } from 'prom-client';
import { CounterFamily } from '../../../src/ops/counter-family.ts';

async function both(increments: Array<[string, string, number]>): Promise<[string, string]> {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Counter({ name: 'sgw_requests_total', help: 'by mount and class', labelNames: ['mount', 'status_class'], registers: [theirs] });
  const fast = new CounterFamily({ name: 'sgw_requests_total', help: 'by mount and class', labelNames: ['mount', 'status_class'], registers: [ours] });
  for (const [mount, statusClass, by] of increments) {
    reference.labels({ mount, status_class: statusClass }).inc(by);
    fast.labels(mount, statusClass).inc(by);
  }
  return [await theirs.metrics(), await ours.metrics()];
}

describe('CounterFamily', () => {
  it('exposes the same text as prom-client\'s Counter for any increments', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom('shop', 'blog', 'a.b-c', '_none'), fc.constantFrom('2xx', '4xx', '5xx', 'aborted'), fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 1000 }))), { maxLength: 60 }),
      async (increments) => {
        const [theirs, ours] = await both(increments);
        expect(ours).toBe(theirs);
      },
    ), { numRuns: 200 });
  });

  it('inc() without an argument adds one; reset() zeroes every series', async () => {
    const registry = new Registry();
    const counter = new CounterFamily({ name: 'c_total', help: 'h', labelNames: ['result'], registers: [registry] });
    counter.labels('hit').inc();
    counter.labels('hit').inc();
    expect(await registry.metrics()).toContain('c_total{result="hit"} 2');
    counter.reset();
    expect(await registry.metrics()).toContain('c_total{result="hit"} 0');
  });

  it('refuses a decrease and a wrong number of label values, naming the counter', () => {
    const counter = new CounterFamily({ name: 'c_total', help: 'h', labelNames: ['kind', 'result'], registers: [] });
    expect(() => counter.labels('refresh', 'ok').inc(-1)).toThrow(/only goes up/);
    expect(() => counter.labels('refresh')).toThrow(/c_total: 2 label values expected \(kind, result\), got 1/);
  });
});

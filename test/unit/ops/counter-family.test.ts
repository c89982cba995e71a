/**
 * The gateway's own counter must read exactly like prom-client's to a Prometheus scraper:
 * same family, labels and numbers, for any increments.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Counter, Registry } from 'prom-client';
import { CounterFamily } from '../../../src/ops/counter-family.ts';

/** One step: an increment, a child made and not used (the gateway makes each mount's five up front), or a reset. */
type Step = ['inc', string, string, number] | ['child', string, string] | ['reset'];

async function both(steps: Step[]): Promise<[string, string]> {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Counter({ name: 'sgw_requests_total', help: 'by mount and class', labelNames: ['mount', 'status_class'], registers: [theirs] });
  const fast = new CounterFamily({ name: 'sgw_requests_total', help: 'by mount and class', labelNames: ['mount', 'status_class'], registers: [ours] });
  for (const step of steps) {
    if (step[0] === 'reset') {
      theirs.resetMetrics();
      ours.resetMetrics();
    } else if (step[0] === 'child') {
      reference.labels({ mount: step[1], status_class: step[2] });
      fast.labels(step[1], step[2]);
    } else {
      reference.labels({ mount: step[1], status_class: step[2] }).inc(step[3]);
      fast.labels(step[1], step[2]).inc(step[3]);
    }
  }
  return [await theirs.metrics(), await ours.metrics()];
}

const mount = fc.constantFrom('shop', 'blog', 'a.b-c', '_none');
const statusClass = fc.constantFrom('2xx', '4xx', '5xx', 'aborted');

describe('CounterFamily', () => {
  it('exposes the same text as prom-client\'s Counter for any increments, unused children and resets', async () => {
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constant('inc' as const), mount, statusClass, fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 1000 }))) },
      { weight: 2, arbitrary: fc.tuple(fc.constant('child' as const), mount, statusClass) },
      { weight: 1, arbitrary: fc.constant(['reset'] as Step) },
    );
    await fc.assert(fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps) => {
      const [theirs, ours] = await both(steps);
      expect(ours).toBe(theirs);
    }), { numRuns: 300 });
  });

  it('inc() without an argument adds one; reset() drops every series until it is incremented again', async () => {
    const registry = new Registry();
    const counter = new CounterFamily({ name: 'c_total', help: 'h', labelNames: ['result'], registers: [registry] });
    counter.labels('hit').inc();
    counter.labels('hit').inc();
    expect(await registry.metrics()).toContain('c_total{result="hit"} 2');
    counter.reset();
    expect(await registry.metrics()).not.toContain('c_total{result="hit"}');
    counter.labels('hit').inc(0);
    expect(await registry.metrics()).toContain('c_total{result="hit"} 0');
  });

  it('refuses a decrease and a wrong number of label values, naming the counter', () => {
    const counter = new CounterFamily({ name: 'c_total', help: 'h', labelNames: ['kind', 'result'], registers: [] });
    expect(() => counter.labels('refresh', 'ok').inc(-1)).toThrow(/only goes up/);
    expect(() => counter.labels('refresh')).toThrow(/c_total: 2 label values expected \(kind, result\), got 1/);
  });
});

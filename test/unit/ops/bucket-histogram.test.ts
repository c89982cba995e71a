/**
 * The gateway's own histogram must read exactly like prom-client's to a Prometheus
 * scraper: same families, buckets, labels and numbers, for any observations.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../../src/ops/bucket-histogram.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

async function both(observations: Array<[string, number]>): Promise<[string, string]> {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'sgw_upstream_duration_seconds', help: 'by mount', labelNames: ['mount'], buckets: BUCKETS, registers: [theirs] });
  const fast = new BucketHistogram({ name: 'sgw_upstream_duration_seconds', help: 'by mount', label: 'mount', buckets: BUCKETS, registers: [ours] });
  for (const [mount, value] of observations) {
    reference.labels({ mount }).observe(value);
    fast.labels(mount).observe(value);
  }
  return [await theirs.metrics(), await ours.metrics()];
}

describe('BucketHistogram', () => {
  it('exposes the same text as prom-client\'s Histogram for any observations', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom('shop', 'blog', 'a.b-c'), fc.oneof(fc.constantFrom(...BUCKETS, 0, 31), fc.double({ min: 0, max: 60, noNaN: true }))), { maxLength: 60 }),
      async (observations) => {
        const [theirs, ours] = await both(observations);
        expect(ours).toBe(theirs);
      },
    ), { numRuns: 200 });
  });

  it('counts a value equal to a bound in that bound\'s bucket', async () => {
    const [, ours] = await both([['shop', 0.005]]);
    expect(ours).toContain('sgw_upstream_duration_seconds_bucket{le="0.0025",mount="shop"} 0');
    expect(ours).toContain('sgw_upstream_duration_seconds_bucket{le="0.005",mount="shop"} 1');
  });
});

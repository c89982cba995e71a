/** The primary's pure decisions: how many workers, and how long to wait before replacing one. */
import { testSecret } from '../../support/secrets.ts';
import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.ts';
import { restartDelayMs, workerCount } from '../../../src/ops/primary.ts';
import { encodeWorkerPorts, workerPorts } from '../../../src/ops/worker-link.ts';

const config = (workers: unknown) => parseConfig(stringify({
  listen: { workers },
  session: { secrets: [testSecret('cookie')] },
  store: { redis: { url: 'redis://127.0.0.1:6379' } },
  signing: { keys: [{ id: 'k1', secret: testSecret('signing') }] },
  mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
}), 'test.yaml', {});

describe('workerCount', () => {
  it('a number, a number from the environment, or auto = the cores available', () => {
    expect(workerCount(config(3))).toBe(3);
    expect(workerCount(config('4'))).toBe(4);
    expect(workerCount(config('auto'))).toBe(availableParallelism());
  });

  it('refuses 0, fractions and words, naming the field', () => {
    for (const bad of [0, 1.5, 'many', 1000]) expect(() => config(bad), String(bad)).toThrow(/listen\.workers: /);
  });

  it('more than one worker without Redis is refused', () => {
    expect(() => parseConfig(stringify({
      listen: { workers: 2 }, session: { secrets: [testSecret('cookie')] },
      signing: { keys: [{ id: 'k1', secret: testSecret('signing') }] },
      mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
    }), 'test.yaml', {})).toThrow(/listen\.workers: more than one worker needs store\.redis/);
  });
});

describe('restartDelayMs', () => {
  it('starts at 0.1 s and doubles with each death in the window, up to 5 s', () => {
    expect([1, 2, 3, 4, 6, 7, 50].map(restartDelayMs)).toEqual([100, 200, 400, 800, 3200, 5000, 5000]);
  });
});

describe('worker ports', () => {
  it('round-trip through the environment, with and without an admin port', () => {
    expect(workerPorts(encodeWorkerPorts(8080, undefined))).toEqual({ port: 8080, adminPort: undefined });
    expect(workerPorts(encodeWorkerPorts(8080, 9090))).toEqual({ port: 8080, adminPort: 9090 });
    expect(() => workerPorts({})).toThrow(/started by the primary only/);
  });
});

/**
 * The perf reader behind `npm run bench:profile -- --perf`: samples, their weights and
 * frames read from `perf script` text, and the per-request figures made of them.
 */
import { describe, expect, it } from 'vitest';
import { parsePerfScript, perRequest, selfGroupOf } from '../../../bench/lib/perf-stacks.ts';

// Shaped as `perf script -F pid,period,ip,sym,dso` prints it (a header line, tab-indented frames, a blank line).
const SCRIPT = [
  '12448     500250 ',
  "\t    7f101c0d2525 JS:*'filterResponseHeaders file:///w/src/proxy/headers.ts:181:38 (/tmp/perf-12448.map)",
  "\t    7f101c17f3c9 JS:*'onResponseStart file:///w/src/proxy/upstream.ts:141:18 (/tmp/perf-12448.map)",
  '\t          a54f4f v8::internal::(anonymous namespace)::Invoke (/w/node_modules/node/bin/node)',
  '',
  '12448     1500750 ',
  '\tffffffff8a2b1c3d tcp_sendmsg_locked ([kernel.kallsyms])',
  "\t    7f101c17f3c9 JS:*'onResponseStart file:///w/src/proxy/upstream.ts:141:18 (/tmp/perf-12448.map)",
  '',
  '777     1000000 ',
  '\t         163221c Builtins_LoadIC (/w/node_modules/node/bin/node)',
  '',
].join('\n');

describe('parsePerfScript', () => {
  it('reads each sample\'s pid, period and frames, leaf first', () => {
    const samples = parsePerfScript(SCRIPT);
    expect(samples.map((s) => [s.pid, s.periodNs, s.frames.length])).toEqual([[12448, 500250, 3], [12448, 1500750, 2], [777, 1000000, 1]]);
    expect(samples[0]!.frames[0]).toBe("JS:*'filterResponseHeaders file:///w/src/proxy/headers.ts:181:38 (/tmp/perf-12448.map)");
    expect(samples[1]!.frames[0]).toBe('tcp_sendmsg_locked ([kernel.kallsyms])');
  });

  it('groups a leaf by where it ran', () => {
    expect(selfGroupOf('tcp_sendmsg_locked ([kernel.kallsyms])')).toBe('kernel (system calls, TCP)');
    expect(selfGroupOf("JS:*'matchMount file:///w/src/path/match-mount.ts:21:27 (/tmp/perf-1.map)")).toBe('the gateway (src/)');
    expect(selfGroupOf("JS:*'writeH1 /w/node_modules/undici/lib/dispatcher/client-h1.js:1227:18 (/tmp/perf-1.map)")).toBe('undici');
    expect(selfGroupOf('Builtins_LoadIC (/w/node_modules/node/bin/node)')).toBe('V8 builtins (property loads, calls, strings)');
  });
});

describe('perRequest', () => {
  it('divides CPU time by requests, self by leaf group, inclusive by any frame on the stack', () => {
    const samples = parsePerfScript(SCRIPT).filter((s) => s.pid === 12448);
    const figures = perRequest(samples, 1000, [['head', /'onResponseStart /], ['filter', /'filterResponseHeaders /], ['none', /nothing/]]);
    // 2,001,000 ns over 1000 requests
    expect(figures.totalUs).toBeCloseTo(2.001, 6);
    expect(figures.self.get('the gateway (src/)')).toBeCloseTo(0.50025, 6);
    expect(figures.self.get('kernel (system calls, TCP)')).toBeCloseTo(1.50075, 6);
    expect(figures.inclusive.get('head')).toBeCloseTo(2.001, 6);
    expect(figures.inclusive.get('filter')).toBeCloseTo(0.50025, 6);
    expect(figures.inclusive.get('none')).toBe(0);
  });
});

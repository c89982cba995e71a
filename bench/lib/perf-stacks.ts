/**
 * Reading `perf script` output (Linux perf, processes run with `node --perf-basic-prof`)
 * into CPU time per request: self time by group, and inclusive time of named frames
 * (the request path's steps, undici's header checks...). perf samples the kernel and
 * V8's builtins too, which `--cpu-prof` leaves out or folds into its callers; on a shared
 * core its figures were the truer ones (the issue that brought undici in says so).
 */

/** One sample: its weight (the period, ns of CPU for cpu-clock) and its frames, leaf first. */
export interface Sample {
  pid: number;
  periodNs: number;
  frames: string[];
}

/**
 * Parses `perf script -F pid,period,ip,sym,dso` output: a header line `PID PERIOD` per
 * sample, then one tab-indented line per frame, `ADDRESS SYMBOL (DSO)`, then a blank line.
 * A frame is kept as `SYMBOL (DSO)`: the DSO tells the kernel, libc and the node binary apart.
 */
export function parsePerfScript(text: string): Sample[] {
  const samples: Sample[] = [];
  let current: Sample | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      current = null;
      continue;
    }
    if (line.startsWith('\t')) {
      const m = /^\s*[0-9a-f]+\s+(.*)$/.exec(line);
      if (current !== null && m) current.frames.push(m[1]!.trim());
      continue;
    }
    const head = /^\s*(\d+)\s+(\d+)\s*$/.exec(line);
    if (head) {
      current = { pid: Number(head[1]), periodNs: Number(head[2]), frames: [] };
      samples.push(current);
    }
  }
  return samples;
}

/** Where a leaf frame runs, coarsely; the first matching group wins. */
export const SELF_GROUPS: ReadonlyArray<[string, RegExp]> = [
  ['kernel (system calls, TCP)', /\(\[kernel/],
  ['the gateway (src/)', /JS:.*\/src\//],
  ['undici', /JS:.*node_modules\/undici\//],
  ['llhttp (undici\'s parser, wasm)', /JS:wasm/],
  ['ioredis', /JS:.*node_modules\/(ioredis|redis-parser|@ioredis)\//],
  ['prom-client and pino', /JS:.*node_modules\/(prom-client|pino)/],
  ['node core JS (http, net, streams, timers)', /JS:.*node:/],
  ['regular expressions', /RegExp\.</],
  ['other JS', /JS:/],
  ['V8 builtins (property loads, calls, strings)', /^Builtins_/],
  ['garbage collector', /Scaveng|MarkCompact|Sweep|Heap::|Evacuat|Marking/],
  ['node and V8 C++', /\(.*\/node\)$|\(.*bin\/node\)$/],
  ['libc (malloc, memcpy)', /libc\.so/],
];

export function selfGroupOf(frame: string): string {
  return SELF_GROUPS.find(([, re]) => re.test(frame))?.[0] ?? 'everything else';
}

/** µs of CPU per request: self time by group, and inclusive time of frames matching each pattern. */
export function perRequest(samples: readonly Sample[], requests: number, inclusive: ReadonlyArray<[string, RegExp]>) {
  const us = (ns: number) => ns / 1000 / requests;
  let total = 0;
  const self = new Map<string, number>();
  const leaves = new Map<string, number>();
  const incl = new Map<string, number>(inclusive.map(([name]) => [name, 0]));
  for (const s of samples) {
    total += s.periodNs;
    const group = s.frames.length > 0 ? selfGroupOf(s.frames[0]!) : 'everything else';
    self.set(group, (self.get(group) ?? 0) + s.periodNs);
    // JIT frames name their process's map file (/tmp/perf-PID.map): dropped, so rows compare.
    const leaf = (s.frames[0] ?? '(no frame)').replace(/ \(\/tmp\/perf-\d+\.map\)$/, '');
    leaves.set(leaf, (leaves.get(leaf) ?? 0) + s.periodNs);
    for (const [name, re] of inclusive) {
      if (s.frames.some((f) => re.test(f))) incl.set(name, incl.get(name)! + s.periodNs);
    }
  }
  return {
    totalUs: us(total),
    self: new Map([...self].map(([k, v]) => [k, us(v)])),
    inclusive: new Map([...incl].map(([k, v]) => [k, us(v)])),
    /** Self time per leaf frame (symbol and DSO). */
    leaves: new Map([...leaves].map(([k, v]) => [k, us(v)])),
  };
}

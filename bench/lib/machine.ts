/**
 * This machine is shared: wait for it to be idle before a measurement, and tell
 * afterwards whether anything else used CPU during it (then the harness reruns it).
 *
 * Foreign CPU is counted per process (/proc/PID/stat of every process, including the
 * time of children it has reaped), leaving out our own processes and kernel threads
 * (which carry our loopback networking); /proc/stat totals cannot separate the two,
 * because the kernel accounts loopback packet work partly to the sending task and
 * partly as softirq time.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuDelta, foreignCpuSeconds, readCpuTimes, snapshotProcesses } from './proc.ts';

export interface IdleOptions {
  /** Busy cores (whole machine, not counting our idle servers' negligible use) that count as idle. */
  maxBusyCores: number;
  windowMs: number;
  /** Consecutive idle windows needed. */
  windows: number;
  maxWaitMs: number;
}

export interface IdleResult {
  idle: boolean;
  waitedMs: number;
  /** Busy cores in the last window. */
  busyCores: number;
  load1: number;
}

export function loadAverage1(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

export async function waitForIdle(o: IdleOptions, onWait?: (busyCores: number) => void): Promise<IdleResult> {
  const start = Date.now();
  let good = 0;
  let busyCores = NaN;
  let reported = false;
  while (true) {
    const a = readCpuTimes();
    await sleep(o.windowMs);
    const d = cpuDelta(a, readCpuTimes());
    busyCores = d.userSystemCores + d.irqCores + d.stealFraction * (Object.keys(d.busy).length - 1);
    if (busyCores <= o.maxBusyCores) {
      if (++good >= o.windows) return { idle: true, waitedMs: Date.now() - start, busyCores, load1: loadAverage1() };
    } else {
      good = 0;
      if (!reported && Date.now() - start > 2000) {
        reported = true;
        onWait?.(busyCores);
      }
    }
    if (Date.now() - start > o.maxWaitMs) return { idle: false, waitedMs: Date.now() - start, busyCores, load1: loadAverage1() };
  }
}

export interface Disturbance {
  seconds: number;
  /** Cores' worth of CPU used by processes that are not ours. */
  foreignCores: number;
  /** The biggest foreign users: [process name, CPU seconds]. */
  foreignTop: Array<[string, number]>;
  /** Interrupt time, cores' worth. */
  irqCores: number;
  stealFraction: number;
  /** Busy fraction per CPU ("cpu0", "cpu1", and "cpu" for all). */
  busy: Record<string, number>;
}

/** Starts accounting CPU; call the returned function when the measurement ends. */
export function startCpuWindow(ourPids: Iterable<number>): () => Disturbance {
  const ours = new Set([process.pid, ...ourPids]);
  const t0 = readCpuTimes();
  const s0 = snapshotProcesses();
  const w0 = performance.now();
  return () => {
    const s1 = snapshotProcesses();
    const d = cpuDelta(t0, readCpuTimes());
    const wall = (performance.now() - w0) / 1000;
    const f = foreignCpuSeconds(s0, s1, ours);
    return {
      seconds: wall,
      foreignCores: f.seconds / wall,
      foreignTop: f.top,
      irqCores: d.irqCores,
      stealFraction: d.stealFraction,
      busy: d.busy,
    };
  };
}

/**
 * One measurement = one wrk run against a running system under test, on an idle
 * machine, with the SUT's RSS sampled throughout and the run repeated when other
 * processes used CPU during it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { processTree, schedStat, treeRssBytes, type Managed } from './proc.ts';
import { startCpuWindow, waitForIdle, type Disturbance, type IdleOptions } from './machine.ts';
import { runWrk, totalErrors, type WrkResult } from './wrk.ts';
import { backendStats, statsDelta, type Sut } from './systems.ts';
import type { BackendStats } from '../backend.ts';

export interface MeasureSettings {
  idle: IdleOptions;
  /** Foreign CPU (cores) above which a measurement counts as disturbed. */
  maxForeignCores: number;
  /** Share of the SUT's core that others may use before the measurement counts as disturbed. */
  maxSutCoreForeign: number;
  maxSteal: number;
  maxReruns: number;
  /**
   * Shared, decreasing: how much longer (ms) the whole benchmark may spend waiting for
   * an idle machine and repeating disturbed measurements. Once spent, measurements run
   * at once and are flagged when disturbed, so a busy machine cannot stretch a run forever.
   */
  patience: { remainingMs: number };
  loadCpu: string;
  sutCpu: string;
  log(message: string): void;
}

export interface Measurement {
  connections: number;
  rps: number;
  requests: number;
  latencyMs: WrkResult['latencyMs'];
  errors: WrkResult['errors'];
  /** RSS of the SUT's process tree while loaded: max and median of the samples. */
  rssMaxBytes: number;
  rssMedianBytes: number;
  disturbance: Disturbance;
  /** CPU time the SUT's process tree used (all threads), in cores. */
  sutCpuCores: number;
  /** SUT CPU time per request, µs: robust to contention, unlike req/s. */
  sutCpuUsPerRequest: number;
  /** Share of the measurement the SUT's main thread was runnable but waiting for a CPU (its own GC threads count too). */
  sutWait: number;
  /** Share of the SUT's core used by anything but the SUT's process tree (others, interrupts). */
  sutCoreForeign: number;
  idleWaitMs: number;
  startedIdle: boolean;
  /** How many earlier attempts were thrown away as disturbed. */
  reruns: number;
  disturbed: boolean;
  /** Null when the backend's counters match the row; else what was wrong. */
  invalid: string | null;
  backend: BackendStats;
}

export class RssSampler {
  private samples: number[] = [];
  private timer: NodeJS.Timeout;
  private readonly pids: number[];
  constructor(pid: number, intervalMs: number) {
    this.pids = processTree(pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }
  private sample(): void {
    const rss = treeRssBytes(this.pids[0]!, this.pids);
    if (rss > 0) this.samples.push(rss);
  }
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.samples;
  }
}

export function ourPids(processes: Managed[]): number[] {
  return processes.filter((m) => !m.exited()).flatMap((m) => processTree(m.pid));
}

/** `others` = processes of ours that run during the measurement besides the SUT (backend, Redis). */
export async function measure(sut: Sut, connections: number, durationSeconds: number, others: Managed[], s: MeasureSettings): Promise<Measurement> {
  let best: Measurement | null = null;
  for (let attempt = 0; attempt <= s.maxReruns; attempt++) {
    let idle = { idle: false, waitedMs: 0, busyCores: NaN };
    if (s.patience.remainingMs > 0) {
      idle = await waitForIdle({ ...s.idle, maxWaitMs: Math.min(s.idle.maxWaitMs, s.patience.remainingMs) },
        (busy) => s.log(`    waiting for an idle machine (${busy.toFixed(2)} cores busy)...`));
      // the first windows are the normal check; only the waiting beyond them is spent patience
      s.patience.remainingMs -= Math.max(0, idle.waitedMs - s.idle.windowMs * s.idle.windows);
      if (!idle.idle) s.log(`    machine still busy after ${(idle.waitedMs / 1000).toFixed(0)} s (${idle.busyCores.toFixed(2)} cores); measuring anyway`);
    }
    const attemptStart = performance.now();
    const before = await backendStats(sut.statsPort);
    const sampler = new RssSampler(sut.main.pid, 200);
    const sutPids = processTree(sut.main.pid);
    const sched0 = schedStat(sutPids);
    const wall0 = performance.now();
    const end = startCpuWindow(ourPids([...sut.processes, ...others]));
    const r = await runWrk({
      url: `http://127.0.0.1:${sut.port}${sut.path}`,
      connections,
      durationSeconds,
      cpu: s.loadCpu,
      script: sut.script,
      headers: sut.headers,
      env: sut.env,
    });
    const disturbance = end();
    const sched1 = schedStat(sutPids);
    const wallNs = (performance.now() - wall0) * 1e6;
    const sutCpuNs = sched1.execNs - sched0.execNs;
    const sutWait = (sched1.mainWaitNs - sched0.mainWaitNs) / wallNs;
    const rss = sampler.stop().sort((a, b) => a - b);
    await sleep(50); // let the last in-flight requests reach the backend's counters
    const delta = statsDelta(before, await backendStats(sut.statsPort));
    let invalid = sut.check(delta, r.requests);
    if (!invalid && totalErrors(r) > 0) invalid = `wrk errors: ${JSON.stringify(r.errors)}`;
    const sutCoreForeign = Math.max(0, (disturbance.busy[`cpu${s.sutCpu}`] ?? 0) - sutCpuNs / wallNs);
    const disturbed = disturbance.foreignCores > s.maxForeignCores || disturbance.stealFraction > s.maxSteal || sutCoreForeign > s.maxSutCoreForeign;
    const m: Measurement = {
      connections,
      rps: r.rps,
      requests: r.requests,
      latencyMs: r.latencyMs,
      errors: r.errors,
      rssMaxBytes: rss[rss.length - 1] ?? NaN,
      rssMedianBytes: rss[rss.length >> 1] ?? NaN,
      disturbance,
      sutCpuCores: sutCpuNs / wallNs,
      sutCpuUsPerRequest: sutCpuNs / 1000 / Math.max(1, r.requests),
      sutWait,
      sutCoreForeign,
      idleWaitMs: idle.waitedMs,
      startedIdle: idle.idle,
      reruns: attempt,
      disturbed,
      invalid,
      backend: delta,
    };
    const score = (x: Measurement) => Math.max(x.sutCoreForeign / s.maxSutCoreForeign, x.disturbance.foreignCores / s.maxForeignCores);
    if (!best || score(m) < score(best)) best = { ...m };
    best.reruns = attempt;
    if (!disturbed) return m;
    const again = attempt < s.maxReruns && s.patience.remainingMs > 0;
    const who = disturbance.foreignTop.map(([n]) => n).join(', ');
    s.log(`    disturbed: other processes used ${disturbance.foreignCores.toFixed(2)} cores, ${(sutCoreForeign * 100).toFixed(0)}% of the SUT's core` +
      (disturbance.stealFraction > s.maxSteal ? `, steal ${(disturbance.stealFraction * 100).toFixed(1)}%` : '') +
      ` (mostly ${who || '?'})${again ? '; rerunning' : s.patience.remainingMs > 0 ? '; keeping the least disturbed attempt' : '; out of patience, keeping the least disturbed attempt'}`);
    if (!again) break;
    s.patience.remainingMs -= performance.now() - attemptStart;
  }
  return best!;
}

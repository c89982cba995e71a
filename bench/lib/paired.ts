/**
 * Paired measurement: two systems loaded at once, both pinned to the same SUT core, each
 * by its own wrk, and the CPU time each used per request compared. Whatever the shared
 * machine does meanwhile (other users' jobs, frequency changes) hits both alike, so the
 * ratio holds still where separate runs swing. Used by `npm run bench` for every ratio
 * column against the bare proxy, and by bench/ab.ts to compare two builds.
 */
import { cpuSeconds, processTree } from './proc.ts';
import { median } from './stats.ts';
import { runWrk, type WrkOptions } from './wrk.ts';

export interface PairedTarget {
  /** Root pids: their process trees' CPU is counted. */
  pids: number[];
  port: number;
  path: string;
  headers: string[];
  script?: string | undefined;
  env?: Record<string, string> | undefined;
}

export interface PairedWindow {
  aUs: number;
  bUs: number;
  aRps: number;
  bRps: number;
  /** a's CPU per request over b's. */
  ratio: number;
}

const treeOf = (t: PairedTarget) => t.pids.flatMap((p) => processTree(p));

function wrkFor(t: PairedTarget, connections: number, seconds: number, cpu: string): WrkOptions {
  return { url: `http://127.0.0.1:${t.port}${t.path}`, connections, durationSeconds: seconds, cpu, headers: t.headers, script: t.script, env: t.env };
}

/** One window with both loaded at once. Throws when either answered anything but 2xx. */
export async function pairedWindow(a: PairedTarget, b: PairedTarget, seconds: number, connections: number, loadCpu: string): Promise<PairedWindow> {
  const aPids = treeOf(a);
  const bPids = treeOf(b);
  const aBefore = cpuSeconds(aPids);
  const bBefore = cpuSeconds(bPids);
  const [ra, rb] = await Promise.all([runWrk(wrkFor(a, connections, seconds, loadCpu)), runWrk(wrkFor(b, connections, seconds, loadCpu))]);
  const aCpu = cpuSeconds(aPids) - aBefore;
  const bCpu = cpuSeconds(bPids) - bBefore;
  if (ra.errors.status > 0 || rb.errors.status > 0) throw new Error(`non-2xx answers in a paired window: ${ra.errors.status} and ${rb.errors.status}`);
  const aUs = (aCpu * 1e6) / ra.requests;
  const bUs = (bCpu * 1e6) / rb.requests;
  return { aUs, bUs, aRps: ra.rps, bRps: rb.rps, ratio: aUs / bUs };
}

export interface PairedResult {
  /** Median over windows of a's CPU per request over b's. */
  ratio: number;
  min: number;
  max: number;
  aUs: number;
  bUs: number;
  windows: PairedWindow[];
}

export async function pairedCpuRatio(a: PairedTarget, b: PairedTarget, rounds: number, seconds: number, connections: number, loadCpu: string): Promise<PairedResult> {
  const windows: PairedWindow[] = [];
  for (let i = 0; i < rounds; i++) windows.push(await pairedWindow(a, b, seconds, connections, loadCpu));
  const ratios = windows.map((w) => w.ratio);
  return { ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), aUs: median(windows.map((w) => w.aUs)), bUs: median(windows.map((w) => w.bUs)), windows };
}

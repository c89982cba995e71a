/**
 * Runs wrk (pinned to a core) and parses its result. Every script we pass includes
 * bench/wrk/report.lua, whose done() prints one `BENCH_JSON {...}` line; the
 * "Requests/sec:" line of wrk's own summary is the fallback.
 */
import { fileURLToPath } from 'node:url';
import { runToCompletion } from './proc.ts';

export const WRK_DIR = fileURLToPath(new URL('../wrk/', import.meta.url));

export interface WrkResult {
  requests: number;
  durationSeconds: number;
  rps: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Latencies in milliseconds. */
  latencyMs: { mean: number; p50: number; p75: number; p90: number; p99: number; p999: number; max: number };
  raw: string;
}

export interface WrkOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  cpu?: string;
  /** Path of a Lua script; default bench/wrk/report.lua. */
  script?: string;
  headers?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutSeconds?: number;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t', '1', // one thread: wrk gets one core
    '-c', String(o.connections),
    '-d', `${o.durationSeconds}s`,
    '--timeout', `${o.timeoutSeconds ?? 5}s`,
    '-s', o.script ?? `${WRK_DIR}report.lua`,
  ];
  for (const h of o.headers ?? []) args.push('-H', h);
  args.push(o.url);
  const { code, output, timedOut } = await runToCompletion(
    'wrk', 'wrk', args, (o.durationSeconds + 20) * 1000, { cpu: o.cpu, env: { ...process.env, ...o.env } },
  );
  if (timedOut) throw new Error(`wrk did not finish in time: ${output.slice(-500)}`);
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${output.slice(-500)}`);
  return parseWrkOutput(output);
}

export function parseWrkOutput(output: string): WrkResult {
  const line = output.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (line) {
    const j = JSON.parse(line.slice('BENCH_JSON '.length)) as {
      requests: number; duration_us: number;
      errors: WrkResult['errors'];
      latency_us: { mean: number; max: number; p50: number; p75: number; p90: number; p99: number; p999: number };
    };
    const ms = (us: number) => us / 1000;
    const durationSeconds = j.duration_us / 1e6;
    return {
      requests: j.requests,
      durationSeconds,
      rps: j.requests / durationSeconds,
      errors: j.errors,
      latencyMs: {
        mean: ms(j.latency_us.mean), p50: ms(j.latency_us.p50), p75: ms(j.latency_us.p75), p90: ms(j.latency_us.p90),
        p99: ms(j.latency_us.p99), p999: ms(j.latency_us.p999), max: ms(j.latency_us.max),
      },
      raw: output,
    };
  }
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!rps) throw new Error(`cannot parse wrk output: ${output.slice(-500)}`);
  const lat = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(output);
    if (!m) return NaN;
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as const)[m[2] as 'us' | 'ms' | 's'];
  };
  const total = /(\d+) requests in ([\d.]+)(s|m)/.exec(output);
  return {
    requests: total ? Number(total[1]) : NaN,
    durationSeconds: total ? Number(total[2]) * (total[3] === 'm' ? 60 : 1) : NaN,
    rps: Number(rps[1]),
    errors: { connect: 0, read: 0, write: 0, status: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0), timeout: 0 },
    latencyMs: { mean: NaN, p50: lat('50'), p75: lat('75'), p90: lat('90'), p99: lat('99'), p999: NaN, max: NaN },
    raw: output,
  };
}

export function totalErrors(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}

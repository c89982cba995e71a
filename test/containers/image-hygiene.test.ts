/**
 * What the built images carry, measured rather than read from the Dockerfile: a non-root
 * user that cannot rewrite the code, no secret or build-time CA certificate in any layer,
 * the config or the history, and in the examples image only what the example runs.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { SECRET_NAME } from '../unit/deploy/rules.ts';
import { docker, ROOT, run, say } from './exec.ts';
import { EXAMPLES_IMAGE, GATEWAY_IMAGE } from './project-images.ts';

const { project } = inject('containers');
const work = mkdtempSync(join(tmpdir(), 'sgw-image-hygiene-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Paths no layer may hold: build-time CA files, env and npm credential files, secret files. */
const FORBIDDEN_PATH = /(^|\/)(npm-ca|ca\.pem|\.env(\..*)?|\.npmrc|session_secret|signing_secret)$/;

/** Every file path in every layer of the image, from `docker save`. */
async function layerPaths(image: string): Promise<string[]> {
  const dir = mkdtempSync(join(work, 'layers-'));
  await run('sh', ['-c', `docker save ${image} | tar -x -C "${dir}"`], { timeoutMs: 300_000 });
  const layers = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('layer.tar'));
  const paths: string[] = [];
  for (const layer of layers) paths.push(...(await run('tar', ['-tf', join(dir, layer)], { quiet: true })).out.split('\n').filter(Boolean).map((p) => p.replace(/\/$/, '')));
  rmSync(dir, { recursive: true, force: true });
  say(`${image}: ${layers.length} layers, ${paths.length} paths`);
  return paths;
}

describe.each([GATEWAY_IMAGE, EXAMPLES_IMAGE])('image %s', (image) => {
  it('runs as the non-root user node, which cannot change the code it runs', async () => {
    const config = JSON.parse((await docker(['image', 'inspect', '--format', '{{json .Config}}', image], { quiet: true })).out);
    expect(config.User).toBe('node');
    const probe = await docker(['run', '--rm', '--entrypoint', 'sh', image, '-c', 'id -u; touch /app/src/planted 2>/dev/null && echo writable || echo read-only'], { quiet: true });
    expect(probe.out.trim().split('\n')).toEqual(['1000', 'read-only']);
  });

  it('has no secret in its config or history, and no build-time CA certificate or secret file in any layer', async () => {
    const config = JSON.parse((await docker(['image', 'inspect', '--format', '{{json .Config}}', image], { quiet: true })).out);
    const env: string[] = config.Env ?? [];
    expect(env.filter((e) => SECRET_NAME.test(e.split('=')[0]!))).toEqual([]);
    expect(Object.keys(config.Labels ?? {}).filter((k) => SECRET_NAME.test(k))).toEqual([]);
    const history = (await docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image], { quiet: true })).out;
    expect(history).not.toMatch(/BEGIN CERTIFICATE|npm-ca|NPM_CA_FROM|NODE_EXTRA_CA_CERTS/);
    expect(history.split('\n').filter((line) => /\b\w*(SECRET|PASSWORD|TOKEN)\w*=\S/.test(line))).toEqual([]);
    const paths = await layerPaths(image);
    expect(paths.filter((p) => FORBIDDEN_PATH.test(p))).toEqual([]);
    // The secrets directory exists (compose mounts the volume there) and is empty.
    expect(paths.filter((p) => p.startsWith('run/session-gateway/'))).toEqual(['run/session-gateway/secrets']);
  });
});

/** express and everything it pulls in, by the lockfile: top-level node_modules entries. */
function expressClosure(): Set<string> {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dependencies?: Record<string, string> }> };
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const dep of Object.keys(lock.packages[`node_modules/${name}`]?.dependencies ?? {})) visit(dep);
  };
  visit('express');
  return new Set([...seen].map((name) => name.split('/')[0]!));
}

it('the gateway image has production dependencies only; the examples image adds express and what express needs, nothing else', async () => {
  const list = async (image: string) => (await docker(['run', '--rm', '--entrypoint', 'ls', image, '/app/node_modules'], { quiet: true })).out.split(/\s+/).filter(Boolean);
  const gateway = await list(GATEWAY_IMAGE);
  const examples = await list(EXAMPLES_IMAGE);
  for (const dev of ['typescript', 'vitest', 'testcontainers', 'express-session', 'connect-redis', 'fast-check', 'jose', 'node', '@types']) {
    expect(gateway, `${GATEWAY_IMAGE} holds the devDependency ${dev}`).not.toContain(dev);
    expect(examples, `${EXAMPLES_IMAGE} holds the devDependency ${dev}`).not.toContain(dev);
  }
  expect(gateway).toContain('ioredis');
  expect(gateway).not.toContain('express');
  const closure = expressClosure();
  expect(examples.filter((name) => !gateway.includes(name) && !closure.has(name))).toEqual([]);
  expect(examples).toContain('express');
  for (const { name, bytes } of project.images) say(`${name}: ${(bytes / 1e6).toFixed(1)} MB`);
});

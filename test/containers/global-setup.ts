/**
 * The container suite's setup: a Docker engine (started here if none answers), the base
 * images (real or stand-ins), the project's images built from its Dockerfile, and the
 * compose implementations present. The teardown stops a dockerd this setup started.
 */
import type { TestProject } from 'vitest/node';
import { provideBaseImages, type BaseImage } from './base-images.ts';
import { composeVariants, type ComposeVariant } from './compose.ts';
import { ensureEngine } from './engine.ts';
import { say, seconds } from './exec.ts';
import { buildProjectImages, type ProjectImages } from './project-images.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    containers: { engine: string; baseImages: BaseImage[]; project: ProjectImages; compose: ComposeVariant[]; setupMs: number };
  }
}

export default async function setup(project: TestProject) {
  const started = Date.now();
  const engine = await ensureEngine();
  try {
    const baseImages = await provideBaseImages();
    const nodeImage = baseImages.find((b) => b.tag.startsWith('node:'))!.tag;
    const builtAt = Date.now();
    const projectImages = await buildProjectImages(nodeImage);
    const compose = await composeVariants();
    say(`compose: ${compose.map((c) => `${c.command.join(' ')} ${c.version}`).join(', ') || 'none found'}`);
    say(`setup took ${seconds(Date.now() - started)} (project images ${seconds(Date.now() - builtAt)})`);
    project.provide('containers', { engine: engine.version, baseImages, project: projectImages, compose, setupMs: Date.now() - started });
  } catch (error) {
    await engine.stop();
    throw error;
  }
  return async () => {
    say(`whole container suite: ${seconds(Date.now() - started)}`);
    await engine.stop();
  };
}

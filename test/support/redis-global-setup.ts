import type { TestProject } from 'vitest/node';
import { provideSharedRedis } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const redis = await provideSharedRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}

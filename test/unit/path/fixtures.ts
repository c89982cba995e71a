/**
 * Plain-object stand-ins for the path's steps: a parsed config's runtime (no I/O until a
 * request is sent), a PathState over an in-memory store, requests as plain objects.
 */
import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.ts';
import { createMetrics } from '../../../src/ops/metrics.ts';
import { buildPathState } from '../../../src/path/state.ts';
import { newContext, type PathState, type RequestContext } from '../../../src/path/context.ts';
import { buildRuntime } from '../../../src/runtime.ts';
import { MemorySessionStore } from '../../../src/session/memory-store.ts';

export const SIGNING_SECRET = 's'.repeat(32);

export function testConfig(mounts: object[] = [
  { name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:9', read: ['user'], write: ['user'] },
  { name: 'static', prefix: '/static', upstream: 'http://127.0.0.1:9', session: false, websocket: false },
]) {
  return parseConfig(stringify({
    session: { secrets: ['c'.repeat(32)] },
    store: { memory: { maxSessions: 100 } },
    signing: { keys: [{ id: 'k1', secret: SIGNING_SECRET }] },
    mounts,
  }), 'test', {});
}

export function testState(options: { now?: () => number; mounts?: object[] } = {}) {
  const config = testConfig(options.mounts);
  const logs: Array<Record<string, any>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const metrics = createMetrics({ defaultMetrics: false });
  const runtime = buildRuntime(config);
  const store = new MemorySessionStore(100);
  const state = buildPathState(config, runtime, { store, logger, metrics, now: options.now });
  return { config, runtime, state, store, logs, metrics, close: () => runtime.close() };
}

/** A request as the steps see it: url, method, headers and a socket address. */
export function plainRequest(url: string, headers: Record<string, string> = {}, method = 'GET'): IncomingMessage {
  return { url, method, headers: { host: 'gw.example', ...headers }, socket: { remoteAddress: '203.0.113.7' } } as unknown as IncomingMessage;
}

/** A context for a path the state's mounts serve. */
export function contextFor(state: PathState, path: string): RequestContext {
  return newContext(plainRequest(path), state, state.matchMount(path)!, path, performance.now());
}

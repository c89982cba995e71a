/**
 * The signal handling around a gateway, with a stand-in gateway and signal source: the
 * order of a drain, a forced second signal, a close that never ends, and reloads that
 * apply or are refused. The real process is tested in test/integration/ops-*.test.ts.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, type FrozenConfig } from '../../../src/config/load.ts';
import type { Gateway } from '../../../src/gateway.ts';
import { FORCE_EXIT_MARGIN_MS, handleSignals, reloadFromSource } from '../../../src/ops/lifecycle.ts';
import { createLogger } from '../../../src/ops/logger.ts';
import { testSecret } from '../../support/secrets.ts';

const config = (grace = '1s', level = 'info') => parseConfig(stringify({
  listen: { shutdownGrace: grace },
  session: { secrets: [testSecret('c')] },
  signing: { keys: [{ id: 'k1', secret: testSecret('s') }] },
  logging: { level },
  mounts: [{ name: 'shop', prefix: '/shop', upstream: 'http://127.0.0.1:3001' }],
}), 'test', {});

function setup(options: { close?: () => Promise<void>; load?: () => FrozenConfig } = {}) {
  let current = config();
  const calls: string[] = [];
  const gateway = {
    config: () => current,
    reload: (next: FrozenConfig) => { calls.push('reload'); current = next; },
    close: vi.fn(async (graceMs: number) => { calls.push(`close(${graceMs})`); await (options.close ?? (async () => {}))(); }),
  } as unknown as Gateway;
  const lines: Array<Record<string, any>> = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
  const signals = new EventEmitter();
  const handling = handleSignals({ gateway, logger, source: 'test.yaml', load: options.load ?? (() => config('2s')), signals: signals as any });
  return { gateway, calls, lines, logger, signals, handling };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('handleSignals', () => {
  it('SIGTERM closes with the current grace period and resolves 0', async () => {
    const { signals, handling, calls, lines } = setup();
    signals.emit('SIGTERM');
    expect(await handling.stopped).toBe(0);
    expect(calls).toEqual(['close(1000)']);
    expect(lines.map((l) => l.event)).toEqual(['shutdown', 'stopped']);
    expect(signals.listenerCount('SIGHUP') + signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT')).toBe(0);
  });

  it('uses the grace period of a reloaded config', async () => {
    const { signals, handling, calls } = setup();
    signals.emit('SIGHUP');
    signals.emit('SIGINT');
    expect(await handling.stopped).toBe(0);
    expect(calls).toEqual(['reload', 'close(2000)']);
  });

  it('a second signal during the drain resolves 1 at once', async () => {
    const { signals, handling, lines } = setup({ close: () => new Promise(() => {}) });
    signals.emit('SIGTERM');
    signals.emit('SIGINT');
    expect(await handling.stopped).toBe(1);
    expect(lines.at(-1)).toMatchObject({ event: 'shutdown_forced', signal: 'SIGINT' });
  });

  it('a close that outlasts grace + margin resolves 1', async () => {
    vi.useFakeTimers();
    const { signals, handling, lines } = setup({ close: () => new Promise(() => {}) });
    signals.emit('SIGTERM');
    let code: number | undefined;
    void handling.stopped.then((c) => (code = c));
    await vi.advanceTimersByTimeAsync(1000 + FORCE_EXIT_MARGIN_MS - 1);
    expect(code).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatchObject({ event: 'shutdown_stuck' });
  });

  it('SIGHUP during the drain is ignored', async () => {
    let finishClose = () => {};
    const { signals, handling, calls, lines } = setup({ close: () => new Promise<void>((r) => (finishClose = r)) });
    signals.emit('SIGTERM');
    signals.emit('SIGHUP');
    finishClose();
    expect(await handling.stopped).toBe(0);
    expect(calls).toEqual(['close(1000)']);
    expect(lines.map((l) => l.event)).toContain('reload_ignored');
  });

  it('dispose removes every handler', () => {
    const { signals, handling } = setup();
    handling.dispose();
    expect(signals.eventNames()).toEqual([]);
  });
});

describe('reloadFromSource', () => {
  it('applies a valid config, its log level, and logs what changed', () => {
    const { gateway, logger, lines } = setup();
    expect(reloadFromSource({ gateway, logger, source: 'test.yaml', load: () => config('1s', 'warn') })).toBe(true);
    expect(logger.level).toBe('warn');
    expect(gateway.config().logging.level).toBe('warn');
    expect(lines.at(-1)).toMatchObject({ event: 'reloaded', changed: [] }); // still written, at the old level
    logger.info('silenced now');
    expect(lines.at(-1)!.msg).not.toBe('silenced now');
  });

  it('refuses an invalid config, logs every problem, and keeps the old config', () => {
    const { gateway, logger, lines } = setup();
    const before = gateway.config();
    const load = () => { throw new ConfigError('test.yaml', [{ path: 'mounts[0].prefix', message: 'bad' }, { path: 'session.idleTimeout', message: 'zero' }]); };
    expect(reloadFromSource({ gateway, logger, source: 'test.yaml', load })).toBe(false);
    expect(gateway.config()).toBe(before);
    expect(lines.at(-1)).toMatchObject({ level: 50, event: 'reload_refused', problems: [{ path: 'mounts[0].prefix' }, { path: 'session.idleTimeout' }] });
  });

  it('refuses a config the gateway cannot build, and keeps the old one', () => {
    const { gateway, logger, lines } = setup();
    (gateway as any).reload = () => { throw new Error('bad private key'); };
    expect(reloadFromSource({ gateway, logger, source: 'test.yaml', load: () => config('3s') })).toBe(false);
    expect(gateway.config().listen.shutdownGrace).toBe(1000);
    expect(lines.at(-1)).toMatchObject({ event: 'reload_refused', problems: [{ message: 'bad private key' }] });
  });
});

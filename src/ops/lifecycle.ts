/**
 * The process lifecycle around a listening gateway: SIGHUP reloads the config file,
 * SIGTERM/SIGINT drain and stop. Kept apart from argument parsing (cli.ts) so that the
 * order of a shutdown is readable in one place:
 *   1. stop accepting; answer requests arriving on open connections with 503;
 *   2. let requests in flight finish, up to listen.shutdownGrace;
 *   3. cut whatever is left (WebSockets included), close upstream agents and Redis;
 *   4. resolve 0. A second signal, or a close that outlasts the grace period by
 *      FORCE_EXIT_MARGIN_MS, resolves 1 at once.
 */
import type { Logger } from 'pino';
import { ConfigError, type FrozenConfig } from '../config/load.ts';
import type { Gateway } from '../gateway.ts';
import { redactCredentials } from './redact.ts';
import { mountRoutes, summariseReload } from './reload.ts';

/** How long past the grace period a stuck close (e.g. a hung store) may take before we give up. */
export const FORCE_EXIT_MARGIN_MS = 5000;

export interface LifecycleOptions {
  gateway: Gateway;
  logger: Logger;
  /** Where the config came from, for log lines. */
  source: string;
  /** Reads and validates the config again (throws ConfigError with every problem). */
  load: () => FrozenConfig;
  /** The process to listen on for signals (tests may pass an EventEmitter). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
}

/**
 * Applies a new config for new requests; on any problem keeps the old one.
 * @returns whether the new config was applied
 * @example reloadFromSource({ gateway, logger, source: path, load: () => loadConfigFile(path) })
 */
export function reloadFromSource({ gateway, logger, source, load }: LifecycleOptions): boolean {
  let next: FrozenConfig;
  try {
    next = load();
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems : [{ path: '', message: redactCredentials(String(error)) }];
    logger.error({ event: 'reload_refused', config: source, problems }, 'new configuration refused; the old one keeps serving');
    return false;
  }
  const summary = summariseReload(gateway.config(), next);
  try {
    gateway.reload(next);
  } catch (error) {
    // buildRuntime can still fail on something checks.ts let through; the old state is untouched then.
    logger.error({ event: 'reload_refused', config: source, problems: [{ path: '', message: redactCredentials((error as Error).message) }] }, 'new configuration refused; the old one keeps serving');
    return false;
  }
  logger.info({ event: 'reloaded', config: source, mounts: mountRoutes(next), ...summary }, 'configuration reloaded; new requests use it');
  if (summary.needsRestart.length > 0) {
    logger.warn({ event: 'reload_needs_restart', settings: summary.needsRestart }, `changed settings that only a restart applies: ${summary.needsRestart.join(', ')}`);
  }
  // Last, so that the lines above are written even when the new level silences them.
  logger.level = next.logging.level;
  return true;
}

export interface SignalHandling {
  /** The process exit code once stopped: 0 after a clean drain, 1 otherwise. */
  readonly stopped: Promise<number>;
  /** Removes the handlers (when start-up fails before serving). */
  dispose(): void;
}

/**
 * Reloads on SIGHUP and drains on SIGTERM/SIGINT from now on. Install it before the
 * gateway listens: a SIGHUP with no handler would end the process.
 * @example const { stopped } = handleSignals({ gateway, logger, source, load }); await gateway.listen(); process.exitCode = await stopped;
 */
export function handleSignals(options: LifecycleOptions): SignalHandling {
  const { gateway, logger } = options;
  const signals = options.signals ?? process;
  let dispose = () => {};
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    dispose = () => {
      signals.off('SIGHUP', onHangUp);
      signals.off('SIGTERM', onTerm);
      signals.off('SIGINT', onInt);
    };
    const finish = (code: number) => {
      dispose();
      resolve(code);
    };
    const onHangUp = () => {
      if (stopping) return void logger.warn({ event: 'reload_ignored' }, 'SIGHUP during shutdown ignored');
      reloadFromSource(options);
    };
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ event: 'shutdown_forced', signal }, 'second signal: exiting without waiting for requests in flight');
        return finish(1);
      }
      stopping = true;
      const graceMs = gateway.config().listen.shutdownGrace;
      logger.info({ event: 'shutdown', signal, graceMs }, 'draining: no new connections; requests in flight may finish');
      const stuck = setTimeout(() => {
        logger.error({ event: 'shutdown_stuck', waitedMs: graceMs + FORCE_EXIT_MARGIN_MS }, 'shutdown did not finish; exiting anyway');
        finish(1);
      }, graceMs + FORCE_EXIT_MARGIN_MS);
      stuck.unref();
      gateway.close(graceMs).then(() => {
        clearTimeout(stuck);
        logger.info({ event: 'stopped' }, 'stopped');
        finish(0);
      }, (error: unknown) => {
        clearTimeout(stuck);
        logger.error({ event: 'shutdown_failed', err: (error as Error).message }, 'shutdown failed');
        finish(1);
      });
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    signals.on('SIGHUP', onHangUp);
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
  });
  return { stopped, dispose: () => dispose() };
}

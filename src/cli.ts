/**
 * The command line: start the gateway, check a config, or print a mount's derived key.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, type FrozenConfig } from './config/load.ts';
import { formatDuration } from './config/durations.ts';
import { loadKeyMaterial } from './config/key-material.ts';
import { createGateway } from './gateway.ts';
import { handleSignals } from './ops/lifecycle.ts';
import { createLogger } from './ops/logger.ts';
import { runPrimary, workerCount } from './ops/primary.ts';
import { mountRoutes, withoutCredentials } from './ops/reload.ts';
import { ensureSecretFiles, SecretFilesError } from './ops/secret-files.ts';
import { announceListening, clusterMetrics, isWorker, workerId, workerPorts, workerSignals } from './ops/worker-link.ts';
import { deriveMountKeyText } from '#protocol';
import { compileHostPattern } from './proxy/hosts.ts';
import { usesRedis } from './session/create-store.ts';

export const DEFAULT_CONFIG_PATH = 'config/gateway.yaml';

const HELP = `session-gateway: one shared session for every backend behind one domain.

Usage:
  session-gateway [--config FILE]            start the gateway
  session-gateway --check [--config FILE]    validate the config, print the mounts, exit
  session-gateway keys --mount NAME [--config FILE]
                                             print the derived key(s) a backend needs
  session-gateway init-secrets --dir DIR [--config FILE]
                                             write DIR/session_secret and DIR/signing_secret
                                             if missing (32 random bytes each), then check FILE
Options:
  -c, --config FILE   config file (default: ${DEFAULT_CONFIG_PATH}, or $SESSION_GATEWAY_CONFIG)
  -h, --help          this text

Signals (with listen.workers, send them to the primary: it relays them to every worker):
  SIGTERM, SIGINT     stop accepting, let requests in flight finish (listen.shutdownGrace), exit 0
  SIGHUP              reload the config file for new requests; an invalid one is refused and logged
Endpoints: /_gateway/healthz, /_gateway/readyz, /_gateway/metrics, /_gateway/jwks.json
  (with admin.listen, the first three are on the admin listener only)
Exit codes: 0 ok, 1 runtime failure (cannot listen, forced stop), 2 bad arguments or config
Docs: README.md, docs/OPERATIONS.md, docs/CONFIGURATION.md, docs/PROTOCOL.md, docs/ERRORS.md`;

const hostRank = (host: string | undefined) => (host ? compileHostPattern(host).rank : 0);

function describe(config: FrozenConfig): string {
  const lines = [
    `listen ${config.listen.host}:${config.listen.port}${workerCount(config) > 1 ? `, ${workerCount(config)} workers` : ''}`,
    ...(config.admin ? [`admin ${config.admin.listen.host}:${config.admin.listen.port} (health, readiness, metrics)`] : []),
    `store ${usesRedis(config) ? 'redis' : 'embedded (in-memory, first run only)'}`,
    `session idle ${formatDuration(config.session.idleTimeout)}, absolute ${formatDuration(config.session.absoluteLifetime)}, refresh ${formatDuration(config.session.refreshInterval)}`,
    `signing ${config.signing.algorithm}, keys ${config.signing.keys.map((k) => k.id).join(', ')}`,
    // The order the mount table tries them (proxy/mounts.ts): host first, then prefix.
    config.mounts.some((m) => m.host) ? 'mounts (most specific first: host, then longest prefix):' : 'mounts (longest prefix first):',
    ...[...config.mounts].sort((a, b) => hostRank(b.host) - hostRank(a.host) || b.prefix.length - a.prefix.length).map((m) =>
      `  ${`${m.host ?? ''}${m.prefix}`.padEnd(16)} → ${withoutCredentials(m.upstream)}  name=${m.name} strip=${m.stripPrefix} read=[${m.read.join(',')}] write=[${m.write.join(',')}] timeout=${formatDuration(m.timeout)}${m.session ? '' : ' session=off'}`),
  ];
  return lines.join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        mount: { type: 'string' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals[0] === 'init-secrets') {
    const status = initSecrets(values.dir);
    // With --config, go on to validate it with the files just written (like --check).
    if (status !== 0 || values.config === undefined) return status;
  }
  const path = values.config ?? process.env.SESSION_GATEWAY_CONFIG ?? DEFAULT_CONFIG_PATH;
  if (positionals[0] === 'keys') return printMountKeys(path, values.mount);
  let config: FrozenConfig;
  try {
    config = loadConfigFile(path);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  if (positionals.length > 0 && positionals[0] !== 'init-secrets') {
    console.error(`unknown command: ${positionals[0]}\n\n${HELP}`);
    return 2;
  }
  if (values.check || positionals[0] === 'init-secrets') {
    console.log(`${path}: valid\n${describe(config)}`);
    return 0;
  }
  return serve(path, config);
}

function initSecrets(dir: string | undefined): number {
  if (dir === undefined) {
    console.error('init-secrets: --dir DIR is required');
    return 2;
  }
  try {
    const { created, kept } = ensureSecretFiles(dir);
    for (const path of created) console.log(`init-secrets: generated ${path}`);
    for (const path of kept) console.log(`init-secrets: kept ${path}`);
    return 0;
  } catch (error) {
    if (!(error instanceof SecretFilesError)) throw error;
    console.error(error.message);
    return 1;
  }
}

/** `keys --mount NAME`: needs only the signing keys and the mount's name (config/key-material.ts). */
function printMountKeys(path: string, mountName: string | undefined): number {
  let material;
  try {
    material = loadKeyMaterial(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 2;
  }
  const names = material.mountNames.join(', ') || 'none';
  if (mountName === undefined || mountName === '') {
    console.error(`keys: --mount NAME is required, one of the mounts in ${path}: ${names}`);
    return 2;
  }
  if (!material.mountNames.includes(mountName)) {
    console.error(`keys: ${path} has no mount named "${mountName}" (mounts: ${names})`);
    return 2;
  }
  console.log(`SESSION_GATEWAY_MOUNT=${mountName}`);
  console.log(`SESSION_GATEWAY_KEYS=${material.keys.map((k) => `${k.id}:${deriveMountKeyText(k.secret, mountName)}`).join(',')}`);
  return 0;
}

async function serve(path: string, config: FrozenConfig): Promise<number> {
  const load = () => loadConfigFile(path);
  if (!isWorker() && workerCount(config) > 1) {
    return runPrimary({ config, logger: createLogger(config.logging.level), source: path, load });
  }
  const worker = isWorker();
  const logger = worker ? createLogger(config.logging.level).child({ worker: workerId() }) : createLogger(config.logging.level);
  const gateway = createGateway(config, { logger, ...(worker ? { metricsSource: clusterMetrics } : {}) });
  const signals = handleSignals({ gateway, logger, source: path, load, ...(worker ? { signals: workerSignals() } : {}) });
  try {
    const address = worker
      ? await gateway.listen(workerPorts().port, config.listen.host, { adminPort: workerPorts().adminPort, reusePort: true })
      : await gateway.listen();
    const adminPort = gateway.adminAddress()?.port;
    if (worker) {
      logger.info({ event: 'worker_listening', address: address.address, port: address.port, adminPort, pid: process.pid }, 'worker listening');
      announceListening(address, adminPort);
    } else {
      logger.info({ event: 'listening', address: address.address, port: address.port, adminPort, config: path, mounts: mountRoutes(config) }, 'listening');
    }
  } catch (error) {
    signals.dispose();
    logger.fatal({ event: 'listen_failed', host: config.listen.host, port: config.listen.port, err: (error as Error).message }, 'cannot listen');
    await gateway.close(0);
    return 1;
  }
  return signals.stopped;
}

/** Starts a real gateway on an ephemeral port from a config written as a plain object. */
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { pino } from 'pino';
import { inject } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.ts';
import { parseConfig } from '../../src/config/load.ts';

export const COOKIE_SECRET = 'test-cookie-secret-0123456789abcdef';
export const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';

export interface StartedGateway {
  url: string;
  gateway: Gateway;
  /** The Redis key prefix this gateway's sessions live under (unique per gateway). */
  prefix: string;
  logs: Array<Record<string, any>>;
  close(): Promise<void>;
}

export function baseConfig(mounts: object[], overrides: Record<string, any> = {}): Record<string, any> {
  const prefix = `sess:t${randomBytes(4).toString('hex')}:`;
  return {
    listen: { host: '127.0.0.1', port: 0 },
    session: { secrets: [COOKIE_SECRET], idleTimeout: '30m', absoluteLifetime: '12h', refreshInterval: '1m', ...overrides.session },
    store: overrides.store ?? { redis: { url: inject('redisUrl'), prefix } },
    signing: { keys: [{ id: 'k1', secret: SIGNING_SECRET }], ...overrides.signing },
    logging: { level: 'info' },
    mounts,
    ...Object.fromEntries(Object.entries(overrides).filter(([k]) => !['session', 'store', 'signing'].includes(k))),
  };
}

export async function startGateway(config: Record<string, any>, options: GatewayOptions = {}): Promise<StartedGateway> {
  const frozen = parseConfig(stringify(config), 'test config', {});
  const logs: Array<Record<string, any>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const gateway = createGateway(frozen, { logger, ...options });
  const address = await gateway.listen(0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${address.port}`,
    gateway,
    prefix: config.store?.redis?.prefix ?? '',
    logs,
    close: () => gateway.close(200),
  };
}

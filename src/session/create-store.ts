/** Chooses the store from config: Redis when configured, else the embedded one, loudly. */
import type { Logger } from 'pino';
import type { FrozenConfig } from '../config/load.ts';
import type { Metrics } from '../ops/metrics.ts';
import { MemorySessionStore } from './memory-store.ts';
import { connectionFromConfig } from './redis-client.ts';
import { RedisSessionStore } from './redis-store.ts';
import type { SessionStore } from './store.ts';

export function usesRedis(config: FrozenConfig): boolean {
  const redis = config.store.redis;
  return Boolean(redis && (redis.url || redis.sentinels || redis.cluster));
}

export function createStore(config: FrozenConfig, logger: Logger, metrics: Metrics): SessionStore {
  const redis = config.store.redis;
  if (!redis || !usesRedis(config)) {
    logger.warn({ event: 'embedded_store', maxSessions: config.store.memory.maxSessions },
      'NO REDIS CONFIGURED: using the embedded in-memory session store. Sessions are lost on restart and not shared between ' +
      'gateway processes. This is for a first run only; set store.redis.url (e.g. REDIS_URL) for anything else.');
    return new MemorySessionStore(config.store.memory.maxSessions);
  }
  let wasReady = false;
  return new RedisSessionStore({
    connection: connectionFromConfig(redis),
    prefix: redis.prefix,
    autoPipelining: redis.autoPipelining,
    onEvent: (event, detail) => {
      if (event === 'error') {
        metrics.redisErrors.inc();
        logger.warn({ event: 'redis_error', err: (detail as Error)?.message }, 'redis error');
      } else if (event === 'reconnecting') {
        metrics.redisReconnects.inc();
      } else if (event === 'ready') {
        if (wasReady) logger.info({ event: 'redis_ready' }, 'redis connection restored');
        wasReady = true;
      }
    },
  });
}

/**
 * session-gateway/backend: what a Node backend behind the gateway imports to read the
 * shared session and change it (docs/PROTOCOL.md). Framework-free core (reader.ts,
 * session.ts), with thin adapters for node:http, Express and Fetch API handlers.
 *
 * @example
 * import { createSessionReader, keysFromEnv, expressMiddleware } from 'session-gateway/backend';
 * app.use(expressMiddleware(createSessionReader({ ...keysFromEnv() })));
 */
export { createSessionReader, type HeaderSource, type SessionReader, type SessionReaderOptions } from './reader.ts';
export type { GatewaySession, MergePatch } from './session.ts';
export { keysFromEnv, KEYS_ENV, MOUNT_ENV, type MountKeyMaterial, type MountKeys } from './keys.ts';
export {
  DEFAULT_JWKS_COOLDOWN_SECONDS, DEFAULT_JWKS_MAX_AGE_SECONDS, DEFAULT_JWKS_TIMEOUT_MS, jwksKeys, remoteJwks, staticJwks,
  type JsonWebKeyEntry, type JsonWebKeySet, type RemoteJwksOptions, type VerifyingKeySource,
} from './jwks.ts';
export {
  JWKS_UNAVAILABLE, SessionGatewayConfigError, SessionGatewayError, type SessionGatewayErrorCode,
} from './errors.ts';
export { RESERVED_KEYS } from './changes.ts';
export { attachWriteBack } from './node-http.ts';
export { expressMiddleware, type ExpressMiddlewareOptions } from './express.ts';
export { withWriteBack } from './fetch.ts';
export { TOKEN_HEADER, WRITE_HEADER, type JsonObject, type WriteBack } from '../protocol/index.ts';

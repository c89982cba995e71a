/**
 * session-gateway as a library: build and run a gateway from a config in code.
 * Backends import `session-gateway/backend` instead.
 *
 * @example
 * import { loadConfigFile, createGateway } from 'session-gateway';
 * const gateway = createGateway(loadConfigFile('config/gateway.yaml'));
 * await gateway.listen();
 */
export { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
export { ConfigError, loadConfigFile, parseConfig, type FrozenConfig } from './config/load.ts';
export type { GatewayConfig, GatewayConfigInput, MountConfig } from './config/schema.ts';
export { GATEWAY_ERRORS, type GatewayErrorCode } from './errors.ts';
export type { SessionStore } from './session/store.ts';
export * as protocol from '#protocol';

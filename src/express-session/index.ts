/**
 * session-gateway/express-session: an express-session Store that shares the gateway's
 * sessions safely (docs/EXPRESS-SESSION.md).
 *
 * @example
 * import session from 'express-session';
 * import { loadConfigFile } from 'session-gateway';
 * import { GatewaySessionStore } from 'session-gateway/express-session';
 * const store = new GatewaySessionStore({ config: loadConfigFile('config/gateway.yaml') });
 * app.use(session(store.sessionOptions()));
 */
export { GatewaySessionStore, type GatewaySessionStoreOptions } from './store.ts';
export { type ExpressSessionOptions, type SessionOptionOverrides } from './options.ts';
export { EXPRESS_STORE_ERRORS, ExpressStoreError, isSessionGone, type ExpressStoreErrorCode } from './errors.ts';
export { applyDiff, diffSession, type SessionDiff } from './diff.ts';

/**
 * The helper's errors. A token that fails verification becomes a SessionGatewayError
 * whose `code` is exactly the protocol code (docs/PROTOCOL.md §7), so a backend can
 * branch on it; a bad configuration is a SessionGatewayConfigError listing every
 * problem at once, raised at start-up rather than on the first request.
 */
import { ProtocolError, type ProtocolErrorCode } from '../protocol/index.ts';

/**
 * Helper-only code: the JWKS document could not be fetched or held no usable key.
 * It is not a property of the token, so it answers 503 rather than 401.
 *
 * @example
 * if (error.code === JWKS_UNAVAILABLE) log.warn('gateway JWKS unreachable');
 */
export const JWKS_UNAVAILABLE = 'jwks_unavailable';

/**
 * Every code a SessionGatewayError can carry: the protocol's (docs/PROTOCOL.md §7) and JWKS_UNAVAILABLE.
 *
 * @example
 * const retryable = (code: SessionGatewayErrorCode) => code === 'stale' || code === 'jwks_unavailable';
 */
export type SessionGatewayErrorCode = ProtocolErrorCode | typeof JWKS_UNAVAILABLE;

/** Codes that describe the token itself: the request is not authenticated. */
const UNAUTHENTICATED: ReadonlySet<SessionGatewayErrorCode> = new Set([
  'missing', 'malformed', 'unsupported_version', 'unsupported_algorithm', 'unknown_key',
  'bad_signature', 'wrong_audience', 'stale', 'future',
]);

function statusFor(code: SessionGatewayErrorCode): number {
  if (UNAUTHENTICATED.has(code)) return 401;
  if (code === JWKS_UNAVAILABLE) return 503;
  // A write-back the backend itself built wrong (too_large, unsafe_key, reserved_key, too_deep):
  // a bug in the backend, never the client's fault.
  return 500;
}

/**
 * A request token that did not verify, or a session change the gateway would refuse.
 * `code` is the protocol code; `status` the HTTP status a backend should answer with.
 *
 * @example
 * try { session = reader.read(req.headers); }
 * catch (e) { if (e instanceof SessionGatewayError && e.code === 'stale') retry(); else throw e; }
 */
export class SessionGatewayError extends Error {
  readonly code: SessionGatewayErrorCode;
  readonly status: number;
  constructor(code: SessionGatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'SessionGatewayError';
    this.code = code;
    this.status = statusFor(code);
  }
}

/**
 * Internal: converts a ProtocolError from src/protocol into a SessionGatewayError with the same
 * code; anything else (a bug) is rethrown untouched.
 */
export function fromProtocolError(error: unknown): SessionGatewayError {
  if (error instanceof SessionGatewayError) return error;
  if (error instanceof ProtocolError) {
    const detail = error.message.startsWith(`${error.code}: `) ? error.message.slice(error.code.length + 2) : error.message;
    return new SessionGatewayError(error.code, detail, { cause: error });
  }
  throw error;
}

/**
 * The options given to createSessionReader or the environment read by keysFromEnv
 * are wrong. `problems` lists every one, each prefixed with where it was found.
 *
 * @example
 * try { createSessionReader({ mount: '', keys: {} }); }
 * catch (e) { if (e instanceof SessionGatewayConfigError) console.error(e.problems.join('\n')); }
 */
export class SessionGatewayConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid session-gateway helper configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'SessionGatewayConfigError';
    this.problems = problems;
  }
}

/**
 * Structured JSON logs through pino. Session values, cookies, tokens and secrets never
 * reach a log line: request logs carry only method, mount, status, duration and request
 * id, and the redact list below is a second line of defence for anything logged by accident.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'req.headers.cookie', 'req.headers.authorization', 'req.headers["x-session-gateway-token"]',
  'res.headers["set-cookie"]', 'headers.cookie', 'headers["set-cookie"]', 'cookie', 'token',
  'secret', 'secrets', 'session', 'data', '*.secret', '*.secrets', '*.session', '*.data', '*.token', '*.cookie',
  'password', '*.password',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'session-gateway' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}

export type { Logger };

/**
 * Every error the gateway answers a client with: a stable code, an HTTP status and a
 * short message. docs/ERRORS.md lists the same table (a test keeps them in sync).
 */
import type { ServerResponse } from 'node:http';

export const GATEWAY_ERRORS = {
  SGW_ERR_NO_MOUNT: { status: 404, message: 'No backend is mounted at this path.' },
  SGW_ERR_BAD_PATH: { status: 400, message: 'The request path is not acceptable (encoded slash, backslash or not absolute).' },
  SGW_ERR_UPSTREAM_UNREACHABLE: { status: 502, message: 'The backend for this path could not be reached.' },
  SGW_ERR_UPSTREAM_FAILED: { status: 502, message: 'The backend for this path failed before answering.' },
  SGW_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'The backend for this path did not answer in time.' },
  SGW_ERR_UPSTREAM_BUSY: { status: 503, message: 'The backend for this path has no free connection; try again shortly.' },
  SGW_ERR_REQUEST_NOT_FORWARDABLE: { status: 400, message: 'The request cannot be forwarded as sent (a header the gateway cannot pass on).' },
  SGW_ERR_STORE_UNAVAILABLE: { status: 503, message: 'The session store is unavailable; try again shortly.' },
  SGW_ERR_SESSION_CONTENDED: { status: 503, message: 'The session is being changed by many requests at once; try again.' },
  SGW_ERR_WEBSOCKET_DISABLED: { status: 403, message: 'WebSockets are not enabled for this path.' },
  SGW_ERR_SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down.' },
} as const;

export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly status: number;
  constructor(code: GatewayErrorCode, options?: { cause?: unknown }) {
    super(GATEWAY_ERRORS[code].message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = GATEWAY_ERRORS[code].status;
  }
}

/**
 * A complete HTTP/1.1 error answer as raw bytes, for the places that hold a socket and
 * no ServerResponse (refused upgrades, client errors).
 */
export function rawErrorResponse(status: number, reason: string): string {
  return `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

/** The raw answer for a gateway error code. */
export function rawGatewayError(code: GatewayErrorCode): string {
  const { status, message } = GATEWAY_ERRORS[code];
  return rawErrorResponse(status, message);
}

/** The one place an error becomes a response. */
export function sendError(res: ServerResponse, code: GatewayErrorCode, extraHeaders: Record<string, string | string[]> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, message } = GATEWAY_ERRORS[code];
  const body = JSON.stringify({ error: code, message });
  res.writeHead(status, { ...extraHeaders, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

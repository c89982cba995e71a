/**
 * Step 6: respond. The backend's status and filtered headers (proxy/headers.ts already
 * removed owned and hop-by-hop headers and any session cookie of its own), plus the
 * cookies this request set and the request id, then the body.
 */
import type { GatewayErrorCode } from '../errors.ts';
import type { ResponseHeaders } from '../proxy/headers.ts';
import type { RequestContext } from './context.ts';

/** The headers the client receives, in the backend's order, the gateway's own last. */
export function responseHeaders(ctx: RequestContext, head: ResponseHeaders): string[] {
  const { headers } = head;
  for (const cookie of ctx.cookies) headers.push('set-cookie', cookie);
  // The client can quote it when reporting a problem; it is in the gateway's and the backend's logs.
  if (!head.hasRequestId) headers.push('x-request-id', ctx.requestId);
  return headers;
}

/** Where a response head goes: a ServerResponse (forward.ts) or an upgrading socket (upgrade.ts). */
export interface ResponseSink {
  /** Holds the upstream body while step 5 runs. */
  pause(): void;
  writeHead(status: number, statusText: string, headers: string[]): void;
  /** The response must not go out: answer with `code` instead. */
  withhold(code: GatewayErrorCode): void;
}

export function respond(ctx: RequestContext, relay: ResponseSink, status: number, statusText: string, head: ResponseHeaders): void {
  relay.writeHead(status, statusText, responseHeaders(ctx, head));
}

/**
 * Step 4: forward. The cleaned, signed request goes to the mount's upstream; its answer
 * comes back through a ResponseRelay, which hands the response head to steps 5 and 6
 * (given by the path's index) and then streams the body to the client with backpressure
 * both ways. A client that goes away aborts the upstream exchange; an upstream failure
 * becomes the registered error for it, or a closed connection once the head is out.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { sendError, type GatewayErrorCode } from '../errors.ts';
import { filterResponseHeaders, withTraceContext, type ResponseHeaders } from '../proxy/headers.ts';
import type { Exchange, ExchangeHooks, FailureKind } from '../proxy/upstream.ts';
import { ZERO_LENGTH_MARKER } from '../proxy/wire.ts';
import type { StepSpan } from '../ops/tracing.ts';
import type { RequestContext } from './context.ts';
import { requestBody, type RequestBody } from './request-body.ts';
import type { ResponseSink } from './respond.ts';

export const FAILURE_CODES: Readonly<Record<FailureKind, GatewayErrorCode>> = {
  busy: 'SGW_ERR_UPSTREAM_BUSY',
  timeout: 'SGW_ERR_UPSTREAM_TIMEOUT',
  unreachable: 'SGW_ERR_UPSTREAM_UNREACHABLE',
  invalid: 'SGW_ERR_REQUEST_NOT_FORWARDABLE',
  failed: 'SGW_ERR_UPSTREAM_FAILED',
};

/** Methods undici sends `content-length: 0` for by itself; for any other the marker asks for it (proxy/wire.ts). */
const SENDS_ZERO_LENGTH = new Set(['PUT', 'POST', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);

/** Seconds a client is told to wait after SGW_ERR_UPSTREAM_BUSY. */
export const BUSY_RETRY_AFTER_SECONDS = 1;

/** What the index does with a response head: steps 5 (write-back) and 6 (respond). */
export type ResponseHeadHandler = (ctx: RequestContext, relay: ResponseSink, status: number, statusText: string, head: ResponseHeaders) => void;

/** Logs an upstream failure once, with the code it maps to. */
export function upstreamFailed(ctx: RequestContext, kind: FailureKind, error: Error): GatewayErrorCode {
  const code = FAILURE_CODES[kind];
  ctx.state.logger.warn({ event: 'upstream_error', mount: ctx.mount.name, code, err: (error as NodeJS.ErrnoException).code ?? error.message, requestId: ctx.requestId },
    'upstream request failed');
  return code;
}

export function sendUpstreamError(res: ServerResponse, code: GatewayErrorCode): void {
  sendError(res, code, code === 'SGW_ERR_UPSTREAM_BUSY' ? { 'retry-after': String(BUSY_RETRY_AFTER_SECONDS) } : {});
}

/** The response side of one forwarded request: the exchange's hooks, writing to `res`. */
export class ResponseRelay implements ExchangeHooks, ResponseSink {
  readonly ctx: RequestContext;
  readonly res: ServerResponse;
  readonly #onHead: ResponseHeadHandler;
  exchange: Exchange | null = null;
  /** The upstream exchange's span, when traced. */
  span: StepSpan | undefined;
  #headWritten = false;
  /** Body that arrived before the head went out (the exchange is paused meanwhile). */
  #early: Buffer[] = [];
  #ended = false;
  /** Made on the first backpressure stall only: most responses never stall. */
  #resume: (() => void) | undefined;

  constructor(ctx: RequestContext, res: ServerResponse, onHead: ResponseHeadHandler) {
    this.ctx = ctx;
    this.res = res;
    this.#onHead = onHead;
  }

  head(exchange: Exchange, status: number, rawHeaders: readonly Buffer[], statusText: string): void {
    const { ctx } = this;
    this.exchange = exchange;
    ctx.state.metrics.upstreamDurationOf(ctx.mount.name).observe((performance.now() - ctx.upstreamStartedAt) / 1000);
    // A mount on express-session (setsSessionCookie) may set the session cookie, when it signed it.
    const head = filterResponseHeaders(rawHeaders, ctx.state.cookie.name, ctx.mount.config.setsSessionCookie ? ctx.state.signedSessionCookie : undefined);
    if (head.droppedSessionCookies > 0) {
      ctx.state.logger.warn({ event: 'backend_session_cookie_dropped', mount: ctx.mount.name, count: head.droppedSessionCookies, requestId: ctx.requestId },
        'backend tried to set the gateway\'s session cookie; dropped');
    }
    this.#onHead(ctx, this, status, statusText, head);
  }

  /** Step 6 calls this: the head goes out, then whatever body is already here. */
  writeHead(status: number, statusText: string, headers: string[]): void {
    if (this.res.destroyed) return void this.exchange?.abort();
    this.#headWritten = true;
    this.res.writeHead(status, statusText, headers);
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) this.res.write(chunk);
    if (this.#ended) this.res.end();
    else this.exchange?.resume();
  }

  /** The response must not go out (step 5 failed): answer with `code` instead. */
  withhold(code: GatewayErrorCode, cookies: readonly string[] = []): void {
    this.exchange?.abort();
    sendError(this.res, code, cookies.length > 0 ? { 'set-cookie': [...cookies] } : {});
  }

  /** Holds the body while step 5 runs. */
  pause(): void {
    this.exchange?.pause();
  }

  data(chunk: Buffer): boolean {
    if (!this.#headWritten) {
      this.#early.push(chunk);
      return false;
    }
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.#resume ??= () => this.exchange?.resume());
    return false;
  }

  end(): void {
    this.span?.end();
    if (this.#headWritten) this.res.end();
    else this.#ended = true;
  }

  fail(kind: FailureKind, error: Error, afterHead: boolean): void {
    const code = upstreamFailed(this.ctx, kind, error);
    this.span?.end(error);
    // Once the head is out there is no second status to send: close, so the client sees a truncated answer, not a hang.
    if (afterHead || this.res.headersSent) this.res.destroy();
    else sendUpstreamError(this.res, code);
  }
}

function send(ctx: RequestContext, req: IncomingMessage, relay: ResponseRelay, body: RequestBody): void {
  const { res } = relay;
  if (res.destroyed) return;
  ctx.upstreamStartedAt = performance.now();
  const method = req.method ?? 'GET';
  let headers = ctx.upstreamHeaders;
  // The backend gets the upstream span's traceparent, in place of the client's.
  if (ctx.trace !== null) {
    const carrier: IncomingHttpHeaders = {};
    relay.span = ctx.trace.startUpstream(carrier, { 'sgw.mount': ctx.mount.name, 'http.request.method': method });
    headers = withTraceContext(headers, carrier);
  }
  if (body === null && req.headers['content-length'] === '0' && !SENDS_ZERO_LENGTH.has(method)) headers.push(ZERO_LENGTH_MARKER, '1');
  const exchange = ctx.mount.upstream.send({ method, path: ctx.url, headers, body, upgrade: null }, relay);
  relay.exchange = exchange;
  // The client went away before the answer was complete: the upstream exchange is given up.
  // ('close' fires once; `on` spares the wrapper `once` builds and removes per request.)
  res.on('close', () => {
    if (!res.writableFinished) {
      relay.span?.end('client went away');
      exchange.abort();
    }
  });
}

export function forward(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, onHead: ResponseHeadHandler): void {
  const relay = new ResponseRelay(ctx, res, onHead);
  const body = requestBody(req);
  if (!(body instanceof Promise)) return send(ctx, req, relay, body);
  body.then((b) => send(ctx, req, relay, b), () => res.destroy());
}

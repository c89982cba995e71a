/**
 * Step 4 for a WebSocket upgrade, and the relay that follows. The handshake goes through
 * the mount's upstream like any request (same pool, same bounds: the mount timeout cuts a
 * dripped or missing 101), its answer through the same steps 5 and 6 and the same
 * response-header filter, written raw on the client socket. After a 101 the two sockets
 * are piped both ways, and whichever side closes closes the other. A client that gives up
 * during the handshake aborts the upstream exchange.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rawGatewayError, type GatewayErrorCode } from '../errors.ts';
import { filterResponseHeaders, outgoingHeaders, type ResponseHeaders } from '../proxy/headers.ts';
import type { Exchange, ExchangeHooks, FailureKind } from '../proxy/upstream.ts';
import type { RequestContext } from './context.ts';
import { upstreamFailed, type ResponseHeadHandler } from './forward.ts';
import type { ResponseSink } from './respond.ts';

function upgradeTokenOf(raw: readonly Buffer[]): string {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toString('latin1').toLowerCase() === 'upgrade') return raw[i + 1]!.toString('latin1');
  return 'websocket';
}

/** A response head as raw bytes; the gateway ends the connection after any answer but a 101. */
export function rawHead(status: number, statusText: string, headers: readonly string[], connection: string): string {
  let head = `HTTP/1.1 ${status} ${statusText}\r\n${connection}`;
  for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** Bytes a client may send before the upstream's 101 (frames sent early); beyond, the client is cut. */
const MAX_EARLY_CLIENT_BYTES = 64 * 1024;

class UpgradeRelay implements ExchangeHooks, ResponseSink {
  readonly #ctx: RequestContext;
  readonly #client: Duplex;
  /** What the client sent after its upgrade request, held until the upstream accepts. */
  readonly #clientEarly: Buffer[];
  #clientEarlyBytes = 0;
  readonly #onClientData = (chunk: Buffer) => {
    this.#clientEarly.push(chunk);
    this.#clientEarlyBytes += chunk.length;
    if (this.#clientEarlyBytes > MAX_EARLY_CLIENT_BYTES) this.#client.destroy();
  };
  readonly #onHead: ResponseHeadHandler;
  exchange: Exchange | null = null;
  #upstream: Duplex | null = null;
  #upgradeToken = 'websocket';
  #headWritten = false;
  #early: Buffer[] = [];
  #ended = false;

  constructor(ctx: RequestContext, client: Duplex, clientHead: Buffer, onHead: ResponseHeadHandler) {
    this.#ctx = ctx;
    this.#client = client;
    this.#clientEarly = clientHead.length > 0 ? [clientHead] : [];
    this.#onHead = onHead;
  }

  #filtered(rawHeaders: readonly Buffer[]): ResponseHeaders {
    const ctx = this.#ctx;
    const head = filterResponseHeaders(rawHeaders, ctx.state.cookie.name);
    if (head.droppedSessionCookies > 0) {
      ctx.state.logger.warn({ event: 'backend_session_cookie_dropped', mount: ctx.mount.name, count: head.droppedSessionCookies, requestId: ctx.requestId },
        'backend tried to set the gateway\'s session cookie on an upgrade; dropped');
    }
    return head;
  }

  /** A refused upgrade (any answer but 101): relayed like a response, then the connection closes. */
  head(exchange: Exchange, status: number, rawHeaders: readonly Buffer[], statusText: string): void {
    this.exchange = exchange;
    this.#onHead(this.#ctx, this, status, statusText, this.#filtered(rawHeaders));
  }

  upgraded(status: number, rawHeaders: readonly Buffer[], socket: Duplex): void {
    this.#upstream = socket;
    socket.on('error', () => socket.destroy());
    this.#upgradeToken = upgradeTokenOf(rawHeaders);
    if (this.#client.destroyed) return void socket.destroy();
    this.#onHead(this.#ctx, this, status, 'Switching Protocols', this.#filtered(rawHeaders));
  }

  /**
   * Reads the client socket during the handshake: a paused socket would never notice the
   * client leaving (no read, no end, no close), and the upstream would be held until the
   * timeout. Bytes that come early are kept for the upstream (bounded).
   */
  listen(): void {
    this.#client.on('data', this.#onClientData);
    this.#client.once('end', () => this.#client.destroy());
  }

  pause(): void {
    this.exchange?.pause();
  }

  writeHead(status: number, statusText: string, headers: string[]): void {
    const client = this.#client;
    const upstream = this.#upstream;
    if (client.destroyed) return void (upstream ? upstream.destroy() : this.exchange?.abort());
    this.#headWritten = true;
    if (!upstream) {
      client.write(rawHead(status, statusText, headers, 'Connection: close\r\n'), 'latin1');
      for (const chunk of this.#early) client.write(chunk);
      this.#early = [];
      if (this.#ended) client.end();
      else this.exchange?.resume();
      return;
    }
    client.write(rawHead(status, statusText, headers, `Connection: Upgrade\r\nUpgrade: ${this.#upgradeToken}\r\n`), 'latin1');
    client.off('data', this.#onClientData);
    for (const chunk of this.#clientEarly) upstream.write(chunk);
    // Either side closing closes the other; an open WebSocket may stay quiet as long as it likes.
    (client as Socket).setTimeout(0);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);
    client.pipe(upstream);
  }

  withhold(code: GatewayErrorCode): void {
    if (this.#upstream) this.#upstream.destroy();
    else this.exchange?.abort();
    if (this.#client.writable) this.#client.end(rawGatewayError(code));
    else this.#client.destroy();
  }

  data(chunk: Buffer): boolean {
    if (this.#headWritten) return this.#client.write(chunk);
    this.#early.push(chunk);
    return false;
  }

  end(): void {
    if (this.#headWritten) this.#client.end();
    else this.#ended = true;
  }

  fail(kind: FailureKind, error: Error, afterHead: boolean): void {
    const code = upstreamFailed(this.#ctx, kind, error);
    // The handshake failed before any answer: answer it like a refused upgrade, then close.
    if (!afterHead && this.#client.writable) this.#client.end(rawGatewayError(code));
    else this.#client.destroy();
  }
}

export function forwardUpgrade(ctx: RequestContext, req: IncomingMessage, client: Duplex, clientHead: Buffer, onHead: ResponseHeadHandler): void {
  if (client.destroyed) return;
  const relay = new UpgradeRelay(ctx, client, clientHead, onHead);
  ctx.upstreamStartedAt = performance.now();
  const upgrade = typeof req.headers.upgrade === 'string' ? req.headers.upgrade : 'websocket';
  const exchange = ctx.mount.upstream.send({ method: req.method ?? 'GET', path: ctx.url, headers: outgoingHeaders(req.headers), body: null, upgrade }, relay);
  relay.exchange = exchange;
  // A client that gives up during the handshake: the upstream side is closed too.
  client.once('close', () => exchange.abort());
  relay.listen();
}

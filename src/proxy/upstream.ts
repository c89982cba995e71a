/**
 * The upstream leaf: HTTP exchanges with one backend origin over an undici Pool (keep-alive,
 * one request per connection at a time), bounded by the gateway's own timers. It knows
 * nothing of sessions or of the request path: a caller passes a request and hooks, and gets
 * the response head, body chunks and the end (or one failure) back through them.
 *
 * Why own timers and an own queue: undici's headersTimeout/bodyTimeout are per phase and
 * tick coarsely (sub-second values fire late), an interim 1xx re-arms them, and a request
 * queued for a busy pool has no timeout at all.
 */
import { isIP, type Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { unwatch, watchingConnector } from './wire.ts';

export interface UpstreamLimits {
  /** Requests in flight to this upstream at once (each holds one connection). */
  readonly connections: number;
  /** The whole wait for the response head once the request is sent, and each stall of either body. */
  readonly timeoutMs: number;
  /** How long a request may wait for a free connection before it fails as `busy`. */
  readonly queueTimeoutMs: number;
}

export interface OutgoingRequest {
  readonly method: string;
  readonly path: string;
  /** name, value, name, value...: already free of anything undici refuses (see proxy/headers.ts). */
  readonly headers: string[];
  readonly body: Buffer | Readable | AsyncIterable<Buffer> | null;
  /** The Upgrade token of a WebSocket handshake, else null. */
  readonly upgrade: string | null;
}

/**
 * busy: no connection within queueTimeout; timeout: a bound above; unreachable: no
 * connection; invalid: undici refused the request as given (nothing was sent); failed:
 * anything else.
 */
export type FailureKind = 'busy' | 'timeout' | 'unreachable' | 'invalid' | 'failed';

export interface ExchangeHooks {
  /** The final response head; interim 1xx answers are not passed on. The body waits while exchange.pause() holds. */
  head(exchange: Exchange, status: number, rawHeaders: readonly Buffer[], statusText: string): void;
  /** Returns false to pause the body until exchange.resume(). */
  data(chunk: Buffer): boolean;
  end(): void;
  /** Called at most once, and never after end(). `afterHead`: head() already ran. */
  fail(kind: FailureKind, error: Error, afterHead: boolean): void;
  /** A 101 answer to an upgrade: the upstream socket now belongs to the caller. */
  upgraded?(status: number, rawHeaders: readonly Buffer[], socket: Duplex): void;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

const INVALID = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

export function failureKindOf(error: NodeJS.ErrnoException): FailureKind {
  const code = error.code ?? '';
  return UNREACHABLE.has(code) ? 'unreachable' : INVALID.has(code) ? 'invalid' : 'failed';
}

const QUEUED = 0;
const SENT = 1;
const BODY = 2;
const DONE = 3;

class TimeoutError extends Error {
  readonly code = 'SGW_UPSTREAM_TIMEOUT';
}

/**
 * One request/response with the upstream, and undici's dispatch handler for it. One timer
 * per exchange, re-armed (refresh) as the phases move: queued → sent → body. An exchange
 * that finds a free connection never gets a queue timer.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  #phase = QUEUED;
  #controller: Dispatcher.DispatchController | null = null;
  #timer: NodeJS.Timeout | undefined;
  readonly #upstream: Upstream;
  readonly #hooks: ExchangeHooks;
  readonly request: OutgoingRequest;

  constructor(upstream: Upstream, request: OutgoingRequest, hooks: ExchangeHooks) {
    this.#upstream = upstream;
    this.request = request;
    this.#hooks = hooks;
  }

  /** Waits for a connection, at most `waitMs`. */
  queue(waitMs: number): void {
    this.#timer = setTimeout(() => this.#expired(), waitMs);
  }

  /** Leaves the queue for a connection: from here the mount timeout runs. */
  start(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, timeoutMs: number): void {
    this.#phase = SENT;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#expired(), timeoutMs);
    dispatcher.dispatch(options, this);
  }

  get finished(): boolean {
    return this.#phase === DONE;
  }

  pause(): void {
    this.#controller?.pause();
  }

  resume(): void {
    this.#controller?.resume();
  }

  /** The client went away: give the connection up (an unfinished one is closed, not reused). */
  abort(): void {
    if (this.#phase === DONE) return;
    const queued = this.#phase === QUEUED;
    this.#finish();
    if (queued) this.#upstream.dequeue(this);
    else this.#controller?.abort(new Error('client went away'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Timed out or abandoned while undici was still connecting: stop here.
    if (this.#phase === DONE) return void controller.abort(new Error('exchange already over'));
    this.#controller = controller;
  }

  onBodySent(): void {
    this.#timer!.refresh();
  }

  onRequestSent(): void {
    // The head wait starts once the whole request is out; a slow upload is bounded per stall
    // above. Without a body the request went out at start(), when the timer was armed.
    if (this.request.body !== null) this.#timer!.refresh();
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, _headers: unknown, statusText: string): void {
    if (this.#phase !== SENT) return;
    // An interim answer (102, 103): not relayed, and not a reason to wait longer.
    if (status < 200) return;
    this.#phase = BODY;
    this.#timer!.refresh();
    this.#hooks.head(this, status, (controller.rawHeaders ?? []) as Buffer[], statusText);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#phase !== BODY) return;
    this.#timer!.refresh();
    if (!this.#hooks.data(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#phase !== BODY) return;
    this.#finish();
    this.#hooks.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#phase === DONE) return;
    const afterHead = this.#phase === BODY;
    this.#finish();
    this.#hooks.fail(failureKindOf(error as NodeJS.ErrnoException), error, afterHead);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, status: number, _headers: unknown, socket: Duplex): void {
    const raw = ((_controller as { rawHeaders?: Buffer[] }).rawHeaders ?? []) as Buffer[];
    if (this.#phase !== SENT || !this.#hooks.upgraded) return void socket.destroy();
    this.#finish();
    unwatch(socket as Socket);
    this.#hooks.upgraded(status, raw, socket);
  }

  #expired(): void {
    if (this.#phase === DONE) return;
    const phase = this.#phase;
    this.#finish();
    if (phase === QUEUED) {
      this.#upstream.dequeue(this);
      return this.#hooks.fail('busy', new TimeoutError('no free upstream connection in time'), false);
    }
    this.#controller?.abort(new TimeoutError('upstream timeout'));
    this.#hooks.fail('timeout', new TimeoutError(phase === SENT ? 'no response head in time' : 'response body stalled'), phase === BODY);
  }

  #finish(): void {
    const wasRunning = this.#phase === SENT || this.#phase === BODY;
    this.#phase = DONE;
    clearTimeout(this.#timer);
    if (wasRunning) this.#upstream.released();
  }
}

export interface UpstreamStats {
  active: number;
  queued: number;
  /** undici's own count of open sockets to this upstream. */
  connected: number;
}

/** One backend origin: its pool, its connection budget and the queue in front of it. */
export class Upstream {
  readonly pool: Pool;
  readonly #limits: UpstreamLimits;
  readonly #origin: URL;
  /** Given with every request so undici never derives one from the client's Host (and reconnects when it changes). */
  readonly #servername: string | undefined;
  #active = 0;
  readonly #queue: Exchange[] = [];

  constructor(target: URL, limits: UpstreamLimits) {
    this.#origin = new URL(target.origin);
    this.#limits = limits;
    // The TLS server name and certificate check follow the upstream URL, never a client's Host.
    const host = target.hostname.replace(/^\[|\]$/g, '');
    this.#servername = target.protocol === 'https:' ? host : undefined;
    const sni = this.#servername !== undefined && isIP(host) === 0 ? host : undefined;
    this.pool = new Pool(this.#origin, {
      connections: limits.connections,
      pipelining: 1,
      // The gateway's own timers bound every phase; undici's are coarse and per phase.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 4000,
      // undici's connector, watched for what undici and a proxy disagree on (wire.ts).
      connect: watchingConnector({ timeout: limits.timeoutMs + 1000 }, sni),
    });
  }

  /** Starts an exchange, or queues it (bounded by queueTimeout) while every connection is busy. */
  send(request: OutgoingRequest, hooks: ExchangeHooks): Exchange {
    const exchange = new Exchange(this, request, hooks);
    if (this.#active < this.#limits.connections) this.#start(exchange);
    else {
      exchange.queue(this.#limits.queueTimeoutMs);
      this.#queue.push(exchange);
    }
    return exchange;
  }

  #start(exchange: Exchange): void {
    this.#active++;
    const { method, path, headers, body, upgrade } = exchange.request;
    exchange.start(this.pool, {
      origin: this.#origin,
      method,
      path,
      headers,
      body,
      upgrade,
      servername: this.#servername,
      // Keep the connection for the next request even after HEAD or a GET with a body.
      reset: false,
    } as Dispatcher.DispatchOptions, this.#limits.timeoutMs);
  }

  released(): void {
    this.#active--;
    while (this.#queue.length > 0 && this.#active < this.#limits.connections) {
      const next = this.#queue.shift()!;
      if (!next.finished) this.#start(next);
    }
  }

  dequeue(exchange: Exchange): void {
    const i = this.#queue.indexOf(exchange);
    if (i !== -1) this.#queue.splice(i, 1);
  }

  stats(): UpstreamStats {
    return { active: this.#active, queued: this.#queue.length, connected: this.pool.stats.connected };
  }

  /** Lets requests in flight finish, then closes the connections. */
  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

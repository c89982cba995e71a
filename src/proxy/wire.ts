/**
 * Two places where undici's HTTP/1.1 client and a proxy's duty differ, mended at the one
 * seam undici leaves open, its connector (each upstream socket is watched from the start):
 *
 * - An unsolicited `100 Continue`: undici never sends Expect, so it treats a 100 as a
 *   broken response and destroys the connection (a 502), while RFC 9110 §15.2 asks a
 *   client to parse and ignore 1xx answers it did not ask for, and some servers send one
 *   to every request with a body. A 100 head at the very start of a response is dropped
 *   before undici's parser sees it; other 1xx (102, 103) undici passes on and the exchange
 *   skips (upstream.ts). Either way the mount timeout keeps running.
 * - `Content-Length: 0` on a method without a defined body (DELETE, OPTIONS, GET...):
 *   undici leaves it out (RFC 9110 §8.6 "SHOULD NOT"), but a client that sent it means it,
 *   and some servers answer a bodyless DELETE with 411. The path marks such a request with
 *   ZERO_LENGTH_MARKER as its last header; the marker line becomes `content-length: 0`
 *   on the way out, so the backend sees what the client sent.
 */
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';

/** Header name that stands for `content-length: 0` until the request head is written. */
export const ZERO_LENGTH_MARKER = 'x-sgw-zero-content-length';
const MARKER_TAIL = `${ZERO_LENGTH_MARKER}: 1\r\n\r\n`;
const ZERO_LENGTH_TAIL = 'content-length: 0\r\n\r\n';

/** Longest 100 head that is held back while incomplete; anything longer is left to undici. */
const MAX_INTERIM_HEAD_BYTES = 8192;
const CR = 13;
const DIGIT_0 = 48;
const DIGIT_1 = 49;
const CONTINUE_LINE = /^HTTP\/1\.[01] 100[ \r]/;
const CONTINUE_START = 'HTTP/1.1 100 ';

/** Whether a chunk shorter than a status line could still turn out to be the start of a 100. */
function couldBeContinue(start: string): boolean {
  for (let i = 0; i < start.length; i++) {
    if (i === 7 ? start[i] !== '1' && start[i] !== '0' : start[i] !== CONTINUE_START[i]) return false;
  }
  return true;
}
const HEAD_END = Buffer.from('\r\n\r\n');

interface Watched {
  /** A request head went out and no byte of its response has reached undici yet. */
  awaitingHead: boolean;
  held: Buffer | null;
}

/** What to hand undici of a chunk read while awaiting a head: null holds (or dropped) it all. */
function withoutContinue(state: Watched, chunk: Buffer): Buffer | null {
  // Nearly every response: a whole status line whose code is not 100 ("HTTP/1.1 200 ").
  // Three bytes tell, without a string or a regular expression per response.
  if (state.held === null && chunk.length >= CONTINUE_START.length && !(chunk[9] === DIGIT_1 && chunk[10] === DIGIT_0 && chunk[11] === DIGIT_0)) {
    state.awaitingHead = false;
    return chunk;
  }
  let rest = state.held ? Buffer.concat([state.held, chunk]) : chunk;
  state.held = null;
  for (;;) {
    if (rest.length === 0) return null;
    const start = rest.toString('latin1', 0, Math.min(rest.length, CONTINUE_START.length));
    if (rest.length < CONTINUE_START.length && couldBeContinue(start)) {
      state.held = rest;
      return null;
    }
    if (!CONTINUE_LINE.test(start)) {
      state.awaitingHead = false;
      return rest;
    }
    const end = rest.indexOf(HEAD_END);
    if (end === -1) {
      if (rest.length > MAX_INTERIM_HEAD_BYTES) {
        state.awaitingHead = false;
        return rest;
      }
      state.held = rest;
      return null;
    }
    rest = rest.subarray(end + HEAD_END.length);
  }
}

function watch(socket: Socket): void {
  const state: Watched = { awaitingHead: false, held: null };
  const write = socket.write;
  const read = socket.read;
  // Fixed arity (undici passes at most chunk and encoding): a rest parameter would make
  // every write a spread call.
  socket.write = function writeWatched(this: Socket, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    // undici writes a request head as one latin1 string starting with the method; the
    // strings of chunked framing start with CR, bodies are buffers.
    if (typeof chunk === 'string' && chunk.charCodeAt(0) !== CR) {
      state.awaitingHead = true;
      if (chunk.endsWith(MARKER_TAIL)) chunk = chunk.slice(0, -MARKER_TAIL.length) + ZERO_LENGTH_TAIL;
    }
    return (write as (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean).call(this, chunk, encoding, callback);
  } as Socket['write'];
  socket.read = function readWatched(this: Socket, size?: number): Buffer | null {
    const chunk = read.call(this, size) as Buffer | null;
    if (!state.awaitingHead || chunk === null) return chunk;
    return withoutContinue(state, chunk);
  };
}

/** The socket is the caller's now (an upgrade): plain reads and writes from here on. */
export function unwatch(socket: Socket): void {
  delete (socket as Partial<Socket>).write;
  delete (socket as Partial<Socket>).read;
}

/**
 * undici's own connector (TCP or TLS), with every socket watched as described above. The
 * TLS server name is fixed here from the upstream URL (none for an IP address): undici
 * would otherwise take it from the request's Host header, the client's.
 */
export function watchingConnector(options: buildConnector.BuildOptions, servername: string | undefined): buildConnector.connector {
  const connect = buildConnector(options);
  return (opts, callback) => connect({ ...opts, servername }, (error, socket) => {
    if (error) return callback(error, null);
    watch(socket as Socket);
    callback(null, socket);
  });
}

export const testing = { withoutContinue, couldBeContinue };

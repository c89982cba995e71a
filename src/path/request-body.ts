/**
 * The request body as step 4 hands it to the upstream. A small body (up to
 * BUFFERED_BODY_BYTES, declared or chunked) is read in full before a connection is taken,
 * so clients that send their bodies slowly hold no upstream connection while they do: a
 * flood of them cannot starve the other clients of a mount. A larger body streams, with
 * backpressure, and each stall of it is bounded by the mount timeout (proxy/upstream.ts).
 *
 * Framing rule: a body sent with Content-Length goes on with the same Content-Length; a
 * chunked body that fits the buffer goes on with its length, a larger one stays chunked.
 */
import type { IncomingMessage } from 'node:http';

export const BUFFERED_BODY_BYTES = 64 * 1024;

export type RequestBody = Buffer | IncomingMessage | AsyncIterable<Buffer> | null;

function declaredLength(req: IncomingMessage): number | null {
  const header = req.headers['content-length'];
  return header === undefined ? null : Number(header);
}

/** null: the request has no body. A promise only when a body has to be read first. */
export function requestBody(req: IncomingMessage, limit = BUFFERED_BODY_BYTES): RequestBody | Promise<RequestBody> {
  const length = declaredLength(req);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === null || length === 0)) return null;
  if (!chunked && length !== null && length > limit) return req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        done();
        req.pause();
        resolve(continued(chunks, req));
      }
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    const onClose = () => onError(new Error('client went away while sending the body'));
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** What was read so far, then the rest of the stream. */
async function* continued(head: Buffer[], rest: IncomingMessage): AsyncIterable<Buffer> {
  yield* head;
  for await (const chunk of rest) yield chunk as Buffer;
}

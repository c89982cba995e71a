/**
 * Sending the write-back over node:http (and anything built on it: Express, Fastify's
 * raw response, Koa's ctx.res). The header has to be set after the handler's last
 * change and before the headers leave, wherever that happens; every path out of a
 * ServerResponse (writeHead, the first write, end, flushHeaders) goes through writeHead.
 */
import type { ServerResponse } from 'node:http';
import { sealSession, type GatewaySession } from './session.ts';

/**
 * Makes `res` carry the session's write-back header, set just before its headers are
 * sent, so changes made up to that moment are included. Later changes throw instead of
 * being lost.
 *
 * @example
 * http.createServer((req, res) => {
 *   const session = reader.read(req.headers);
 *   attachWriteBack(res, session);
 *   session.set('visits', Number(session.data?.visits ?? 0) + 1);
 *   res.end('ok'); // carries x-session-gateway-write
 * });
 */
export function attachWriteBack(res: ServerResponse, session: GatewaySession<object>): void {
  if (res.headersSent) throw new Error('attachWriteBack: the response headers were already sent');
  const originalWriteHead = res.writeHead;
  function writeHeadWithWriteBack(this: ServerResponse, ...args: unknown[]): ServerResponse {
    res.writeHead = originalWriteHead;
    const header = session.writeBackHeader();
    if (header && !res.headersSent) res.setHeader(header[0], header[1]);
    sealSession(session, 'the response headers were already sent');
    return (originalWriteHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  }
  res.writeHead = writeHeadWithWriteBack as ServerResponse['writeHead'];
}

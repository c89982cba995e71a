/**
 * The write-back for Fetch API handlers (Hono, Next.js route handlers, Bun, Deno): a
 * Response's headers may be immutable (Response.redirect, a fetched response), so the
 * header goes onto a copy. Reading is reader.fromRequest / reader.readAsync.
 */
import { sealSession, type GatewaySession } from './session.ts';

/**
 * Returns `response` with the session's write-back header, or `response` itself when
 * nothing changed. The copy takes over the body: use the returned Response only.
 *
 * @example
 * app.post('/cart', async (c) => {
 *   const session = reader.fromRequest(c.req.raw);
 *   session.set('cart', await c.req.json());
 *   return withWriteBack(c.json({ ok: true }), session);
 * });
 */
export function withWriteBack(response: Response, session: GatewaySession<object>): Response {
  const header = session.writeBackHeader();
  sealSession(session, 'withWriteBack() already built the response');
  if (header === undefined) return response;
  const copy = new Response(response.body, { status: response.status, statusText: response.statusText, headers: response.headers });
  copy.headers.set(header[0], header[1]);
  return copy;
}

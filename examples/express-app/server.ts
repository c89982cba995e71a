/**
 * Example backend "shop" (Express + session-gateway/backend). It has no session config
 * of its own: it reads the gateway's signed token and answers with write-backs.
 *
 *   GET  /            who is logged in, what is in the cart (an HTML page for browsers, JSON otherwise)
 *   POST /login       name=Ada (form body or ?name=) logs in (regenerates the session id, sets user)
 *   POST /cart        item=book adds to the shared cart
 *   POST /logout      ends the session for every app
 *
 * A browser (Accept: text/html) gets pages, and its form posts are answered with a 303
 * back to the page; anything else (curl, which accepts any type, or ?format=json) gets JSON.
 */
import express from 'express';
import { createSessionReader, expressMiddleware, keysFromEnv, type GatewaySession } from '@session-gateway/backend';
import { deriveMountKeyText } from '@session-gateway/backend/protocol';
import { shopPage } from './pages.ts';

interface ShopSession {
  user?: { id: string; name: string };
  cart?: string[];
}

/** This app's view of the shared session, typed. */
const sessionOf = (req: express.Request) => req.gatewaySession as GatewaySession<ShopSession>;

const mount = process.env.SESSION_GATEWAY_MOUNT ?? 'shop';
// Production: give this app only its derived key (`session-gateway keys --mount shop`).
// Demo mode: derive it here from the gateway's SIGNING_SECRET so one variable runs everything.
const keys = process.env.SESSION_GATEWAY_KEYS
  ? keysFromEnv()
  : { mount, keys: { [process.env.SESSION_GATEWAY_KID ?? 'k1']: deriveMountKeyText(process.env.SIGNING_SECRET ?? '', mount) } };

// With stripPrefix the app sees /login, not /shop/login: its public URLs need the mount's
// prefix. The gateway's X-Forwarded-Prefix says it; PUBLIC_PREFIX (default /<mount>) is the
// fallback for a gateway that does not send it. Only a plain path is taken, since it ends
// up in Location headers and links.
const PREFIX_SHAPE = /^(\/[A-Za-z0-9._~-]+)*$/;
const fallbackPrefix = process.env.PUBLIC_PREFIX ?? `/${mount}`;
function publicPrefix(req: express.Request): string {
  const sent = req.get('x-forwarded-prefix');
  return sent !== undefined && PREFIX_SHAPE.test(sent) ? sent : fallbackPrefix;
}

/** HTML only when the client prefers it to JSON: curl accepts both alike, and a tie means JSON. */
const wantsHtml = (req: express.Request) => req.query.format !== 'json' && req.accepts(['json', 'html']) === 'html';

/** A field from the form body, else from the query string (README's curl lines). */
function field(req: express.Request, name: string, fallback: string): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name] ?? req.query[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, 40) : fallback;
}

/** After a form post, back to the page (303: the browser follows with a GET). */
function answer(req: express.Request, res: express.Response, json: object): void {
  if (wantsHtml(req)) res.redirect(303, `${publicPrefix(req)}/`);
  else res.json(json);
}

const app = express();
app.use(expressMiddleware<ShopSession>(createSessionReader<ShopSession>(keys)));
app.use(express.urlencoded({ extended: false, limit: '4kb' }));

app.get('/', (req, res) => {
  const session = sessionOf(req);
  const user = session.get('user') ?? null;
  const cart = session.get('cart') ?? [];
  res.set('cache-control', 'no-store').vary('accept');
  if (wantsHtml(req)) res.type('html').send(shopPage({ prefix: publicPrefix(req), user, cart, sid: session.sid }));
  else res.json({ app: 'shop (Express)', sid: session.sid, user, cart, idleExp: session.idleExp });
});

app.post('/login', (req, res) => {
  const name = field(req, 'name', 'guest');
  sessionOf(req).regenerate().set('user', { id: name.toLowerCase(), name });
  answer(req, res, { app: 'shop (Express)', loggedIn: name });
});

app.post('/cart', (req, res) => {
  const session = sessionOf(req);
  const cart = [...(session.get('cart') ?? []), field(req, 'item', 'item')];
  session.set('cart', cart);
  answer(req, res, { app: 'shop (Express)', cart });
});

app.post('/logout', (req, res) => {
  sessionOf(req).destroy();
  answer(req, res, { app: 'shop (Express)', loggedOut: true });
});

const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? '127.0.0.1';
app.listen(port, host, () => console.log(JSON.stringify({ app: 'shop', listening: `${host}:${port}` })));

/**
 * Example backend "shop" (Express + session-gateway/backend). It has no session config
 * of its own: it reads the gateway's signed token and answers with write-backs.
 *
 *   GET  /            who is logged in, what is in the cart (JSON)
 *   POST /login       ?name=Ada  logs in (regenerates the session id, sets user)
 *   POST /cart        ?item=book adds to the shared cart
 *   POST /logout      ends the session for every app
 */
import express from 'express';
import { createSessionReader, expressMiddleware, keysFromEnv, type GatewaySession } from '@session-gateway/backend';
import { deriveMountKeyText } from '@session-gateway/backend/protocol';

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

const app = express();
app.use(expressMiddleware<ShopSession>(createSessionReader<ShopSession>(keys)));

app.get('/', (req, res) => {
  const session = sessionOf(req);
  res.json({ app: 'shop (Express)', sid: session.sid, user: session.get('user') ?? null, cart: session.get('cart') ?? [], idleExp: session.idleExp });
});

app.post('/login', (req, res) => {
  const name = String(req.query.name ?? 'guest');
  sessionOf(req).regenerate().set('user', { id: name.toLowerCase(), name });
  res.json({ app: 'shop (Express)', loggedIn: name });
});

app.post('/cart', (req, res) => {
  const session = sessionOf(req);
  const cart = [...(session.get('cart') ?? []), String(req.query.item ?? 'item')];
  session.set('cart', cart);
  res.json({ app: 'shop (Express)', cart });
});

app.post('/logout', (req, res) => {
  sessionOf(req).destroy();
  res.json({ app: 'shop (Express)', loggedOut: true });
});

const port = Number(process.env.PORT ?? 3001);
const host = process.env.HOST ?? '127.0.0.1';
app.listen(port, host, () => console.log(JSON.stringify({ app: 'shop', listening: `${host}:${port}` })));

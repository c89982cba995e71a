/**
 * Example "monolith": an existing-style Express app on express-session, the kind a team
 * already runs before it puts session-gateway in front. The one change it needed is the
 * store: session-gateway/express-session, with the gateway's own config, instead of
 * connect-redis. Its routes use `req.session` as they always did, and share the login with
 * every app behind the gateway, both ways.
 *
 *   GET  /          who is logged in, what is in the cart, how many visits (JSON)
 *   GET  /login     a minimal login form (HTML)
 *   POST /login     ?name=Ada (or the form): regenerate, then remember the user, cart kept
 *   POST /cart      ?item=book adds to the shared cart
 *   POST /logout    ends the session for every app
 */
import express, { type ErrorRequestHandler } from 'express';
import session from 'express-session';
import type { GatewaySessionStore } from 'session-gateway/express-session';

declare module 'express-session' {
  interface SessionData {
    user?: { id: string; name: string };
    cart?: string[];
    visits?: number;
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The app's routes, on express-session with the given store; `router` so a host app can mount it anywhere. */
export function monolith(store: GatewaySessionStore): express.Router {
  const app = express.Router();
  app.use(session(store.sessionOptions({ proxy: true })));
  app.use(express.urlencoded({ extended: false }));

  app.get('/', (req, res) => {
    req.session.visits = (req.session.visits ?? 0) + 1;
    res.json({ app: 'monolith (express-session)', user: req.session.user ?? null, cart: req.session.cart ?? [], visits: req.session.visits });
  });

  app.get('/login', (req, res) => {
    const who = req.session.user ? `<p>Logged in as ${escapeHtml(req.session.user.name)}.</p>` : '';
    res.type('html').send(`<!doctype html><title>monolith login</title>${who}
<form method="post" action="login"><label>Name <input name="name" autofocus></label> <button>Log in</button></form>`);
  });

  app.post('/login', (req, res, next) => {
    const name = String(req.body?.name ?? req.query.name ?? 'guest').slice(0, 64);
    const cart = req.session.cart;
    // A new id at login (against session fixation); express-session's regenerate starts empty, so keep the cart.
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = { id: name.toLowerCase(), name };
      if (cart) req.session.cart = cart;
      // Saved before answering, so a failed save is an error the client sees.
      req.session.save((saveErr) => (saveErr ? next(saveErr) : res.json({ app: 'monolith (express-session)', loggedIn: name })));
    });
  });

  app.post('/cart', (req, res) => {
    req.session.cart = [...(req.session.cart ?? []), String(req.query.item ?? 'item')];
    res.json({ app: 'monolith (express-session)', cart: req.session.cart });
  });

  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ app: 'monolith (express-session)', loggedOut: true })));
  });

  const storeErrors: ErrorRequestHandler = (err, _req, res, _next) => {
    if (res.headersSent) return; // the save at the end of a request: the answer already went out
    res.status((err as { status?: number }).status ?? 500).json({ error: (err as { code?: string }).code ?? 'internal' });
  };
  app.use(storeErrors);
  return app;
}

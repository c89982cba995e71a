/**
 * The shop's HTML: one page showing who is logged in and the cart, with the forms that
 * change them. Plain template strings, every value escaped: an example app should need
 * no template engine to read.
 */

export interface ShopView {
  /** The mount's public prefix ("/shop"): every link and form action starts with it. */
  prefix: string;
  user: { name: string } | null;
  cart: string[];
  sid: string | null;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

// The same small stylesheet as the Python example's, so the two apps look like one site.
const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
nav{display:flex;gap:1rem;padding-bottom:.5rem;border-bottom:1px solid #ddd}nav a{color:#0645ad}
.card{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}
.note{color:#555;font-size:.9rem}code{background:#f3f3f3;padding:0 .2rem}
form{display:inline-flex;gap:.5rem;margin:.25rem 0}button{cursor:pointer}`;

export function shopPage(view: ShopView): string {
  const p = escapeHtml(view.prefix);
  const who = view.user
    ? `<p id="who">Signed in as <strong>${escapeHtml(view.user.name)}</strong>.</p>
       <form method="post" action="${p}/logout"><button id="logout">Log out (every app)</button></form>`
    : `<p id="who">Not signed in.</p>
       <form method="post" action="${p}/login">
         <label>Name <input name="name" id="name" required maxlength="40" autocomplete="username"></label>
         <button id="login">Log in</button>
       </form>`;
  const items = view.cart.map((item) => `<li>${escapeHtml(item)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>shop (Express)</title><style>${STYLE}</style></head>
<body>
<nav><a href="/">Start page</a><a href="${p}/">shop (Express)</a><a href="/blog/">blog (Python)</a></nav>
<h1>shop <small>(Express)</small></h1>
<div class="card"><h2>You</h2>${who}</div>
<div class="card"><h2>Cart</h2>
  <ul id="cart">${items || '<li><em>empty</em></li>'}</ul>
  <form method="post" action="${p}/cart"><input name="item" id="item" required maxlength="40" placeholder="an item"><button id="add">Add to cart</button></form>
</div>
<p class="note">This app keeps no session of its own: the gateway sent the session to it in a
signed header (<code>X-Session-Gateway-Token</code>), and the login, cart and logout forms
answer with a signed write-back the gateway stores. Session id: <code>${view.sid ? escapeHtml(view.sid.slice(0, 8)) + '…' : 'none'}</code>.
The same page as JSON: <a href="${p}/?format=json">${p}/?format=json</a>.</p>
</body></html>
`;
}

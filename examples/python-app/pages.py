"""The blog's HTML: one page showing who is logged in (read from the shared session) and
the cart, with the forms this mount may use. Standard library only, every value escaped."""
from html import escape

# The same small stylesheet as the Express example's, so the two apps look like one site.
STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
nav{display:flex;gap:1rem;padding-bottom:.5rem;border-bottom:1px solid #ddd}nav a{color:#0645ad}
.card{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}
.note{color:#555;font-size:.9rem}code{background:#f3f3f3;padding:0 .2rem}
form{display:inline-flex;gap:.5rem;margin:.25rem 0}button{cursor:pointer}"""


def blog_page(prefix, user, cart, sid):
    p = escape(prefix)
    if user:
        who = (f'<p id="who">Signed in as <strong>{escape(str(user.get("name", "?")))}</strong> '
               f'(you logged in at the shop).</p>'
               f'<form method="post" action="{p}/logout"><button id="logout">Log out (every app)</button></form>')
    else:
        # This mount may write `cart` only (config/gateway.yaml), so logging in is the shop's job.
        who = '<p id="who">Not signed in. <a href="/shop/">Log in at the shop</a>: this app may not write <code>user</code>.</p>'
    items = "".join(f"<li>{escape(str(item))}</li>" for item in cart) or "<li><em>empty</em></li>"
    short_sid = escape(sid[:8]) + "…" if sid else "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>blog (Python)</title><style>{STYLE}</style></head>
<body>
<nav><a href="/">Start page</a><a href="/shop/">shop (Express)</a><a href="{p}/">blog (Python)</a></nav>
<h1>blog <small>(Python standard library)</small></h1>
<div class="card"><h2>You</h2>{who}</div>
<div class="card"><h2>Cart</h2>
  <ul id="cart">{items}</ul>
  <form method="post" action="{p}/cart"><input name="item" id="item" required maxlength="40" placeholder="an item"><button id="add">Add to cart</button></form>
</div>
<p class="note">A different app in a different language, and the same session: the gateway
sent it in a signed header, with only the keys this mount may read. Session id:
<code>{short_sid}</code>. The same page as JSON: <a href="{p}/?format=json">{p}/?format=json</a>.</p>
</body></html>
"""

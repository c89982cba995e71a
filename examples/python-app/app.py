"""Example backend "blog": Python standard library only (wsgiref), reading the gateway's
session through helpers/python/session_gateway.py. No session config of its own.

  GET  /             who is logged in, what is in the cart (an HTML page for browsers, JSON otherwise)
  POST /cart         item=book (form body or ?item=) adds to the shared cart (this mount may write `cart` only)
  POST /logout       ends the session for every app

A browser (Accept: text/html) gets pages, and its form posts are answered with a 303
back to the page; anything else (curl, which accepts any type, or ?format=json) gets JSON.
"""
import json
import os
import re
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import session_gateway as sg
from pages import blog_page

MOUNT = os.environ.get("SESSION_GATEWAY_MOUNT", "blog")
if os.environ.get("SESSION_GATEWAY_KEYS"):
    KEYS = sg.keys_from_env()["keys"]
else:
    # Demo mode: derive this mount's key from the gateway's SIGNING_SECRET.
    # Production: give this app only its derived key (`session-gateway keys --mount blog`).
    KEYS = {os.environ.get("SESSION_GATEWAY_KID", "k1"): sg.derive_mount_key(os.environ.get("SIGNING_SECRET", ""), MOUNT)}

# With stripPrefix the app sees /cart, not /blog/cart: its public URLs need the mount's
# prefix. The gateway's X-Forwarded-Prefix says it; PUBLIC_PREFIX (default /<mount>) is the
# fallback for a gateway that does not send it. Only a plain path is taken, since it ends
# up in Location headers and links.
PREFIX_SHAPE = re.compile(r"(/[A-Za-z0-9._~-]+)*")
FALLBACK_PREFIX = os.environ.get("PUBLIC_PREFIX", f"/{MOUNT}")
MAX_FORM_BYTES = 4096


def public_prefix(environ):
    sent = environ.get("HTTP_X_FORWARDED_PREFIX")
    return sent if sent is not None and PREFIX_SHAPE.fullmatch(sent) else FALLBACK_PREFIX


def _quality(accept, wanted):
    """The q-value `accept` gives the media type `wanted`, the most specific match winning."""
    best = (-1, 0.0)
    for part in accept.split(","):
        media, *params = [piece.strip() for piece in part.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = wanted.split("/")[0]
        specificity = {wanted: 2, f"{kind}/*": 1, "*/*": 0}.get(media.lower(), -1)
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def wants_html(environ, query):
    """HTML only when the client prefers it to JSON: curl accepts both alike, and a tie means JSON."""
    if query.get("format") == ["json"]:
        return False
    accept = environ.get("HTTP_ACCEPT", "*/*")
    return _quality(accept, "text/html") > _quality(accept, "application/json")


class FormTooLarge(Exception):
    pass


def form_fields(environ):
    """The urlencoded body of a form post; {} for anything else. Larger than MAX_FORM_BYTES: FormTooLarge."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FORM_BYTES:
        raise FormTooLarge()
    return parse_qs(environ["wsgi.input"].read(length).decode("utf-8", "replace")) if length > 0 else {}


def respond(start_response, status, content_type, body, extra=()):
    body = body.encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("Vary", "Accept"), *extra])
    return [body]


def state(session):
    return {"app": "blog (Python stdlib)", "sid": session.sid, "user": session.get("user"), "cart": session.get("cart") or []}


def app(environ, start_response):
    session = environ["session_gateway.session"]
    if session is None:  # no verifiable token: not reached through the gateway (the helper logged why)
        error = environ["session_gateway.error"]
        return respond(start_response, "401 Unauthorized", "application/json", json.dumps({"error": error.code}))
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    html = wants_html(environ, query)
    if method == "POST" and path == "/cart":
        try:
            fields = {**query, **form_fields(environ)}
        except FormTooLarge:
            error = {"error": "form_too_large", "limit": MAX_FORM_BYTES}
            return respond(start_response, "413 Content Too Large", "application/json", json.dumps(error))
        item = (fields.get("item", ["item"])[0].strip() or "item")[:40]
        session.set("cart", list(session.get("cart") or []) + [item])
        body = state(session)
    elif method == "POST" and path == "/logout":
        session.destroy()
        body = {"app": "blog (Python stdlib)", "loggedOut": True}
    elif method == "GET" and path == "/":
        body = state(session)
        if html:
            page = blog_page(public_prefix(environ), body["user"], body["cart"], body["sid"])
            return respond(start_response, "200 OK", "text/html; charset=utf-8", page)
    else:
        return respond(start_response, "404 Not Found", "application/json", json.dumps({"error": "not_found", "path": path}))
    if html and method == "POST":  # a form post: back to the page, which the browser GETs
        return respond(start_response, "303 See Other", "text/plain", "", [("Location", public_prefix(environ) + "/")])
    return respond(start_response, "200 OK", "application/json", json.dumps(body))


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # one JSON line per request would be noise in the demo
        pass


if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "3002"))
    wrapped = sg.SessionGatewayMiddleware(app, mount=MOUNT, keys=KEYS)
    print(json.dumps({"app": "blog", "listening": f"{host}:{port}"}), flush=True)
    make_server(host, port, wrapped, handler_class=QuietHandler).serve_forever()

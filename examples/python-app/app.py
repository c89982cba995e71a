"""Example backend "blog": Python standard library only (wsgiref), reading the gateway's
session through helpers/python/session_gateway.py. No session config of its own.

  GET  /            who is logged in, what is in the cart (JSON)
  POST /cart?item=x adds to the shared cart (this mount may write `cart` only)
"""
import json
import os
import signal
import sys
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import session_gateway as sg

MOUNT = os.environ.get("SESSION_GATEWAY_MOUNT", "blog")
if os.environ.get("SESSION_GATEWAY_KEYS"):
    KEYS = sg.keys_from_env()["keys"]
else:
    # Demo mode: derive this mount's key from the gateway's SIGNING_SECRET, or from the file
    # SIGNING_SECRET_FILE names (docker-compose.yml generates one).
    # Production: give this app only its derived key (`session-gateway keys --mount blog`).
    SECRET = os.environ.get("SIGNING_SECRET", "")
    if not SECRET and os.environ.get("SIGNING_SECRET_FILE"):
        with open(os.environ["SIGNING_SECRET_FILE"], encoding="utf-8") as f:
            SECRET = f.read().rstrip("\r\n")
    KEYS = {os.environ.get("SESSION_GATEWAY_KID", "k1"): sg.derive_mount_key(SECRET, MOUNT)}


def app(environ, start_response):
    session = environ["session_gateway.session"]
    if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/cart":
        item = parse_qs(environ.get("QUERY_STRING", "")).get("item", ["item"])[0]
        session.set("cart", list(session.get("cart") or []) + [item])
    body = json.dumps({
        "app": "blog (Python stdlib)",
        "sid": session.sid,
        "user": session.get("user"),
        "cart": session.get("cart") or [],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # one JSON line per request would be noise in the demo
        pass


if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "3002"))
    wrapped = sg.SessionGatewayMiddleware(app, mount=MOUNT, keys=KEYS)
    # `docker compose stop` sends SIGTERM; as PID 1 Python would ignore it without a handler.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"app": "blog", "listening": f"{host}:{port}"}), flush=True)
    make_server(host, port, wrapped, handler_class=QuietHandler).serve_forever()

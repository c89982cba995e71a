"""Tests for the ASGI 3 middleware (session_gateway.asgi) and the mount prefix (X-Forwarded-Prefix).

The ASGI middleware is driven here with plain ASGI messages (asyncio, no server); the
pip-installed package runs under uvicorn behind the real gateway in
test/integration/python-package.test.ts. Run from the repository root:
python3 -m unittest discover -s helpers/python -v
"""

import asyncio
import io
import json
import logging
import unittest

import session_gateway as sg
from session_gateway.asgi import SCOPE_ERROR_KEY, SCOPE_KEY, SCOPE_PREFIX_KEY, SessionGatewayASGIMiddleware
from test_session_gateway import RID, SHOP_KEYS, fresh_payload, hs256_ok, jws_parts, mint_token


def asgi_headers(token=None, rid=RID, prefix=None, extra=()):
    pairs = [(b"host", b"shop")]
    for name, value in (("x-session-gateway-token", token), ("x-session-gateway-rid", rid), ("x-forwarded-prefix", prefix)):
        if value is not None:
            pairs.append((name.encode(), value.encode()))
    return pairs + [(n.encode(), v.encode()) for n, v in extra]


async def app_that(action, scope, receive, send):
    """Records the scope it saw, applies ``action`` to the session, answers 200 (plus any header it sets)."""
    seen = {"session": scope[SCOPE_KEY], "error": scope.get(SCOPE_ERROR_KEY), "prefix": scope[SCOPE_PREFIX_KEY]}
    headers = action(scope[SCOPE_KEY]) or []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"prefix": seen["prefix"]}).encode()})
    return seen


def call(headers, action=lambda session: None, scope_type="http"):
    """Runs one request through the middleware; returns (what the app saw, messages sent)."""
    seen, sent = {}, []

    async def app(scope, receive, send):
        seen.update(await app_that(action, scope, receive, send))

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    middleware = SessionGatewayASGIMiddleware(app, mount="shop", keys=SHOP_KEYS)
    asyncio.run(middleware({"type": scope_type, "headers": headers, "path": "/", "method": "GET"}, receive, send))
    return seen, sent


def header(message, name):
    values = [v.decode() for n, v in message.get("headers", []) if n.lower() == name.encode()]
    return values[0] if len(values) == 1 else (None if not values else values)


class AsgiMiddlewareTests(unittest.TestCase):
    def test_verified_session_and_its_write_back(self):
        def login(session):
            session.regenerate()
            session.set("user", {"id": 7})

        seen, sent = call(asgi_headers(mint_token(fresh_payload())), login)
        self.assertEqual(seen["session"].sid, "Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe")
        self.assertIsNone(seen["error"])
        write = header(sent[0], "x-session-gateway-write")
        payload = jws_parts(write)[1]
        self.assertTrue(hs256_ok(write, SHOP_KEYS["2026-11"]))
        self.assertEqual(payload["rid"], RID)
        self.assertEqual(payload["set"], {"user": {"id": 7, "name": None}})
        self.assertTrue(payload["regenerate"])

    def test_no_change_no_header_and_changes_after_the_start_refused(self):
        seen, sent = call(asgi_headers(mint_token(fresh_payload())))
        self.assertIsNone(header(sent[0], "x-session-gateway-write"))
        with self.assertRaises(RuntimeError):
            seen["session"].set("cart", [])

    def test_bad_token_gives_none_and_the_error_and_is_logged(self):
        with self.assertLogs("session_gateway", logging.WARNING) as logs:
            seen, sent = call(asgi_headers(mint_token(fresh_payload(), key_text=sg.b64url_encode(b"x" * 32))))
        self.assertIsNone(seen["session"])
        self.assertEqual(seen["error"].code, "bad_signature")
        self.assertIn("token refused (bad_signature)", logs.output[0])
        self.assertIsNone(header(sent[0], "x-session-gateway-write"))

    def test_two_token_headers_are_refused(self):
        token = mint_token(fresh_payload())
        with self.assertLogs("session_gateway", logging.WARNING):
            seen, _ = call(asgi_headers(token, extra=[("x-session-gateway-token", mint_token(fresh_payload(iat=1)))]))
        self.assertEqual(seen["error"].code, "malformed")

    def test_a_write_back_header_set_by_the_app_is_removed(self):
        with self.assertLogs("session_gateway", logging.WARNING) as logs:
            _, sent = call(asgi_headers(mint_token(fresh_payload())), lambda s: [(b"X-Session-Gateway-Write", b"forged")])
        self.assertIsNone(header(sent[0], "x-session-gateway-write"))
        self.assertIn("removed an X-Session-Gateway-Write header", logs.output[0])

    def test_lifespan_passes_through_untouched(self):
        got = []

        async def app(scope, receive, send):
            got.append(scope)

        asyncio.run(SessionGatewayASGIMiddleware(app, mount="shop", keys=SHOP_KEYS)({"type": "lifespan"}, None, None))
        self.assertEqual(got, [{"type": "lifespan"}])


class PrefixTests(unittest.TestCase):
    def test_clean_prefixes(self):
        for value, prefix in (("/shop", "/shop"), ("/shop/", "/shop"), ("/a/b-c.d", "/a/b-c.d"), ("/", ""), ("", "")):
            self.assertEqual(sg.prefix_from({"X-Forwarded-Prefix": value}), prefix, value)
        self.assertEqual(sg.prefix_from({}), "")
        self.assertEqual(sg.prefix_from({"HTTP_X_FORWARDED_PREFIX": "/shop"}), "/shop")  # WSGI environ

    def test_values_that_could_start_an_open_redirect_count_as_none(self):
        for value in ("//evil.example", "/\\evil.example", "shop", "https://evil.example", "/shop\r\nX: y",
                      "/shop, /blog", "/sh op", "/shöp", "/shop?x=1"):
            self.assertEqual(sg.prefix_from({"X-Forwarded-Prefix": value}), "", value)
        self.assertEqual(sg.prefix_from({"X-Forwarded-Prefix": "/a", "x-forwarded-prefix": "/b"}), "")

    def test_session_prefix_and_url_for(self):
        session = sg.verify_token({sg.TOKEN_HEADER: mint_token(fresh_payload()), sg.RID_HEADER: RID,
                                   "X-Forwarded-Prefix": "/shop"}, mount="shop", keys=SHOP_KEYS)
        self.assertEqual(session.prefix, "/shop")
        self.assertEqual(session.url_for("/"), "/shop/")
        self.assertEqual(session.url_for("/cart?item=7"), "/shop/cart?item=7")
        for bad in ("cart", "//evil.example", "/\\evil.example", "https://evil.example/"):
            with self.assertRaises(ValueError):
                session.url_for(bad)

    def test_without_the_header_url_for_is_the_path(self):
        session = sg.verify_token({sg.TOKEN_HEADER: mint_token(fresh_payload()), sg.RID_HEADER: RID},
                                  mount="shop", keys=SHOP_KEYS)
        self.assertEqual((session.prefix, session.url_for("/me")), ("", "/me"))

    def test_both_middlewares_give_the_prefix_with_or_without_a_session(self):
        seen, _ = call(asgi_headers(mint_token(fresh_payload()), prefix="/shop"))
        self.assertEqual((seen["prefix"], seen["session"].prefix), ("/shop", "/shop"))
        with self.assertLogs("session_gateway", logging.WARNING):
            anonymous, _ = call(asgi_headers(None, prefix="/shop"))
        self.assertEqual((anonymous["prefix"], anonymous["session"]), ("/shop", None))

        environ = {"HTTP_X_FORWARDED_PREFIX": "/shop", "wsgi.errors": io.StringIO()}
        sg.SessionGatewayMiddleware(lambda e, s: [], mount="shop", keys=SHOP_KEYS)(environ, lambda *a: None)
        self.assertEqual((environ[sg.ENVIRON_PREFIX_KEY], environ[sg.ENVIRON_KEY]), ("/shop", None))


if __name__ == "__main__":
    unittest.main()

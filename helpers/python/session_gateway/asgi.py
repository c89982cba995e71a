"""ASGI 3 middleware for session-gateway: Starlette, FastAPI, Django's ASGI mode, Quart, any ASGI server.

    from session_gateway.asgi import SessionGatewayASGIMiddleware, SCOPE_KEY
    app = SessionGatewayASGIMiddleware(app)          # mount/keys from SESSION_GATEWAY_MOUNT/_KEYS

    # in a Starlette/FastAPI endpoint
    session = request.scope[SCOPE_KEY]               # None when the token was missing or bad
    session.set("cart", [1, 2]); return RedirectResponse(session.url_for("/"))

The same verification and write-back as the WSGI middleware: changes made before the
response starts (``http.response.start``) become the X-Session-Gateway-Write header.
"""

import logging

from . import ENVIRON_ERROR_KEY, ENVIRON_KEY, ENVIRON_PREFIX_KEY, WRITE_HEADER, _GatewayMiddleware, prefix_from

__all__ = ["SCOPE_KEY", "SCOPE_ERROR_KEY", "SCOPE_PREFIX_KEY", "SessionGatewayASGIMiddleware"]

#: Scope keys, the same names as the WSGI environ keys.
SCOPE_KEY = ENVIRON_KEY
SCOPE_ERROR_KEY = ENVIRON_ERROR_KEY
SCOPE_PREFIX_KEY = ENVIRON_PREFIX_KEY

_LOG = logging.getLogger("session_gateway")
_WRITE_NAME = WRITE_HEADER.lower().encode("ascii")


def _header_mapping(raw_headers):
    """ASGI's [(name, value)] byte pairs as a mapping; repeated headers joined by ", " as HTTP
    stacks join them, so two tokens or two rids fail verification instead of one being picked."""
    headers = {}
    for name, value in raw_headers:
        key = bytes(name).decode("latin-1").lower()
        headers[key] = headers[key] + b", " + bytes(value) if key in headers else bytes(value)
    return headers


class SessionGatewayASGIMiddleware(_GatewayMiddleware):
    """Verifies the token and the rid header of each HTTP and WebSocket connection.

    Puts the Session in ``scope["session_gateway.session"]`` (None when verification
    failed, the error then in ``scope["session_gateway.error"]``, logged to the
    ``session_gateway`` logger with its code) and the mount's public path prefix in
    ``scope["session_gateway.prefix"]``. The app decides what an anonymous visitor gets.
    Over HTTP the session's changes leave as the write-back header of the response; a
    WebSocket session is read-only (the gateway reads no write-back from an upgrade).

    Options as SessionGatewayMiddleware: ``mount``/``keys`` default to keys_from_env().
    """

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)  # lifespan and extensions pass through
        headers = _header_mapping(scope.get("headers", ()))
        session, error = self._verify(headers)
        scope = dict(scope, **{SCOPE_KEY: session, SCOPE_PREFIX_KEY: prefix_from(headers)})
        if error is not None:
            scope[SCOPE_ERROR_KEY] = error
            _LOG.warning("session-gateway: token refused (%s): %s", error.code, error.message)
        if session is None or scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_write_back(message):
            if message["type"] == "http.response.start":
                session.freeze()
                message = dict(message, headers=self._with_write_back(session, list(message.get("headers", ()))))
            await send(message)

        return await self.app(scope, receive, send_with_write_back)

    def _with_write_back(self, session, headers):
        # The middleware owns the header: one write-back per response, built from the Session.
        kept = [(name, value) for name, value in headers if bytes(name).lower() != _WRITE_NAME]
        if len(kept) != len(headers):
            _LOG.warning("session-gateway: removed an X-Session-Gateway-Write header set by the app")
        value = self._write_back(session)
        return kept if value is None else kept + [(_WRITE_NAME, value.encode("ascii"))]

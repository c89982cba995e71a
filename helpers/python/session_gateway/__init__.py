"""Backend helper for session-gateway, protocol v2 (docs/PROTOCOL.md).

Standard library only (Python >= 3.9). It verifies the request token the gateway
sends in ``X-Session-Gateway-Token`` together with the request's nonce, sent beside
it in ``X-Session-Gateway-Rid``, and builds the signed write-back a backend answers
with in ``X-Session-Gateway-Write``.

EdDSA tokens (the gateway's asymmetric mode) need Ed25519, which the standard
library lacks: they are verified only when the third-party ``cryptography``
package is importable; otherwise verifying one raises ``unsupported_algorithm``
saying so. HS256 tokens and every write-back (always HS256) need nothing extra.
"""

import base64
import binascii
import copy
import hashlib
import hmac
import json
import os
import re
import time

try:  # optional, for EdDSA only
    from cryptography.exceptions import InvalidSignature as _InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PublicKey as _Ed25519PublicKey,
    )
except ImportError:  # pragma: no cover - depends on the machine
    _Ed25519PublicKey = None
    _InvalidSignature = None

__all__ = [
    "ENVIRON_KEY", "ENVIRON_ERROR_KEY", "EDDSA_AVAILABLE", "ERROR_CODES",
    "PROTOCOL_VERSION", "RID_HEADER", "TOKEN_HEADER", "WRITE_HEADER",
    "Session", "SessionGatewayError", "SessionGatewayMiddleware",
    "build_write_back", "derive_mount_key", "keys_from_env",
    "public_keys_from_jwks", "verify_token",
]

PROTOCOL_VERSION = 2
TOKEN_HEADER = "X-Session-Gateway-Token"
#: The request's nonce, sent beside the token (PROTOCOL.md §2, §4.4): a write-back repeats it.
RID_HEADER = "X-Session-Gateway-Rid"
WRITE_HEADER = "X-Session-Gateway-Write"
DEFAULT_SKEW_SECONDS = 10
MAX_WRITE_BACK_BYTES = 8192
RESERVED_KEYS = frozenset({"cookie", "_gateway"})
DERIVATION_LABEL = "session-gateway/v1 mount "
EDDSA_AVAILABLE = _Ed25519PublicKey is not None

#: Where the WSGI middleware puts the verified Session (None when verification failed).
ENVIRON_KEY = "session_gateway.session"
#: Where the WSGI middleware puts the SessionGatewayError when verification failed.
ENVIRON_ERROR_KEY = "session_gateway.error"

ERROR_CODES = (
    "missing", "malformed", "unsupported_version", "unsupported_algorithm",
    "unknown_key", "bad_signature", "wrong_audience", "stale", "future",
    # raised by the gateway for write-backs; the builder uses them for what it can see
    "replayed", "reserved_key", "forbidden_key", "unsafe_key", "too_large", "too_deep",
)

# Header names compared case-insensitively with "_" counting as "-" (PROTOCOL.md §2);
# the second form is the WSGI/CGI environ spelling HTTP_X_SESSION_GATEWAY_TOKEN.
_TOKEN_NAMES = ("x-session-gateway-token", "http-x-session-gateway-token")
_RID_NAMES = ("x-session-gateway-rid", "http-x-session-gateway-rid")
_WRITE_NAME = WRITE_HEADER.lower()
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# 16 random bytes in base64url (PROTOCOL.md §4.3 step 11); used with fullmatch, since
# re's "$" would also accept a trailing newline.
_RID = re.compile(r"[A-Za-z0-9_-]{22}")
_FROM_HEADERS = object()  # verify_token's rid default: read it from the headers mapping
_MAX_SAFE_INT = 2**53 - 1  # the reference checks Number.isSafeInteger


class SessionGatewayError(Exception):
    """A protocol error; ``code`` is exactly one of PROTOCOL.md §7's codes."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --- encodings (PROTOCOL.md §3) -------------------------------------------------


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text, what="value"):
    """Strict base64url without padding; urlsafe_b64decode alone would skip bad characters."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise SessionGatewayError("malformed", f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SessionGatewayError("malformed", f"{what} is not base64url") from None
    # Canonical only (PROTOCOL.md §3): set unused bits would let one value be spelled several ways.
    if b64url_encode(data) != text:
        raise SessionGatewayError("malformed", f"{what} is not canonical base64url")
    return data


def _reject_constant(name):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) and the gateway do not.
    raise ValueError(f"{name} is not JSON")


def _json_object(raw, what):
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SessionGatewayError("malformed", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise SessionGatewayError("malformed", f"{what} is not a JSON object")
    return value


def _to_json(value):
    # allow_nan=False: NaN would make JSON the gateway refuses; fail here instead.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _same_json(a, b):
    """JSON equality; plain == would call True equal to 1."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# --- keys (PROTOCOL.md §5) -------------------------------------------------------


def derive_mount_key(secret, mount):
    """HMAC-SHA256(secret, "session-gateway/v1 mount " + mount): the 32-byte mount key."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return hmac.new(secret, (DERIVATION_LABEL + mount).encode("utf-8"), hashlib.sha256).digest()


def _key_bytes(kid, key):
    """A key given as bytes or base64url text; both kinds of key are 32 bytes."""
    if isinstance(key, str):
        try:
            key = b64url_decode(key.strip(), f"key {kid!r}")
        except SessionGatewayError:
            raise ValueError(f"session-gateway key {kid!r} is not base64url text") from None
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        # Most likely the gateway's configured secret instead of the derived mount key.
        raise ValueError(
            f"session-gateway key {kid!r} must be 32 bytes: the derived mount key "
            "(`session-gateway keys --mount NAME` prints it), not the gateway secret"
        )
    return bytes(key)


def _normalise_keys(keys):
    if not keys:
        raise ValueError("session-gateway: no keys configured")
    return {kid: _key_bytes(kid, key) for kid, key in keys.items()}


def _parse_key_list(text):
    """"kid:key,kid2:key2" -> ordered dict (newest first, as the gateway lists them)."""
    keys = {}
    for entry in text.split(","):
        kid, sep, key = entry.strip().partition(":")
        if not sep or not kid.strip() or not key.strip():
            raise ValueError(f"SESSION_GATEWAY_KEYS entry {entry.strip()!r} is not kid:key")
        keys[kid.strip()] = _key_bytes(kid.strip(), key)
    return keys


def keys_from_env(environ=None):
    """Reads SESSION_GATEWAY_MOUNT and SESSION_GATEWAY_KEYS ("kid:base64urlkey,kid2:key2").

    Returns ``{"mount": ..., "keys": {...}}``, ready for ``verify_token(h, **keys_from_env())``.
    """
    environ = os.environ if environ is None else environ
    mount = environ.get("SESSION_GATEWAY_MOUNT", "").strip()
    text = environ.get("SESSION_GATEWAY_KEYS", "").strip()
    if not mount or not text:
        raise ValueError("set SESSION_GATEWAY_MOUNT and SESSION_GATEWAY_KEYS (kid:key,kid2:key2)")
    return {"mount": mount, "keys": _parse_key_list(text)}


def public_keys_from_jwks(jwks):
    """kid -> Ed25519 public key bytes, from the gateway's /_gateway/jwks.json document."""
    return {
        k["kid"]: b64url_decode(k["x"], "JWKS x")
        for k in jwks.get("keys", [])
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519" and "kid" in k and "x" in k
    }


# --- verifying the request token (PROTOCOL.md §4.3) ------------------------------


def _check_signature(alg, key, signing_input, signature):
    if alg == "HS256":
        expected = hmac.new(key, signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
    if _Ed25519PublicKey is None:
        raise SessionGatewayError(
            "unsupported_algorithm",
            "EdDSA tokens need the 'cryptography' package (pip install cryptography); "
            "Python's standard library has no Ed25519",
        )
    try:
        _Ed25519PublicKey.from_public_bytes(key).verify(signature, signing_input)
        return True
    except _InvalidSignature:
        return False


def _verify_compact(token, keys, alg):
    """Steps 2-5: structure, alg, kid, signature, then (only then) the payload JSON."""
    parts = token.split(".")
    if len(parts) != 3:
        raise SessionGatewayError("malformed", "a JWS has three dot-separated parts")
    # Order as PROTOCOL.md §4.3: the header first (alg, kid), then the other two parts.
    header = _json_object(b64url_decode(parts[0], "the JWS header"), "the JWS header")
    if header.get("alg") != alg:
        raise SessionGatewayError("unsupported_algorithm", f"expected alg {alg}, got {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise SessionGatewayError("malformed", "the JWS header has no kid")
    if kid not in keys:
        raise SessionGatewayError("unknown_key", f"no key with kid {kid!r}")
    payload_raw = b64url_decode(parts[1], "the JWS payload")
    signature = b64url_decode(parts[2], "the JWS signature")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not _check_signature(alg, keys[kid], signing_input, signature):
        raise SessionGatewayError("bad_signature", "the signature does not match")
    return kid, _json_object(payload_raw, "the JWS payload")


def _as_int(value):
    """An integer as JSON sees it (1 and 1.0 alike, never a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) <= _MAX_SAFE_INT:
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INT:
        return int(value)
    return None


def _int_or_none(value):
    """(ok, value) for a field that is an integer or null."""
    if value is None:
        return True, None
    number = _as_int(value)
    return number is not None, number


def _claims(p, mount, now, skew):
    """Steps 7-10 on the parsed payload; returns the token's claims with protocol names."""
    if _as_int(p.get("v")) != PROTOCOL_VERSION:
        raise SessionGatewayError("unsupported_version", f"payload.v is {p.get('v')!r}, expected {PROTOCOL_VERSION}")
    omitted = p.get("dataOmitted") is True
    idle_ok, idle = _int_or_none(p.get("idleExp"))
    abs_ok, abs_exp = _int_or_none(p.get("absExp"))
    iat, exp, data, sid = _as_int(p.get("iat")), _as_int(p.get("exp")), p.get("data"), p.get("sid")
    if not (
        isinstance(p.get("aud"), str) and iat is not None and exp is not None
        and (sid is None or isinstance(sid, str))
        and idle_ok and abs_ok and (isinstance(data, dict) or (data is None and omitted))
    ):
        raise SessionGatewayError("malformed", "the token payload lacks a field or has one of the wrong type")
    if p["aud"] != mount:
        raise SessionGatewayError("wrong_audience", f"token is for {p['aud']!r}, not {mount!r}")
    if iat - skew > now:
        raise SessionGatewayError("future", f"issued at {iat}, now is {now}")
    if exp + skew < now:
        raise SessionGatewayError("stale", f"expired at {exp}, now is {now}")
    # A "rid" in the payload (a v1 habit) is ignored: the nonce comes from its header (§4.4).
    return {"aud": p["aud"], "iat": iat, "exp": exp, "sid": sid, "data": data,
            "idleExp": idle, "absExp": abs_exp, "dataOmitted": omitted}


def _check_rid(rid):
    """Step 11, after every token step: the X-Session-Gateway-Rid value, 22 base64url characters."""
    if not (isinstance(rid, str) and _RID.fullmatch(rid)):
        raise SessionGatewayError(
            "malformed", "no well-formed X-Session-Gateway-Rid header (22 base64url characters)")
    return rid


def _header_text(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise SessionGatewayError("malformed", "the token header is not ASCII") from None
    return value


def _rid_text(value):
    # Never raises: a value that is not ASCII is refused at step 11, after the token steps.
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return value


def _is_value(value_or_headers):
    return value_or_headers is None or isinstance(value_or_headers, (str, bytes, bytearray))


def _token_from(value_or_headers):
    """The token header's value, from a value or a mapping (headers or a WSGI environ)."""
    if _is_value(value_or_headers):
        return _header_text(value_or_headers)
    found = []
    for name, value in value_or_headers.items():
        if isinstance(name, str) and name.lower().replace("_", "-") in _TOKEN_NAMES:
            found.append(_header_text(value))
    if len(set(found)) > 1:
        # Two different tokens: refuse rather than guess which one the gateway sent.
        raise SessionGatewayError("malformed", "more than one X-Session-Gateway-Token header")
    return found[0] if found else None


def _rid_from(headers):
    """The X-Session-Gateway-Rid value from a mapping; None when absent.

    Copies under several spellings are joined with ", " as HTTP stacks join repeated
    headers, so that they fail step 11 like the gateway's own reader does, in order.
    """
    found = [_rid_text(value) for name, value in headers.items()
             if isinstance(name, str) and name.lower().replace("_", "-") in _RID_NAMES]
    if not found:
        return None
    return found[0] if len(found) == 1 else ", ".join(str(v) for v in found)


def verify_token(value_or_headers, rid=_FROM_HEADERS, *, mount, keys, alg="HS256", now=None,
                 skew=DEFAULT_SKEW_SECONDS):
    """Verifies what the gateway sent with a request and returns a Session, or raises SessionGatewayError.

    Either ``verify_token(headers, mount=..., keys=...)``: any mapping of headers or a WSGI
    environ, from which both X-Session-Gateway-Token and X-Session-Gateway-Rid are read
    (case-insensitively, "_" as "-", WSGI's HTTP_X_SESSION_GATEWAY_TOKEN and
    HTTP_X_SESSION_GATEWAY_RID included);
    or ``verify_token(token, rid, mount=..., keys=...)``: the two header values, ``None``
    for a header that is absent.

    The token is checked first (PROTOCOL.md §4.3 steps 1-10), then the rid (step 11:
    22 base64url characters, else ``malformed``); ``session.rid`` is the header's value.
    ``keys``: kid -> key, bytes or base64url text: the derived mount keys for HS256,
    the Ed25519 public keys for EdDSA (see public_keys_from_jwks).
    """
    if _is_value(value_or_headers):
        if rid is _FROM_HEADERS:
            raise TypeError("verify_token(token, rid, ...): pass the X-Session-Gateway-Rid header's "
                            "value (None when absent), or pass the headers mapping instead")
        rid = _rid_text(rid)
    elif rid is not _FROM_HEADERS:
        raise TypeError("verify_token(headers, ...) reads X-Session-Gateway-Rid from the headers; "
                        "pass rid only with a token value")
    else:
        rid = _rid_from(value_or_headers)
    token = _token_from(value_or_headers)
    if not token:
        raise SessionGatewayError("missing", "no session token header")
    if alg not in ("HS256", "EdDSA"):
        raise ValueError(f"alg must be HS256 or EdDSA, not {alg!r}")
    kid, payload = _verify_compact(token, _normalise_keys(keys), alg)
    now = int(time.time()) if now is None else now
    claims = _claims(payload, mount, now, skew)
    claims["rid"] = _check_rid(rid)
    return Session(claims, kid=kid)


# --- the session and the changes a backend asks for -------------------------------


def _merge_diff(old, new):
    """A JSON Merge Patch (RFC 7396) turning ``old`` into ``new``.

    Needed because a patch merges objects: sending {"user": {"id": 7}} over a stored
    {"user": {"id": 42, "name": "Ada"}} would keep "name"; the diff nulls it.
    """
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch = {k: None for k in old if k not in new}
    for k, v in new.items():
        if k not in old:
            patch[k] = v
        elif not _same_json(old[k], v):
            patch[k] = _merge_diff(old[k], v)
    return patch


class Session:
    """A verified request token, plus the changes the app asks for in this request.

    Read: ``sid``, ``data`` (the readable keys; None when ``data_omitted``), ``get(key)``.
    Change: ``set(key, value)``, ``delete(key)``, ``regenerate()``, ``destroy()``,
    ``revoke_user()``; the middleware turns them into the write-back header.
    """

    def __init__(self, claims, kid=None):
        self.aud = claims["aud"]
        self.iat = claims["iat"]
        self.exp = claims["exp"]
        self.rid = claims["rid"]
        self.sid = claims["sid"]
        self.data = claims["data"]
        self.idle_exp = claims["idleExp"]
        self.abs_exp = claims["absExp"]
        self.data_omitted = claims["dataOmitted"]
        self.kid = kid  # which key signed the token; write-backs reuse it when they can
        self._pending = {}  # key -> new value, None meaning delete
        self._regenerate = False
        self._destroy = False
        self._revoke_user = False
        self._frozen = False

    def __repr__(self):
        return f"Session(aud={self.aud!r}, sid={self.sid!r}, rid={self.rid!r})"

    def claims(self):
        """The claims under their protocol names, as in the test vectors' ``expect``."""
        return {"aud": self.aud, "iat": self.iat, "exp": self.exp, "rid": self.rid, "sid": self.sid,
                "data": self.data, "idleExp": self.idle_exp, "absExp": self.abs_exp,
                "dataOmitted": self.data_omitted}

    # reading

    def get(self, key, default=None):
        """The value as this request sees it: its own pending changes first."""
        if key in self._pending:
            value = self._pending[key]
            return default if value is None else copy.deepcopy(value)
        return copy.deepcopy((self.data or {}).get(key, default))

    # asking for changes

    def _check_open(self, action):
        if self._frozen:
            raise RuntimeError(f"session.{action}() after the response headers were started: too late to write back")
        if self._destroy and action != "revoke_user":
            raise RuntimeError(f"session.{action}() after session.destroy() in the same request")

    def set(self, key, value):
        """Sets a top-level key. None deletes it (JSON Merge Patch has no stored null)."""
        self._check_open("set")
        if not isinstance(key, str):
            raise TypeError("session keys are strings")
        if key in RESERVED_KEYS:
            raise SessionGatewayError("reserved_key", f"{key!r} belongs to the gateway")
        _to_json(value)  # fail now, in the app's code, if the value is not JSON
        self._pending[key] = copy.deepcopy(value)

    def delete(self, key):
        self.set(key, None)

    def regenerate(self):
        """New session id, data kept: call it at login (session fixation)."""
        self._check_open("regenerate")
        self._regenerate = True

    def destroy(self):
        """End the session (logout). Drops the changes asked for earlier in this request."""
        self._check_open("destroy")
        self._destroy = True
        self._pending.clear()
        self._regenerate = False

    def revoke_user(self):
        """Destroy every session of this session's user (logout everywhere)."""
        self._check_open("revoke_user")
        self._revoke_user = True

    def changes(self):
        """The write-back request as build_write_back keyword arguments; None when nothing changed."""
        patch = {}
        known = self.data or {}
        for key, value in self._pending.items():
            if value is None:
                # Sent even when the token did not show the key: the mount may write keys it
                # cannot read, and deleting an absent key is harmless.
                patch[key] = None
            elif key not in known or not _same_json(known[key], value):
                patch[key] = _merge_diff(known.get(key), value)
        if not (patch or self._regenerate or self._destroy or self._revoke_user):
            return None
        return {"set": patch or None, "regenerate": self._regenerate,
                "destroy": self._destroy, "revoke_user": self._revoke_user}

    def freeze(self):
        """Called once the response headers are on their way: later changes would be lost."""
        self._frozen = True


# --- building the write-back (PROTOCOL.md §6) -------------------------------------


def _binding(session):
    """aud and sid of the request token and the request's rid, from a Session or a mapping."""
    if isinstance(session, dict):
        return {"aud": session["aud"], "rid": session["rid"], "sid": session["sid"]}
    return {"aud": session.aud, "rid": session.rid, "sid": session.sid}


def _write_back_payload(binding, set, regenerate, destroy, revoke_user):
    if set is not None and not isinstance(set, dict):
        raise TypeError("set must be a dict (a JSON Merge Patch over the session data)")
    if destroy and (set is not None or regenerate):
        raise SessionGatewayError("malformed", "destroy excludes set and regenerate")
    if set is None and not (regenerate or destroy or revoke_user):
        raise SessionGatewayError("malformed", "a write-back must ask for something")
    for key in (set or {}):
        if key in RESERVED_KEYS:
            raise SessionGatewayError("reserved_key", f"{key!r} belongs to the gateway")
    payload = {"v": PROTOCOL_VERSION, **binding}
    if set is not None:
        payload["set"] = set
    for name, flag in (("regenerate", regenerate), ("destroy", destroy), ("revokeUser", revoke_user)):
        if flag:
            payload[name] = True
    return payload


def build_write_back(session, key_id, key, set=None, regenerate=False, destroy=False, revoke_user=False):
    """The value of the X-Session-Gateway-Write header (HS256 under the derived mount key).

    ``session``: the verified Session (or a mapping with aud, rid, sid) the response answers;
    ``rid`` is that request's X-Session-Gateway-Rid value, which a Session already holds.
    ``set``: a JSON Merge Patch: a value sets a key, None deletes it, dicts merge.
    Raises SessionGatewayError with the code the gateway would refuse it with, where
    the helper can tell (malformed, reserved_key, too_large).
    """
    if not isinstance(key_id, str):
        raise TypeError("key_id is the kid string")
    payload = _write_back_payload(_binding(session), set, regenerate, destroy, revoke_user)
    header = b64url_encode(_to_json({"alg": "HS256", "kid": key_id, "typ": "JWT"}).encode("utf-8"))
    signing_input = f"{header}.{b64url_encode(_to_json(payload).encode('utf-8'))}"
    mac = hmac.new(_key_bytes(key_id, key), signing_input.encode("ascii"), hashlib.sha256).digest()
    value = f"{signing_input}.{b64url_encode(mac)}"
    if len(value) > MAX_WRITE_BACK_BYTES:
        raise SessionGatewayError("too_large", f"write-back is {len(value)} bytes, limit {MAX_WRITE_BACK_BYTES}")
    return value


# --- WSGI middleware --------------------------------------------------------------


class SessionGatewayMiddleware:
    """Verifies the token and the rid header and puts the Session in environ["session_gateway.session"].

    Changes the app asks for (session.set/delete/regenerate/destroy/revoke_user)
    before it calls start_response become the X-Session-Gateway-Write header.

    A missing or bad token, or a missing or malformed X-Session-Gateway-Rid header
    (``malformed``), is logged to wsgi.errors with its code; the app then gets
    environ["session_gateway.session"] = None and the error in
    environ["session_gateway.error"], and decides (treat as anonymous, or answer 401).

    ``mount``/``keys`` default to keys_from_env(). With ``alg="EdDSA"``, ``keys`` are
    the public keys and ``write_keys`` the derived mount keys (write-backs are HS256).
    """

    def __init__(self, app, *, mount=None, keys=None, alg="HS256", write_keys=None,
                 skew=DEFAULT_SKEW_SECONDS, clock=time.time):
        if mount is None or keys is None:
            config = keys_from_env()
            mount = config["mount"] if mount is None else mount
            keys = config["keys"] if keys is None else keys
        if alg == "EdDSA" and write_keys is None:
            raise ValueError("with alg='EdDSA' pass write_keys: the derived mount keys that sign write-backs")
        self.app = app
        self.mount = mount
        self.alg = alg
        self.keys = _normalise_keys(keys)
        self.write_keys = _normalise_keys(write_keys if write_keys is not None else keys)
        self.skew = skew
        self.clock = clock

    def __call__(self, environ, start_response):
        session = self._session(environ)

        def start_response_with_write_back(status, headers, exc_info=None):
            if session is not None:
                session.freeze()
                headers = self._with_write_back(environ, session, headers)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, start_response_with_write_back)

    def _session(self, environ):
        try:
            session = verify_token(environ, mount=self.mount, keys=self.keys, alg=self.alg,
                                   now=int(self.clock()), skew=self.skew)
        except SessionGatewayError as error:
            environ[ENVIRON_ERROR_KEY] = error
            environ[ENVIRON_KEY] = None
            self._log(environ, f"session-gateway: token refused ({error.code}): {error.message}")
            return None
        environ[ENVIRON_KEY] = session
        return session

    def _with_write_back(self, environ, session, headers):
        # The middleware owns the header: one write-back per response, built from the Session.
        kept = [(n, v) for n, v in headers if n.lower() != _WRITE_NAME]
        if len(kept) != len(headers):
            self._log(environ, "session-gateway: removed an X-Session-Gateway-Write header set by the app")
        headers = kept
        changes = session.changes()
        if changes is not None:
            kid = session.kid if session.kid in self.write_keys else next(iter(self.write_keys))
            headers.append((WRITE_HEADER, build_write_back(session, kid, self.write_keys[kid], **changes)))
        return headers

    @staticmethod
    def _log(environ, line):
        stream = environ.get("wsgi.errors")
        if stream is not None:
            stream.write(line + "\n")

"""Tests for session_gateway.py: every protocol-v2 vector, the rid header, the write-back builder, the WSGI middleware.

Run from the repository root:  python3 -m unittest discover -s helpers/python -v
"""

import base64
import hashlib
import hmac
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest
from wsgiref.simple_server import WSGIRequestHandler, make_server

import session_gateway as sg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VECTORS_PATH = os.path.join(REPO, "test", "vectors", "protocol-v2.json")
with open(VECTORS_PATH, encoding="utf-8") as f:
    VECTORS = json.load(f)

NO_CRYPTOGRAPHY = "EdDSA needs the 'cryptography' package, which is not importable here"
SECRET = VECTORS["keys"]["secrets"]["2026-11"]
SHOP_KEYS = VECTORS["keys"]["mountKeys"]["shop"]
BLOG_KEYS = VECTORS["keys"]["mountKeys"]["blog"]
RID = "bS1hA8z8kQ2x0mZ7nJ9c_w"  # an X-Session-Gateway-Rid value: 16 bytes, base64url


# --- test-side JWS tools, written independently of the module under test ---------


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jws_parts(value):
    h, p, s = value.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), h, p, s


def hs256_ok(value, key_text):
    h, p, s = value.split(".")
    mac = hmac.new(b64d(key_text), f"{h}.{p}".encode("ascii"), hashlib.sha256).digest()
    return hmac.compare_digest(mac, b64d(s))


def new_rid():
    """A fresh X-Session-Gateway-Rid, as the gateway makes one per request."""
    return b64e(os.urandom(16))


def canonical(value):
    """Strict JSON equality: Python's == would call True equal to 1."""
    return json.dumps(value, sort_keys=True)


def mint_token(payload, kid="2026-11", key_text=SHOP_KEYS["2026-11"], alg="HS256"):
    """A request token as the gateway signs it (HS256)."""
    h = b64e(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    p = b64e(json.dumps(payload).encode())
    mac = hmac.new(b64d(key_text), f"{h}.{p}".encode("ascii"), hashlib.sha256).digest()
    return f"{h}.{p}.{b64e(mac)}"


def fresh_payload(**overrides):
    now = int(time.time())
    payload = {"v": 2, "iss": "session-gateway", "aud": "shop", "iat": now, "exp": now + 60,
               "sid": "Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe",
               "idleExp": now + 1800, "absExp": now + 43200,
               "data": {"user": {"id": 42, "name": "Ada"}, "cart": [1, 2, 3], "note": "hi"}}
    payload.update(overrides)
    return payload


def apply_merge_patch(target, patch):
    """RFC 7396 §2, as the gateway applies a write-back's set."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = apply_merge_patch(result.get(k), v)
    return result


def vector_keys(vector):
    if vector["alg"] == "EdDSA":
        return sg.public_keys_from_jwks(VECTORS["keys"]["jwks"])
    return VECTORS["keys"]["mountKeys"][vector["mount"]]


def needs_ed25519(vector):
    """True when verifying reaches the Ed25519 signature check."""
    if vector["alg"] != "EdDSA":
        return False
    try:
        return jws_parts(vector["token"])[0].get("alg") == "EdDSA"
    except Exception:
        return False


# --- token vectors: one test per vector, generated ------------------------------


class TokenVectorTests(unittest.TestCase):
    def test_every_vector_is_generated(self):
        names = [n for n in dir(self) if n.startswith("test_vector_")]
        self.assertEqual(len(names), len(VECTORS["tokens"]["valid"]) + len(VECTORS["tokens"]["invalid"]))

    def test_derived_mount_keys_match_vectors(self):
        for mount, by_kid in VECTORS["keys"]["mountKeys"].items():
            for kid, key_text in by_kid.items():
                derived = sg.derive_mount_key(VECTORS["keys"]["secrets"][kid], mount)
                self.assertEqual(sg.b64url_encode(derived), key_text, f"{mount}/{kid}")


def vector_environ(vector):
    """The vector's headers as a WSGI server presents them (None: the header was not sent)."""
    environ = {"REQUEST_METHOD": "GET"}
    if vector["token"] is not None:
        environ["HTTP_X_SESSION_GATEWAY_TOKEN"] = vector["token"]
    if vector["rid"] is not None:
        environ["HTTP_X_SESSION_GATEWAY_RID"] = vector["rid"]
    return environ


def verify_vector(vector, as_environ=False):
    options = dict(mount=vector["mount"], keys=vector_keys(vector), alg=vector["alg"], now=vector["now"],
                   skew=VECTORS["skewSeconds"])
    if as_environ:
        return sg.verify_token(vector_environ(vector), **options)
    return sg.verify_token(vector["token"], vector["rid"], **options)


def _valid_vector_test(vector):
    def test(self):
        if needs_ed25519(vector) and not sg.EDDSA_AVAILABLE:
            self.skipTest(NO_CRYPTOGRAPHY)
        session = verify_vector(vector)
        self.assertEqual(canonical(session.claims()), canonical(vector["expect"]))
        self.assertEqual(session.rid, vector["rid"])
        self.assertEqual(canonical(verify_vector(vector, as_environ=True).claims()), canonical(vector["expect"]))
        self.assertEqual((session.sid, session.rid, session.aud, session.data_omitted),
                         (vector["expect"]["sid"], vector["expect"]["rid"], vector["expect"]["aud"],
                          vector["expect"]["dataOmitted"]))
        self.assertEqual((session.idle_exp, session.abs_exp),
                         (vector["expect"]["idleExp"], vector["expect"]["absExp"]))
    return test


def _invalid_vector_test(vector):
    def test(self):
        if needs_ed25519(vector) and not sg.EDDSA_AVAILABLE:
            self.skipTest(NO_CRYPTOGRAPHY)
        for as_environ in (False, True):
            with self.subTest(as_environ=as_environ), self.assertRaises(sg.SessionGatewayError) as caught:
                verify_vector(vector, as_environ)
            self.assertEqual(caught.exception.code, vector["error"], str(caught.exception))
    return test


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


for _i, _v in enumerate(VECTORS["tokens"]["valid"]):
    setattr(TokenVectorTests, f"test_vector_valid_{_i:02d}_{_slug(_v['name'])}", _valid_vector_test(_v))
for _i, _v in enumerate(VECTORS["tokens"]["invalid"]):
    setattr(TokenVectorTests, f"test_vector_invalid_{_i:02d}_{_slug(_v['name'])}", _invalid_vector_test(_v))


class EdDSAWithoutCryptographyTests(unittest.TestCase):
    """Runs a fresh interpreter in which `cryptography` cannot be imported."""

    SCRIPT = r"""
import json, sys
sys.modules["cryptography"] = None  # makes every `import cryptography...` fail
sys.path.insert(0, sys.argv[1])
import session_gateway as sg
vectors = json.load(open(sys.argv[2], encoding="utf-8"))
out = {"available": sg.EDDSA_AVAILABLE}
for v in vectors["tokens"]["valid"]:
    keys = sg.public_keys_from_jwks(vectors["keys"]["jwks"]) if v["alg"] == "EdDSA" else vectors["keys"]["mountKeys"]["shop"]
    try:
        sg.verify_token(v["token"], v["rid"], mount="shop", keys=keys, alg=v["alg"], now=v["now"])
        out[v["name"]] = "ok"
    except sg.SessionGatewayError as e:
        out[v["name"]] = [e.code, str(e)]
print(json.dumps(out))
"""

    def test_eddsa_refused_clearly_hs256_unaffected(self):
        run = subprocess.run([sys.executable, "-c", self.SCRIPT, HERE, VECTORS_PATH],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        out = json.loads(run.stdout)
        self.assertFalse(out["available"])
        code, message = out["EdDSA token"]
        self.assertEqual(code, "unsupported_algorithm")
        self.assertIn("cryptography", message)
        self.assertEqual(out["session with data, newest key"], "ok")


# --- header lookup and configuration ----------------------------------------------


class HeaderAndKeyTests(unittest.TestCase):
    V = VECTORS["tokens"]["valid"][0]

    def verify(self, headers, *rid):
        """A headers mapping, or a token value followed by the rid value."""
        return sg.verify_token(headers, *rid, mount="shop", keys=SHOP_KEYS, now=self.V["now"])

    def code_of(self, headers, *rid):
        with self.assertRaises(sg.SessionGatewayError) as caught:
            self.verify(headers, *rid)
        return caught.exception.code

    def test_lookup_is_case_insensitive_and_reads_wsgi_environ(self):
        token, rid = self.V["token"], self.V["rid"]
        for headers in ({"x-session-gateway-token": token, "x-session-gateway-rid": rid},
                        {"X-SESSION-GATEWAY-TOKEN": token, "X-Session-Gateway-Rid": rid},
                        {"HTTP_X_SESSION_GATEWAY_TOKEN": token, "HTTP_X_SESSION_GATEWAY_RID": rid},
                        {"X_Session_Gateway_Token": token, "X_Session_Gateway_Rid": rid},
                        {"x-session-gateway-token": token.encode("ascii"),
                         "x-session-gateway-rid": rid.encode("ascii")}):
            with self.subTest(headers=list(headers)):
                session = self.verify(headers)
                self.assertEqual((session.sid, session.rid), (self.V["expect"]["sid"], rid))

    def test_missing_header_in_mapping(self):
        self.assertEqual(self.code_of({"Content-Type": "text/html", "X-Session-Gateway-Write": "x",
                                       "X-Session-Gateway-Rid": RID}), "missing")
        self.assertEqual(self.code_of({"Content-Type": "text/html"}), "missing")  # token first
        for value in (None, "", b""):
            for rid in (RID, None):
                with self.subTest(value=value, rid=rid):
                    self.assertEqual(self.code_of(value, rid), "missing")

    def test_rid_missing_or_malformed_is_malformed(self):
        token = self.V["token"]
        self.assertEqual(self.verify(token, RID).rid, RID)  # the same token verifies with a good rid
        for rid in (None, "", RID[:-1], RID + "A", RID + "\n", " " + RID[1:], RID[:-1] + "=",
                    RID[:-1] + "+", RID[:-1] + "/", RID[:-1] + "\u00e9",
                    RID.encode("ascii")[:-1] + b"\xe9", f"{RID}, {RID}", f"{RID},{RID}", 12345):
            with self.subTest(rid=rid):
                self.assertEqual(self.code_of(token, rid), "malformed")
        self.assertEqual(self.code_of({"x-session-gateway-token": token}), "malformed")
        self.assertEqual(self.code_of({"HTTP_X_SESSION_GATEWAY_TOKEN": token,
                                       "HTTP_X_SESSION_GATEWAY_RID": RID[:21]}), "malformed")

    def test_rid_in_two_spellings_is_refused_even_when_equal(self):
        # As the gateway's reader joins repeated headers with ", ", which fails step 11.
        token = self.V["token"]
        for second in (RID, new_rid()):
            with self.subTest(second=second):
                self.assertEqual(self.code_of({"HTTP_X_SESSION_GATEWAY_TOKEN": token,
                                               "HTTP_X_SESSION_GATEWAY_RID": RID,
                                               "x-session-gateway-rid": second}), "malformed")

    def test_token_errors_come_before_rid_errors(self):
        forged = mint_token(fresh_payload(), key_text=BLOG_KEYS["2026-11"])
        stale = mint_token(fresh_payload(iat=1000, exp=1060))
        for token, code in ((forged, "bad_signature"), (stale, "stale"),
                            (mint_token(fresh_payload(aud="blog")), "wrong_audience"),
                            (mint_token(fresh_payload(v=1, rid=RID)), "unsupported_version")):
            for rid in (None, "short", f"{RID}, {RID}"):
                with self.subTest(code=code, rid=rid):
                    with self.assertRaises(sg.SessionGatewayError) as caught:
                        sg.verify_token(token, rid, mount="shop", keys=SHOP_KEYS, now=int(time.time()))
                    self.assertEqual(caught.exception.code, code)
                    with self.assertRaises(sg.SessionGatewayError) as caught:
                        sg.verify_token({"HTTP_X_SESSION_GATEWAY_TOKEN": token, **({} if rid is None else
                                         {"HTTP_X_SESSION_GATEWAY_RID": rid})},
                                        mount="shop", keys=SHOP_KEYS, now=int(time.time()))
                    self.assertEqual(caught.exception.code, code)

    def test_rid_comes_from_the_header_never_from_the_token(self):
        # A v2 token with a stray "rid" field (unknown fields are ignored): the header wins.
        token = mint_token(fresh_payload(rid="TokenRid0000000000000A"))
        header_rid = new_rid()
        session = sg.verify_token(token, header_rid, mount="shop", keys=SHOP_KEYS, now=int(time.time()))
        self.assertEqual(session.rid, header_rid)
        self.assertEqual(session.claims()["rid"], header_rid)
        value = sg.build_write_back(session, session.kid, SHOP_KEYS[session.kid], set={"cart": []})
        self.assertEqual(jws_parts(value)[1]["rid"], header_rid)
        # ...and a token rid does not stand in for a missing header
        with self.assertRaises(sg.SessionGatewayError) as caught:
            sg.verify_token(token, None, mount="shop", keys=SHOP_KEYS, now=int(time.time()))
        self.assertEqual(caught.exception.code, "malformed")

    def test_same_token_on_two_requests_gives_two_rids(self):
        # PROTOCOL.md §4.4: the gateway reuses a token; each request has its own rid.
        first, second = new_rid(), new_rid()
        self.assertNotEqual(first, second)
        self.assertEqual((self.verify(self.V["token"], first).rid, self.verify(self.V["token"], second).rid),
                         (first, second))

    def test_rid_argument_matches_the_first_argument(self):
        with self.assertRaises(TypeError):
            self.verify(self.V["token"])  # a token value needs the rid value beside it
        with self.assertRaises(TypeError):
            self.verify({"HTTP_X_SESSION_GATEWAY_TOKEN": self.V["token"]}, RID)  # a mapping has its own

    def test_two_different_tokens_are_refused(self):
        other = VECTORS["tokens"]["valid"][1]["token"]
        self.assertEqual(self.code_of({"HTTP_X_SESSION_GATEWAY_TOKEN": self.V["token"], "x-session-gateway-token": other,
                                       "HTTP_X_SESSION_GATEWAY_RID": RID}), "malformed")

    def test_keys_as_bytes(self):
        keys = {kid: b64d(k) for kid, k in SHOP_KEYS.items()}
        self.assertEqual(self.verify(self.V["token"], self.V["rid"]).rid, self.V["expect"]["rid"])
        self.assertEqual(sg.verify_token(self.V["token"], self.V["rid"], mount="shop", keys=keys, now=self.V["now"]).sid,
                         self.V["expect"]["sid"])

    def test_gateway_secret_instead_of_mount_key_is_a_config_error(self):
        with self.assertRaises(ValueError) as caught:
            sg.verify_token(self.V["token"], self.V["rid"], mount="shop", keys={"2026-11": SECRET.encode()},
                            now=self.V["now"])
        self.assertIn("derived mount key", str(caught.exception))

    def test_keys_from_env(self):
        env = {"SESSION_GATEWAY_MOUNT": "shop",
               "SESSION_GATEWAY_KEYS": f"2026-11:{SHOP_KEYS['2026-11']}, 2026-10:{SHOP_KEYS['2026-10']}"}
        config = sg.keys_from_env(env)
        self.assertEqual(config["mount"], "shop")
        self.assertEqual(list(config["keys"]), ["2026-11", "2026-10"])
        self.assertEqual(config["keys"]["2026-10"], b64d(SHOP_KEYS["2026-10"]))
        older = VECTORS["tokens"]["valid"][1]
        self.assertEqual(sg.verify_token(older["token"], older["rid"], now=older["now"], **config).sid,
                         older["expect"]["sid"])

    def test_keys_from_env_refuses_bad_config(self):
        for env in ({}, {"SESSION_GATEWAY_MOUNT": "shop"}, {"SESSION_GATEWAY_MOUNT": "shop", "SESSION_GATEWAY_KEYS": "nokid"},
                    {"SESSION_GATEWAY_MOUNT": "shop", "SESSION_GATEWAY_KEYS": "k:not*base64"}):
            with self.subTest(env=env), self.assertRaises(ValueError):
                sg.keys_from_env(env)

    def test_skew_boundaries_on_both_sides(self):
        # The vectors cover iat at the edge; this covers exp: valid up to exp + skew inclusive.
        token = mint_token(fresh_payload(iat=1000, exp=1060))
        for now, code in ((990, None), (989, "future"), (1070, None), (1071, "stale")):
            with self.subTest(now=now):
                if code is None:
                    self.assertEqual(sg.verify_token(token, RID, mount="shop", keys=SHOP_KEYS, now=now).iat, 1000)
                    continue
                with self.assertRaises(sg.SessionGatewayError) as caught:
                    sg.verify_token(token, RID, mount="shop", keys=SHOP_KEYS, now=now)
                self.assertEqual(caught.exception.code, code)
        with self.assertRaises(sg.SessionGatewayError) as caught:
            sg.verify_token(token, RID, mount="shop", keys=SHOP_KEYS, now=1065, skew=0)
        self.assertEqual(caught.exception.code, "stale")

    def test_base64url_length_remainder_one_is_malformed(self):
        # A lax decoder would drop the extra characters and the signature would still match.
        now = int(time.time())
        good = mint_token(fresh_payload())
        self.assertEqual(sg.verify_token(good, RID, mount="shop", keys=SHOP_KEYS, now=now).sid, fresh_payload()["sid"])
        header, payload, signature = good.split(".")
        self.assertEqual(len(signature), 43)
        pad = "A" * ((1 - len(header)) % 4)  # makes the header's length 1 mod 4
        for bad in (good + "AA", f"{header}{pad}.{payload}.{signature}"):
            with self.assertRaises(sg.SessionGatewayError) as caught:
                sg.verify_token(bad, RID, mount="shop", keys=SHOP_KEYS, now=now)
            self.assertEqual(caught.exception.code, "malformed")

    def test_nan_and_bool_version_are_not_json_integers(self):
        now = int(time.time())
        for payload, code in ((fresh_payload(v=True), "unsupported_version"),
                              (fresh_payload(iat=True), "malformed"),
                              (fresh_payload(idleExp=1.5), "malformed")):
            with self.subTest(payload=payload), self.assertRaises(sg.SessionGatewayError) as caught:
                sg.verify_token(mint_token(payload), RID, mount="shop", keys=SHOP_KEYS, now=now)
            self.assertEqual(caught.exception.code, code)
        with self.assertRaises(sg.SessionGatewayError) as caught:
            h = b64e(b'{"alg":"HS256","kid":"2026-11"}')
            p = b64e(b'{"v":2,"iat":NaN}')
            mac = hmac.new(b64d(SHOP_KEYS["2026-11"]), f"{h}.{p}".encode(), hashlib.sha256).digest()
            sg.verify_token(f"{h}.{p}.{b64e(mac)}", RID, mount="shop", keys=SHOP_KEYS, now=now)
        self.assertEqual(caught.exception.code, "malformed")


# --- write-backs -------------------------------------------------------------------


def build_from_vector(vector, binding=None):
    kid = jws_parts(vector["header"])[0]["kid"]
    wb = vector["writeBack"]
    value = sg.build_write_back(binding or vector["binding"], kid, SHOP_KEYS[kid], set=wb.get("set"),
                                regenerate=wb.get("regenerate", False), destroy=wb.get("destroy", False),
                                revoke_user=wb.get("revokeUser", False))
    return kid, value


class WriteBackVectorTests(unittest.TestCase):
    def test_every_valid_write_back_round_trips(self):
        self.assertGreater(len(VECTORS["writeBacks"]["valid"]), 0)
        for vector in VECTORS["writeBacks"]["valid"]:
            with self.subTest(vector["name"]):
                kid, built = build_from_vector(vector)
                header, payload, *_ = jws_parts(built)
                ref_header, ref_payload, *_ = jws_parts(vector["header"])
                self.assertEqual(canonical(header), canonical(ref_header))
                self.assertEqual(canonical(payload), canonical(ref_payload))
                self.assertTrue(hs256_ok(built, SHOP_KEYS[kid]))
                self.assertFalse(hs256_ok(built, BLOG_KEYS[kid]))  # the check can fail
                asked = {k: v for k, v in payload.items() if k not in ("v", "aud", "rid", "sid")}
                self.assertEqual(canonical(asked), canonical(vector["expect"]))

    def test_builder_refuses_what_the_gateway_would_refuse(self):
        binding = VECTORS["writeBacks"]["valid"][0]["binding"]
        key = SHOP_KEYS["2026-11"]
        cases = [({"destroy": True, "set": {"cart": []}}, "malformed"),
                 ({"destroy": True, "regenerate": True}, "malformed"),
                 ({}, "malformed"),
                 ({"set": {"cookie": {"maxAge": 1}}}, "reserved_key"),
                 ({"set": {"_gateway": {}}}, "reserved_key"),
                 ({"set": {"note": "x" * 9000}}, "too_large")]
        for kwargs, code in cases:
            with self.subTest(kwargs=list(kwargs)), self.assertRaises(sg.SessionGatewayError) as caught:
                sg.build_write_back(binding, "2026-11", key, **kwargs)
            self.assertEqual(caught.exception.code, code)
        with self.assertRaises(ValueError):
            sg.build_write_back(binding, "2026-11", key, set={"note": float("nan")})


def _reference_node():
    node = os.path.join(REPO, "node_modules", ".bin", "node")
    return node if os.path.exists(node) else None


# The gateway's own verifier (packages/backend/src/protocol, TypeScript) judging what Python built.
NODE_VERIFY = r"""
import { verifyWriteBack, hs256Key, ProtocolError } from %s;
const input = JSON.parse(process.argv[1]);
const keys = new Map(Object.entries(input.keys).map(([kid, k]) => [kid, hs256Key(kid, Buffer.from(k, 'base64url'))]));
const out = input.cases.map((c) => {
  try {
    return { ok: verifyWriteBack(c.header, { keys, binding: c.binding, reserved: new Set(input.reserved),
                                             mayWrite: (k) => input.write.includes(k) }) };
  } catch (e) { return { error: e instanceof ProtocolError ? e.code : String(e) }; }
});
console.log(JSON.stringify(out));
"""


@unittest.skipIf(_reference_node() is None, "node_modules/.bin/node (Node 24, npm ci) is not installed; "
                 "the cross-check against the gateway's TypeScript verifier needs it")
class ReferenceGatewayCrossCheck(unittest.TestCase):
    def test_gateway_reference_verifier_accepts_python_write_backs(self):
        vectors = VECTORS["writeBacks"]["valid"]
        cases = [{"header": build_from_vector(v)[1], "binding": v["binding"]} for v in vectors]
        # one replay onto another rid, so this check is seen to refuse too
        cases.append({"header": cases[0]["header"], "binding": dict(vectors[0]["binding"], rid="Other0request0nonce000")})
        data = {"keys": SHOP_KEYS, "reserved": VECTORS["writeBacks"]["reserved"],
                "write": VECTORS["writeBacks"]["permissions"]["write"], "cases": cases}
        script = NODE_VERIFY % json.dumps(os.path.join(REPO, "packages", "backend", "src", "protocol", "index.ts"))
        run = subprocess.run([_reference_node(), "--input-type=module", "-e", script, json.dumps(data)],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        self.assertEqual(run.returncode, 0, run.stderr)
        results = json.loads(run.stdout)
        for vector, result in zip(vectors, results):
            self.assertEqual(canonical(result), canonical({"ok": vector["expect"]}), vector["name"])
        self.assertEqual(results[-1], {"error": "replayed"})


# --- Session change tracking -------------------------------------------------------


class SessionChangeTests(unittest.TestCase):
    def session(self, **overrides):
        now = int(time.time())
        return sg.verify_token(mint_token(fresh_payload(**overrides)), RID, mount="shop", keys=SHOP_KEYS, now=now)

    def test_patch_reproduces_what_the_app_set(self):
        s = self.session()
        old = s.data
        s.set("user", {"id": 7})  # replaces the object: "name" must go
        s.set("cart", [1, 2, 3])  # unchanged: not sent
        s.delete("note")
        s.delete("unseen")  # perhaps writable but not readable: the delete is sent
        s.set("promo", {"code": "X"})
        changes = s.changes()
        self.assertEqual(changes["set"], {"user": {"name": None, "id": 7}, "note": None, "unseen": None,
                                          "promo": {"code": "X"}})
        self.assertEqual(apply_merge_patch(old, changes["set"]),
                         {"user": {"id": 7}, "cart": [1, 2, 3], "promo": {"code": "X"}})
        self.assertEqual(s.get("user"), {"id": 7})
        self.assertIsNone(s.get("note"))

    def test_no_changes_means_no_write_back(self):
        s = self.session()
        s.set("cart", [1, 2, 3])
        self.assertIsNone(s.changes())

    def test_true_is_not_one(self):
        s = self.session(data={"flag": 1})
        s.set("flag", True)
        self.assertEqual(s.changes()["set"], {"flag": True})

    def test_destroy_drops_earlier_changes_and_refuses_later_ones(self):
        s = self.session()
        s.set("cart", [9])
        s.regenerate()
        s.destroy()
        self.assertEqual(s.changes(), {"set": None, "regenerate": False, "destroy": True, "revoke_user": False})
        with self.assertRaises(RuntimeError):
            s.set("cart", [1])

    def test_reserved_and_non_json_values_fail_in_app_code(self):
        s = self.session()
        with self.assertRaises(sg.SessionGatewayError):
            s.set("cookie", {})
        with self.assertRaises(TypeError):
            s.set("when", object())


# --- WSGI middleware ---------------------------------------------------------------


def demo_app(environ, start_response):
    """A tiny app: reads the session, and changes it according to the path."""
    session = environ[sg.ENVIRON_KEY]
    path = environ["PATH_INFO"]
    body = {"sid": None, "error": None}
    if session is None:
        body["error"] = environ[sg.ENVIRON_ERROR_KEY].code
    else:
        body.update(sid=session.sid, user=session.get("user"))
        if path == "/cart":
            session.set("cart", (session.get("cart") or []) + [4])
            session.delete("note")
        elif path == "/login":
            session.set("user", {"id": 7, "name": "Grace"})
            session.regenerate()
        elif path == "/logout":
            session.destroy()
    headers = [("Content-Type", "application/json")]
    if path == "/spoof":
        headers.append(("X-Session-Gateway-Write", "forged"))
    start_response("200 OK", headers)
    if path == "/late" and session is not None:
        try:
            session.set("cart", [])
            body["late"] = "accepted"
        except RuntimeError:
            body["late"] = "refused"
    return [json.dumps(body).encode()]


class QuietHandler(WSGIRequestHandler):
    """Keeps the access log quiet and collects wsgi.errors, so tests can read what was logged."""

    errors = io.StringIO()

    def log_message(self, *args):
        pass

    def get_stderr(self):
        return self.errors


class MiddlewareOverHttpTests(unittest.TestCase):
    """The middleware behind a real wsgiref server on 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        app = sg.SessionGatewayMiddleware(demo_app, mount="shop", keys=SHOP_KEYS)
        cls.server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(5)

    def request(self, path, token=None, rid=None, extra=()):
        """GET path with the token and rid headers (each left out when None) and ``extra`` header pairs."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=10)
        try:
            conn.putrequest("GET", path)
            for name, value in ((sg.TOKEN_HEADER, token), (sg.RID_HEADER, rid), *extra):
                if value is not None:
                    conn.putheader(name, value)
            conn.endheaders()
            res = conn.getresponse()
            return res, json.loads(res.read())
        finally:
            conn.close()

    def write_back(self, res, token, rid):
        """The write-back's payload, checked: signed, v 2, bound to the token's aud/sid and this request's rid."""
        value = res.getheader(sg.WRITE_HEADER)
        self.assertIsNotNone(value, "no write-back header")
        header, payload, *_ = jws_parts(value)
        self.assertTrue(hs256_ok(value, SHOP_KEYS[header["kid"]]))
        claims = jws_parts(token)[1]
        self.assertEqual(payload["v"], 2)
        self.assertEqual((payload["aud"], payload["rid"], payload["sid"]), (claims["aud"], rid, claims["sid"]))
        return payload

    def test_read_without_changes_sends_no_write_back(self):
        token = mint_token(fresh_payload())
        res, body = self.request("/read", token, new_rid())
        self.assertEqual(body["user"], {"id": 42, "name": "Ada"})
        self.assertIsNone(res.getheader(sg.WRITE_HEADER))

    def test_set_and_delete(self):
        token, rid = mint_token(fresh_payload()), new_rid()
        res, _ = self.request("/cart", token, rid)
        payload = self.write_back(res, token, rid)
        self.assertEqual(payload["set"], {"cart": [1, 2, 3, 4], "note": None})

    def test_login_regenerates(self):
        token, rid = mint_token(fresh_payload()), new_rid()
        res, _ = self.request("/login", token, rid)
        payload = self.write_back(res, token, rid)
        self.assertEqual(payload["set"], {"user": {"id": 7, "name": "Grace"}})
        self.assertIs(payload["regenerate"], True)

    def test_logout_destroys(self):
        token, rid = mint_token(fresh_payload()), new_rid()
        res, _ = self.request("/logout", token, rid)
        payload = self.write_back(res, token, rid)
        self.assertEqual({k: payload[k] for k in payload if k not in ("v", "aud", "rid", "sid")}, {"destroy": True})

    def test_anonymous_visitor_first_write(self):
        token, rid = mint_token(fresh_payload(sid=None, idleExp=None, absExp=None, data={})), new_rid()
        res, body = self.request("/cart", token, rid)
        self.assertIsNone(body["sid"])
        payload = self.write_back(res, token, rid)
        self.assertIsNone(payload["sid"])
        self.assertEqual(payload["set"], {"cart": [4], "note": None})  # the delete is sent though unseen

    def test_reused_token_each_write_back_bound_to_its_own_rid(self):
        # PROTOCOL.md §4.4: the gateway sends the same token again; only the rid is new.
        token = mint_token(fresh_payload())
        rids = [new_rid(), new_rid()]
        payloads = [self.write_back(self.request("/cart", token, rid)[0], token, rid) for rid in rids]
        self.assertEqual([p["rid"] for p in payloads], rids)
        self.assertNotEqual(payloads[0]["rid"], payloads[1]["rid"])

    def test_missing_or_malformed_rid_header(self):
        token = mint_token(fresh_payload())
        for rid, extra in ((None, ()), ("too-short", ()), (RID + "=", ()),
                           (RID, ((sg.RID_HEADER, RID),)),           # two copies: joined by the server
                           (RID, (("x-session-gateway-rid", new_rid()),))):
            with self.subTest(rid=rid, extra=extra):
                res, body = self.request("/cart", token, rid, extra)
                self.assertEqual(body["error"], "malformed")
                self.assertIsNone(body["sid"])
                self.assertIsNone(res.getheader(sg.WRITE_HEADER))
        self.assertIn("token refused (malformed): no well-formed X-Session-Gateway-Rid", QuietHandler.errors.getvalue())
        res, body = self.request("/cart", token, RID)  # the same token with one good rid
        self.assertEqual(body["sid"], "Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe")
        self.write_back(res, token, RID)

    def test_v1_token_with_rid_inside_is_refused(self):
        v1 = mint_token(fresh_payload(v=1, rid=RID))
        for rid in (RID, None):
            with self.subTest(rid=rid):
                res, body = self.request("/cart", v1, rid)
                self.assertEqual(body["error"], "unsupported_version")
                self.assertIsNone(res.getheader(sg.WRITE_HEADER))

    def test_older_key_signs_the_write_back_with_the_same_kid(self):
        token = mint_token(fresh_payload(), kid="2026-10", key_text=SHOP_KEYS["2026-10"])
        res, _ = self.request("/cart", token, new_rid())
        self.assertEqual(jws_parts(res.getheader(sg.WRITE_HEADER))[0]["kid"], "2026-10")

    def test_changes_after_start_response_are_refused(self):
        res, body = self.request("/late", mint_token(fresh_payload()), new_rid())
        self.assertEqual(body["late"], "refused")
        self.assertIsNone(res.getheader(sg.WRITE_HEADER))

    def test_app_cannot_forge_a_second_write_header(self):
        res, _ = self.request("/spoof", mint_token(fresh_payload()), new_rid())
        self.assertIsNone(res.getheader(sg.WRITE_HEADER))
        self.assertIn("removed an X-Session-Gateway-Write header set by the app", QuietHandler.errors.getvalue())

    def test_missing_and_bad_tokens(self):
        _, body = self.request("/cart", None, new_rid())
        self.assertEqual(body["error"], "missing")
        _, body = self.request("/cart")  # neither header: the token is named first
        self.assertEqual(body["error"], "missing")
        forged = mint_token(fresh_payload(), key_text=BLOG_KEYS["2026-11"])
        res, body = self.request("/cart", forged, new_rid())
        self.assertEqual(body["error"], "bad_signature")
        self.assertIsNone(res.getheader(sg.WRITE_HEADER))
        _, body = self.request("/cart", forged)  # and without a rid header too
        self.assertEqual(body["error"], "bad_signature")
        _, body = self.request("/read", mint_token(fresh_payload(aud="blog")), new_rid())
        self.assertEqual(body["error"], "wrong_audience")
        log = QuietHandler.errors.getvalue()
        for code in ("missing", "bad_signature", "wrong_audience"):
            self.assertIn(f"token refused ({code})", log)


class MiddlewareDirectCallTests(unittest.TestCase):
    """Calls the middleware with an environ dict, to see what it logs."""

    def call(self, app, token, rid=RID):
        errors = io.StringIO()
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/cart", "wsgi.errors": errors}
        if token:
            environ["HTTP_X_SESSION_GATEWAY_TOKEN"] = token
        if rid is not None:
            environ["HTTP_X_SESSION_GATEWAY_RID"] = rid
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, headers

        body = b"".join(app(environ, start_response))
        return environ, seen, json.loads(body), errors.getvalue()

    def test_bad_token_is_logged_with_its_code(self):
        app = sg.SessionGatewayMiddleware(demo_app, mount="shop", keys=SHOP_KEYS)
        stale = mint_token(fresh_payload(iat=int(time.time()) - 200, exp=int(time.time()) - 140))
        environ, seen, body, log = self.call(app, stale)
        self.assertEqual(body["error"], "stale")
        self.assertIn("(stale)", log)
        self.assertIsNone(environ[sg.ENVIRON_KEY])
        self.assertFalse(any(n.lower() == "x-session-gateway-write" for n, _ in seen["headers"]))

    def test_rid_from_the_environ(self):
        app = sg.SessionGatewayMiddleware(demo_app, mount="shop", keys=SHOP_KEYS)
        token, rid = mint_token(fresh_payload()), new_rid()
        environ, seen, body, log = self.call(app, token, rid)
        self.assertEqual((log, body["error"]), ("", None))
        self.assertEqual(environ[sg.ENVIRON_KEY].rid, rid)
        self.assertEqual(jws_parts(dict(seen["headers"])[sg.WRITE_HEADER])[1]["rid"], rid)
        for bad in (None, "", rid[:21], rid + "\n", f"{rid}, {rid}"):
            with self.subTest(rid=bad):
                environ, seen, body, log = self.call(app, token, bad)
                self.assertEqual(body["error"], "malformed")
                self.assertIn("token refused (malformed)", log)
                self.assertIsNone(environ[sg.ENVIRON_KEY])
                self.assertEqual(environ[sg.ENVIRON_ERROR_KEY].code, "malformed")
                self.assertNotIn(sg.WRITE_HEADER, dict(seen["headers"]))

    def test_config_from_environment(self):
        saved = {k: os.environ.get(k) for k in ("SESSION_GATEWAY_MOUNT", "SESSION_GATEWAY_KEYS")}
        os.environ["SESSION_GATEWAY_MOUNT"] = "shop"
        os.environ["SESSION_GATEWAY_KEYS"] = f"2026-11:{SHOP_KEYS['2026-11']}"
        try:
            app = sg.SessionGatewayMiddleware(demo_app)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        _, seen, body, log = self.call(app, mint_token(fresh_payload()))
        self.assertEqual(log, "")
        self.assertEqual(body["sid"], "Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe")
        self.assertEqual(sum(n == sg.WRITE_HEADER for n, _ in seen["headers"]), 1)

    @unittest.skipUnless(sg.EDDSA_AVAILABLE, NO_CRYPTOGRAPHY)
    def test_eddsa_mode_needs_write_keys(self):
        public = sg.public_keys_from_jwks(VECTORS["keys"]["jwks"])
        with self.assertRaises(ValueError):
            sg.SessionGatewayMiddleware(demo_app, mount="shop", keys=public, alg="EdDSA")
        vector = next(v for v in VECTORS["tokens"]["valid"] if v["alg"] == "EdDSA")
        app = sg.SessionGatewayMiddleware(demo_app, mount="shop", keys=public, alg="EdDSA", write_keys=SHOP_KEYS,
                                          clock=lambda: vector["now"])
        _, seen, body, _ = self.call(app, vector["token"], vector["rid"])
        self.assertEqual(body["sid"], vector["expect"]["sid"])
        value = dict(seen["headers"])[sg.WRITE_HEADER]
        self.assertEqual(jws_parts(value)[0], {"alg": "HS256", "kid": "2026-11", "typ": "JWT"})
        self.assertTrue(hs256_ok(value, SHOP_KEYS["2026-11"]))
        self.assertEqual(jws_parts(value)[1]["rid"], vector["rid"])


if __name__ == "__main__":
    unittest.main()

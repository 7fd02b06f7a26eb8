#!/usr/bin/python3
"""Fake Commerce Layer auth server for cl-tokend's integration tests.

Faithful where the daemon depends on upstream behaviour (see README.md in this folder for
the list), and able to misbehave on demand through /_fake/control.

Runs on Debian's /usr/bin/python3 with the standard library and python3-cryptography only.
It binds loopback only and never logs a secret, a password or a token.

    fake_auth.py --listen 127.0.0.1:0 --cert server.pem --key server.key \
                 --config fake.json --port-file fake.port

prints "LISTENING <port>" on stdout once the socket accepts connections.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import hashlib
import hmac
import http.server
import ipaddress
import json
import math
import os
import re
import secrets
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from collections import deque
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SERVER_NAME = "fake-commercelayer-auth/1"

# Upstream defaults: 2 h integration, 4 h sales channel,
# refresh tokens 2 weeks, about 30 token requests per minute per client IP.
DEFAULT_LIFETIME = {"integration": 7200, "sales_channel": 14400}
DEFAULT_REFRESH_TOKEN_LIFETIME = 14 * 24 * 3600
DEFAULT_RATE_LIMIT_PER_MINUTE = 30
# Commerce Layer answers a client_credentials request with the token it already issued until
# that token has 15 minutes left; only then does a request get a new one (both stay valid).
DEFAULT_REISSUE_WINDOW_S = 900
RATE_WINDOW_S = 60.0

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_PASSWORD = "password"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_AUTHORIZATION_CODE = "authorization_code"

# The claim namespace the official js-auth library's createAssertion() uses.
ASSERTION_CLAIMS = "https://commercelayer.io/claims"

MAX_BODY = 64 * 1024
MAX_DRAIN = 1024 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 30.0

# The token modes answer a token that a verifying client must refuse: signed with a key the
# JWKS does not publish, issued to another application, for another scope, by another
# issuer, or with an exp that contradicts expires_in by an hour.
TOKEN_MODES = ("foreign_key", "other_application", "other_scope", "other_issuer", "wrong_exp")
MODES = ("normal", "429", "500", "hang", "reset", "garbage", "truncated", "errors_object",
         "same_token", "slow") + TOKEN_MODES

# Scope grammar of Commerce Layer: "market:all" or "{market|stock_location|store}:{id|code}:X",
# several separated by spaces.
SCOPE_PART = re.compile(r"^(market|stock_location|store):(id|code):([A-Za-z0-9_.\-]+)$")

STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED", 411: "LENGTH_REQUIRED", 413: "PAYLOAD_TOO_LARGE",
                415: "UNSUPPORTED_MEDIA_TYPE", 429: "TOO_MANY_REQUESTS",
                500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
                504: "GATEWAY_TIMEOUT"}

# Doorkeeper's wording (the OAuth server behind Commerce Layer), so error details look real.
OAUTH_DETAILS = {
    "invalid_client": "Client authentication failed due to unknown client, no client "
                      "authentication included, or unsupported authentication method.",
    "invalid_grant": "The provided authorization grant is invalid, expired, revoked, does not "
                     "match the redirection URI used in the authorization request, or was "
                     "issued to another client.",
    "invalid_scope": "The requested scope is invalid, unknown, or malformed.",
    "invalid_request": "The request is missing a required parameter, includes an unsupported "
                       "parameter value, or is otherwise malformed.",
    "unsupported_grant_type": "The authorization grant type is not supported by the "
                              "authorization server.",
    "unauthorized_client": "The client is not authorized to perform this request using this "
                           "method.",
}


def log(msg: str) -> None:
    """One line on stderr; the harness keeps it in a log file next to the test's workdir."""
    try:
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} fake_auth: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_to_b64url(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def error_doc(status: int, title: str, detail: str, code: str | None = None) -> dict:
    """Commerce Layer's auth error document. status is a number here (the Core API's
    INVALID_TOKEN error carries it as a string: the daemon must cope with both)."""
    return {"errors": [{"code": code or STATUS_CODES.get(status, "ERROR"), "title": title,
                        "status": status, "detail": detail}]}


class OAuthError(Exception):
    """An OAuth failure answered with the errors document."""

    def __init__(self, status: int, title: str, detail: str | None = None):
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail or OAUTH_DETAILS.get(title, title)

    def doc(self) -> dict:
        return error_doc(self.status, self.title, self.detail)


class InvalidToken(Exception):
    """A token /api/check or /oauth/revoke does not accept; the message is safe to show."""


# --------------------------------------------------------------------------------------------
# JWT signing (RS512, like Commerce Layer) and the JWKS that publishes the key.
# --------------------------------------------------------------------------------------------
class SigningKey:
    """One RSA key and its JWK; the kid is its RFC 7638 thumbprint."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public = self.private.public_key()
        numbers = self.public.public_numbers()
        self.jwk = {"kty": "RSA", "e": int_to_b64url(numbers.e), "n": int_to_b64url(numbers.n)}
        canonical = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True).encode()
        self.kid = b64url(hashlib.sha256(canonical).digest())


class Signer:
    """RSA keys made at start; tokens from another run of the fake never verify.

    rotate() makes a new signing key and keeps publishing the old ones, as a real rotation
    does while tokens signed by them live. `foreign` is a key never published: signing with
    it is the "foreign_key" misbehaviour."""

    def __init__(self) -> None:
        self.keys = [SigningKey()]          # the last one signs
        self.foreign = SigningKey()

    @property
    def kid(self) -> str:
        return self.keys[-1].kid

    def rotate(self, withdraw: bool = False) -> str:
        """A new signing key; `withdraw` drops the old ones from the JWKS, as after a leak:
        their tokens stop verifying."""
        self.keys = ([] if withdraw else self.keys) + [SigningKey()]
        return self.kid

    def jwks(self) -> dict:
        return {"keys": [dict(k.jwk, kid=k.kid, use="sig", alg="RS512") for k in self.keys]}

    def sign(self, claims: dict, key: SigningKey | None = None) -> str:
        key = key or self.keys[-1]
        header = {"alg": "RS512", "typ": "JWT", "kid": key.kid}
        signing_input = f"{b64url(json_bytes(header))}.{b64url(json_bytes(claims))}"
        signature = key.private.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                     hashes.SHA512())
        return f"{signing_input}.{b64url(signature)}"

    @staticmethod
    def claims_of(token: str) -> dict:
        """The payload of a token this fake made, unchecked (to re-sign it altered)."""
        return json.loads(b64url_decode(token.split(".")[1]))

    def verify(self, token: str) -> dict:
        """Returns the claims of a token this server signed; raises InvalidToken otherwise.
        Expiry is the caller's business: /oauth/revoke accepts expired tokens."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("malformed token")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            raise InvalidToken("malformed token") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        key = next((k for k in self.keys if k.kid == header.get("kid")), None)
        if header.get("alg") != "RS512" or key is None:
            raise InvalidToken("unknown signing key")
        try:
            key.public.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"),
                              padding.PKCS1v15(), hashes.SHA512())
        except InvalidSignature:
            raise InvalidToken("bad signature") from None
        return claims


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Client:
    client_id: str
    client_secret: str | None
    kind: str
    token_lifetime: int
    scope: str | None
    app_id: str

    @property
    def public(self) -> bool:
        return self.client_secret is None

    @staticmethod
    def from_json(obj: Any) -> "Client":
        if not isinstance(obj, dict):
            raise ValueError("a client must be an object")
        cid = obj.get("client_id")
        if not isinstance(cid, str) or not cid:
            raise ValueError("client_id must be a non-empty string")
        kind = obj.get("kind", "integration")
        if kind not in DEFAULT_LIFETIME:
            raise ValueError(f"client {cid}: kind must be integration or sales_channel")
        secret = obj.get("client_secret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise ValueError(f"client {cid}: client_secret must be a non-empty string or null")
        if kind == "integration" and secret is None:
            raise ValueError(f"client {cid}: an integration always has a secret")
        lifetime = obj.get("token_lifetime", DEFAULT_LIFETIME[kind])
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
            raise ValueError(f"client {cid}: token_lifetime must be a positive integer")
        scope = obj.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise ValueError(f"client {cid}: scope must be a string")
        app_id = obj.get("id") or "app-" + hashlib.sha256(cid.encode()).hexdigest()[:10]
        return Client(cid, secret, kind, lifetime, scope, str(app_id))


@dataclasses.dataclass
class User:
    username: str
    password: str
    customer_id: str

    @staticmethod
    def from_json(obj: Any) -> "User":
        if not isinstance(obj, dict):
            raise ValueError("a user must be an object")
        fields = [obj.get(k) for k in ("username", "password", "customer_id")]
        if not all(isinstance(v, str) and v for v in fields):
            raise ValueError("a user needs non-empty username, password and customer_id")
        return User(*fields)


DEFAULT_MARKETS = [
    {"id": "mkt-europe", "code": "europe", "price_list_id": "pl-eur",
     "stock_location_ids": ["sl-eu-1"]},
    {"id": "mkt-usa", "code": "usa", "price_list_id": "pl-usd",
     "stock_location_ids": ["sl-us-1"]},
]


@dataclasses.dataclass
class Config:
    organization: dict
    markets: list
    rate_limit_per_minute: int
    clients: dict
    users: dict
    issuer_template: str
    refresh_token_lifetime: int
    rotate_refresh_tokens: bool
    idle_timeout_s: float
    test: bool
    reissue_window: int = DEFAULT_REISSUE_WINDOW_S

    @staticmethod
    def load(path: str | None) -> "Config":
        raw: dict = {}
        if path:
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
            if not isinstance(raw, dict):
                raise ValueError("config must be a JSON object")
        org = dict(raw.get("organization") or {})
        org.setdefault("id", "org-fake")
        org.setdefault("slug", "fake-org")
        org.setdefault("enterprise", False)
        org.setdefault("region", "eu-west-1")
        markets = raw.get("markets") or DEFAULT_MARKETS
        for market in markets:
            if not isinstance(market, dict) or "id" not in market or "code" not in market:
                raise ValueError("each market needs an id and a code")
        limit = raw.get("rate_limit_per_minute", DEFAULT_RATE_LIMIT_PER_MINUTE)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError("rate_limit_per_minute must be an integer >= 0 (0 = no limit)")
        clients = {}
        for obj in raw.get("clients") or []:
            client = Client.from_json(obj)
            clients[client.client_id] = client
        users = {}
        for obj in raw.get("users") or []:
            user = User.from_json(obj)
            users[user.username] = user
        rt_life = raw.get("refresh_token_lifetime", DEFAULT_REFRESH_TOKEN_LIFETIME)
        if not isinstance(rt_life, int) or rt_life <= 0:
            raise ValueError("refresh_token_lifetime must be a positive integer")
        window = raw.get("reissue_window", DEFAULT_REISSUE_WINDOW_S)
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ValueError("reissue_window must be an integer >= 0 (0 = a new token every time)")
        return Config(
            reissue_window=window,
            organization=org, markets=list(markets), rate_limit_per_minute=limit,
            clients=clients, users=users,
            issuer_template=str(raw.get("issuer") or "https://localhost:{port}"),
            refresh_token_lifetime=rt_life,
            rotate_refresh_tokens=bool(raw.get("rotate_refresh_tokens", True)),
            idle_timeout_s=float(raw.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S)),
            test=bool(raw.get("test", True)))


# --------------------------------------------------------------------------------------------
# Rate limiting and misbehaviour
# --------------------------------------------------------------------------------------------
class RateLimiter:
    """Sliding 60 s window per client IP, like Commerce Layer's auth endpoint.

    Only admitted requests enter the window: a client that keeps knocking while limited is
    not locked out for ever, it gets in again once its oldest admitted request is 60 s old
    (that is also what Retry-After says). limit 0 disables the limiter."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._windows: dict[str, deque] = {}

    def admit(self, key: str, now: float) -> tuple[bool, int]:
        """(True, 0) when admitted, else (False, seconds until a slot frees up)."""
        if self.limit <= 0:
            return True, 0
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - RATE_WINDOW_S:
            window.popleft()
        if len(window) < self.limit:
            window.append(now)
            return True, 0
        return False, max(1, math.ceil(window[0] + RATE_WINDOW_S - now))

    def clear(self) -> None:
        self._windows.clear()


@dataclasses.dataclass
class Misbehaviour:
    mode: str = "normal"
    retry_after: str | None = None
    count: int | None = None          # None: until changed
    delay_ms: int = 0
    clients: list | None = None       # None: every client
    status: int = 500                 # for mode "500": 500, 502, 503, 504

    def as_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_control(body: dict) -> "Misbehaviour":
        mode = body.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        retry_after = body.get("retry_after")
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, (str, int)):
                raise ValueError("retry_after must be a string (seconds or HTTP-date) or int")
            retry_after = str(retry_after)
        count = body.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer")
        delay_ms = body.get("delay_ms", 0)
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError("delay_ms must be an integer >= 0")
        clients = body.get("clients")
        if clients is not None and (not isinstance(clients, list)
                                    or not all(isinstance(c, str) for c in clients)):
            raise ValueError("clients must be a list of client ids")
        status = body.get("status", 500)
        if status not in (500, 502, 503, 504):
            raise ValueError("status must be 500, 502, 503 or 504")
        return Misbehaviour(mode, retry_after, count, delay_ms, clients, status)


CONTROL_KEYS = {"mode", "retry_after", "count", "delay_ms", "clients", "status",
                "rate_limit_per_minute", "reissue_window", "clock_jump_s", "jwks"}
# allowed without a mode
SETTING_KEYS = {"rate_limit_per_minute", "reissue_window", "clock_jump_s", "jwks"}
# How GET /.well-known/jwks.json answers: the key set, a 503, or a document without keys.
JWKS_MODES = ("normal", "503", "empty")


# --------------------------------------------------------------------------------------------
# The authorization server's state and grants (no sockets here)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Grant:
    """One issuance: an access token and maybe its refresh token. Like Doorkeeper's access
    token record, revoking either revokes both."""
    client_id: str
    owner_id: str | None
    scope: str
    access_exp: int
    refresh_token: str | None = None
    refresh_exp: int = 0
    revoked: bool = False
    refresh_used: bool = False   # rotated away: the refresh token no longer works
    jti: str = ""


class AuthState:
    def __init__(self, config: Config, signer: Signer) -> None:
        self.config = config
        self.signer = signer
        self.lock = threading.Lock()
        self.issuer = ""             # set once the port is known
        self.limiter = RateLimiter(config.rate_limit_per_minute)
        self.misbehaviour = Misbehaviour()
        self.jwks_mode = "normal"     # JWKS_MODES
        self.grants: dict[str, Grant] = {}            # jti -> grant
        self.refresh_index: dict[str, str] = {}       # refresh token -> jti
        self.last_issued: dict[str, tuple[dict, int]] = {}  # client_id -> (body, exp)
        # (client_id, scope) -> (body, jti) of the current client_credentials token
        self.current: dict[tuple[str, str], tuple[dict, str]] = {}
        # How far the fake's clock runs ahead of the real one (clock_jump_s adds to it):
        # tokens and answers use the fake's clock, the ledger records the real one.
        self.clock_offset = 0
        # Every token issued and every revocation, in order, with real times: what a chaos
        # run checks each answer of the daemon against (GET /_fake/ledger).
        self.ledger: list[dict] = []
        self._reset_stats()

    # -- stats ---------------------------------------------------------------------------
    def _reset_stats(self) -> None:
        self.stats: dict[str, Any] = {
            "token_requests_total": 0, "token_requests": {}, "by_grant": {}, "by_status": {},
            "rejected_429": 0, "revoked": 0, "revoke_requests_total": 0,
            "tokens_issued": 0, "tokens_reused": 0, "jwks_requests": 0,
            "check_requests_total": 0, "slow_waiting": 0, "requests": []}

    def record_token_request(self, client_id: str | None, grant: str | None,
                             status: int | None, mode: str) -> None:
        """Called with the lock held, before the answer is sent, so a test that reads the
        stats right after its request sees it."""
        st = self.stats
        cid = client_id or ""
        st["token_requests_total"] += 1
        st["token_requests"][cid] = st["token_requests"].get(cid, 0) + 1
        g = grant or ""
        st["by_grant"][g] = st["by_grant"].get(g, 0) + 1
        skey = str(status) if status is not None else "none"
        st["by_status"][skey] = st["by_status"].get(skey, 0) + 1
        if status == 429:
            st["rejected_429"] += 1
        st["requests"].append({"t": time.time(), "client_id": client_id, "grant_type": grant,
                               "status": status, "mode": mode})

    def snapshot(self) -> dict:
        with self.lock:
            doc = json.loads(json.dumps(self.stats))
            doc["mode"] = self.misbehaviour.as_json()
            doc["rate_limit_per_minute"] = self.limiter.limit
            doc["reissue_window"] = self.config.reissue_window
            doc["jwks"] = self.jwks_mode
            doc["clients"] = sorted(self.config.clients)
            # Refresh tokens that would still be accepted, per customer: what a logout
            # must bring to zero, however it raced a refresh.
            now = int(time.time()) + self.clock_offset
            live: dict[str, int] = {}
            for g in self.grants.values():
                if g.refresh_token and not g.revoked and not g.refresh_used and g.refresh_exp > now:
                    live[g.owner_id or ""] = live.get(g.owner_id or "", 0) + 1
            doc["live_refresh_tokens"] = live
            return doc

    def reset(self) -> None:
        with self.lock:
            self._reset_stats()
            self.misbehaviour = Misbehaviour()
            self.jwks_mode = "normal"
            self.limiter.clear()

    # -- misbehaviour --------------------------------------------------------------------
    def altered_token(self, token: str, mode: str) -> str:
        """The token as a misbehaving auth server would hand it out (TOKEN_MODES)."""
        claims = Signer.claims_of(token)
        if mode == "foreign_key":
            return self.signer.sign(claims, self.signer.foreign)
        if mode == "other_application":
            claims["application"] = dict(claims["application"], id="other-app",
                                         client_id="another-application-client-id")
        elif mode == "other_scope":
            claims["scope"] = "market:code:elsewhere"
        elif mode == "other_issuer":
            claims["iss"] = "https://auth.elsewhere.example"
        elif mode == "wrong_exp":
            claims["exp"] = claims["exp"] + 3600
        return self.signer.sign(claims)

    def take_misbehaviour(self, client_id: str | None) -> Misbehaviour | None:
        """The misbehaviour that applies to this token request, consuming one of `count`.
        Lock held by the caller."""
        mb = self.misbehaviour
        if mb.mode == "normal":
            return None
        if mb.clients is not None and client_id not in mb.clients:
            return None
        if mb.count is not None:
            mb.count -= 1
            if mb.count <= 0:
                self.misbehaviour = Misbehaviour()
        return dataclasses.replace(mb)

    # -- client authentication -----------------------------------------------------------
    def authenticate_client(self, params: dict, require_secret: bool) -> Client:
        cid = params.get("client_id")
        if not isinstance(cid, str) or not cid:
            raise OAuthError(401, "invalid_client")
        client = self.config.clients.get(cid)
        if client is None:
            raise OAuthError(401, "invalid_client")
        secret = params.get("client_secret")
        if secret in (None, ""):
            # Sales channels are public clients: client_id alone authenticates them.
            if require_secret or client.kind == "integration":
                raise OAuthError(401, "invalid_client")
        elif not isinstance(secret, str) or client.client_secret is None or \
                not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
            raise OAuthError(401, "invalid_client")
        return client

    # -- scopes --------------------------------------------------------------------------
    def _market(self, attr: str, value: str) -> dict | None:
        for market in self.config.markets:
            if str(market.get(attr)) == value:
                return market
        return None

    def resolve_scope(self, client: Client, requested: Any) -> tuple[str, list[dict]]:
        """The scope to grant and the markets it names. Unknown markets and malformed
        scopes are invalid_scope, like upstream."""
        if requested in (None, ""):
            requested = client.scope or "market:all"
        if not isinstance(requested, str):
            raise OAuthError(400, "invalid_scope")
        parts = requested.split()
        if not parts:
            raise OAuthError(400, "invalid_scope")
        markets: list[dict] = []
        for part in parts:
            if part == "market:all":
                markets.extend(self.config.markets)
                continue
            m = SCOPE_PART.match(part)
            if not m:
                raise OAuthError(400, "invalid_scope")
            resource, attr, value = m.groups()
            if resource == "market":
                market = self._market(attr, value)
                if market is None:
                    raise OAuthError(400, "invalid_scope",
                                     f"The requested scope is invalid: unknown market {part}.")
                markets.append(market)
        unique = list({m["id"]: m for m in markets}.values())
        return " ".join(parts), unique

    # -- issuing -------------------------------------------------------------------------
    def _issue(self, client: Client, scope: str, markets: list[dict], owner_id: str | None,
               now: int, refresh: tuple[str, int] | None = None) -> dict:
        """Signs a token and records its grant. refresh: (refresh token, its expiry)."""
        lifetime = client.token_lifetime
        jti = secrets.token_hex(16)
        claims: dict[str, Any] = {
            "organization": {k: self.config.organization[k]
                             for k in ("id", "slug", "enterprise", "region")},
            "application": {"id": client.app_id, "client_id": client.client_id,
                            "kind": client.kind, "public": client.public},
            "scope": scope,
            "exp": now + lifetime,
            "test": self.config.test,
            "rand": secrets.randbelow(10**9) / 10**9,
            "iat": now,
            "iss": self.issuer,
            "jti": jti,
        }
        if client.kind == "sales_channel":
            first = markets[0] if markets else {}
            claims["market"] = {
                "id": [m["id"] for m in markets],
                "price_list_id": first.get("price_list_id"),
                "stock_location_ids": first.get("stock_location_ids", []),
                "geocoder_id": first.get("geocoder_id"),
                "allows_external_prices": bool(first.get("allows_external_prices", False)),
            }
        if owner_id is not None:
            # Upstream writes the owner type capitalised in the JWT and lower case in the
            # token response (js-auth compares it lower-cased for that reason).
            claims["owner"] = {"id": owner_id, "type": "Customer"}
        body: dict[str, Any] = {"access_token": self.signer.sign(claims), "token_type": "bearer",
                                "expires_in": lifetime, "scope": scope, "created_at": now}
        self.stats["tokens_issued"] += 1
        self.ledger.append({"seq": len(self.ledger), "event": "issued", "jti": jti,
                            "client_id": client.client_id, "owner_id": owner_id,
                            "t": time.time(), "exp": now + lifetime,
                            # the real time at which the token expires, whatever the
                            # fake's clock does later
                            "expires_real": now + lifetime - self.clock_offset})
        grant = Grant(client.client_id, owner_id, scope, now + lifetime, jti=jti)
        if refresh is not None:
            grant.refresh_token, grant.refresh_exp = refresh
            self.refresh_index[grant.refresh_token] = jti
            body["refresh_token"] = grant.refresh_token
        if owner_id is not None:
            body["owner_id"] = owner_id
            body["owner_type"] = "customer"
        self.grants[jti] = grant
        if owner_id is None and refresh is None:
            self.last_issued[client.client_id] = (body, now + lifetime)
            self.current[(client.client_id, scope)] = (body, jti)
        return body

    def reusable(self, client_id: str, scope: str, now: int) -> dict | None:
        """The current client_credentials token for this client and scope while it has more
        than reissue_window left, with expires_in counting down; None once a new one is
        due, or after it was revoked (a revoked token is never handed out again)."""
        entry = self.current.get((client_id, scope))
        if entry is None or self.config.reissue_window <= 0:
            return None
        body, jti = entry
        grant = self.grants.get(jti)
        if grant is None or grant.revoked:
            return None
        left = grant.access_exp - now
        if left <= self.config.reissue_window:
            return None
        self.stats["tokens_reused"] += 1
        return dict(body, expires_in=left)

    def _new_refresh_token(self, now: int) -> tuple[str, int]:
        return secrets.token_urlsafe(32), now + self.config.refresh_token_lifetime

    def token(self, params: dict, now: int) -> dict:
        """The token endpoint proper. Lock held by the caller. Raises OAuthError."""
        grant_type = params.get("grant_type")
        if not isinstance(grant_type, str) or not grant_type:
            raise OAuthError(400, "invalid_request", "The request is missing grant_type.")
        if grant_type == GRANT_CLIENT_CREDENTIALS:
            client = self.authenticate_client(params, require_secret=False)
            scope, markets = self.resolve_scope(client, params.get("scope"))
            return (self.reusable(client.client_id, scope, now)
                    or self._issue(client, scope, markets, None, now))
        if grant_type == GRANT_PASSWORD:
            client = self.authenticate_client(params, require_secret=False)
            if client.kind != "sales_channel":
                raise OAuthError(401, "unauthorized_client")
            username, password = params.get("username"), params.get("password")
            if not isinstance(username, str) or not isinstance(password, str) \
                    or not username or not password:
                raise OAuthError(400, "invalid_request",
                                 "The request is missing username or password.")
            user = self.config.users.get(username)
            if user is None or not hmac.compare_digest(password.encode(),
                                                       user.password.encode()):
                raise OAuthError(401, "invalid_grant")
            scope, markets = self.resolve_scope(client, params.get("scope"))
            return self._issue(client, scope, markets, user.customer_id, now,
                               self._new_refresh_token(now))
        if grant_type == GRANT_REFRESH_TOKEN:
            client = self.authenticate_client(params, require_secret=False)
            rt = params.get("refresh_token")
            if not isinstance(rt, str) or not rt:
                raise OAuthError(400, "invalid_request",
                                 "The request is missing refresh_token.")
            jti = self.refresh_index.get(rt)
            old = self.grants.get(jti) if jti else None
            if old is None or old.client_id != client.client_id or old.revoked \
                    or old.refresh_used or old.refresh_exp <= now:
                raise OAuthError(401, "invalid_grant")
            scope, markets = self.resolve_scope(client, old.scope)
            # Upstream answers with a new refresh token and the old one stops working
            # (rotate_refresh_tokens, the default); without rotation the same refresh token
            # comes back and moves to the new grant. The old access token stays valid
            # until it expires either way.
            old.refresh_used = True
            refresh = (self._new_refresh_token(now) if self.config.rotate_refresh_tokens
                       else (rt, old.refresh_exp))
            return self._issue(client, scope, markets, old.owner_id, now, refresh)
        if grant_type == GRANT_JWT_BEARER:
            # Needs a confidential client (client_secret). The assertion is the JWT that
            # js-auth's createAssertion() makes; its signature is not checked here.
            client = self.authenticate_client(params, require_secret=True)
            owner = self._assertion_owner(params.get("assertion"))
            known = {u.customer_id for u in self.config.users.values()}
            if owner not in known:
                raise OAuthError(401, "invalid_grant")
            scope, markets = self.resolve_scope(client, params.get("scope"))
            return self._issue(client, scope, markets, owner, now,
                               self._new_refresh_token(now))
        if grant_type == GRANT_AUTHORIZATION_CODE:
            # Needs a browser redirect flow the daemon never runs; documented in README.md.
            raise OAuthError(400, "unsupported_grant_type",
                             "authorization_code is not supported by the fake auth server.")
        raise OAuthError(400, "unsupported_grant_type")

    @staticmethod
    def _assertion_owner(assertion: Any) -> str:
        if not isinstance(assertion, str) or not assertion:
            raise OAuthError(400, "invalid_request", "The request is missing assertion.")
        try:
            parts = assertion.split(".")
            payload = json.loads(b64url_decode(parts[1]) if len(parts) == 3 else assertion)
        except (ValueError, binascii.Error, IndexError):
            raise OAuthError(401, "invalid_grant") from None
        claims = payload.get(ASSERTION_CLAIMS, payload) if isinstance(payload, dict) else {}
        owner = claims.get("owner") if isinstance(claims, dict) else None
        if not isinstance(owner, dict) or str(owner.get("type", "")).lower() != "customer" \
                or not isinstance(owner.get("id"), str):
            raise OAuthError(401, "invalid_grant")
        return owner["id"]

    def same_token(self, client_id: str | None, now: int) -> dict | None:
        """The last token issued to this client, with the time it has left: a refresh
        that gains nothing."""
        last = self.last_issued.get(client_id or "")
        if last is None:
            return None
        body, exp = last
        return dict(body, expires_in=max(0, exp - now))

    # -- revoke and check ----------------------------------------------------------------
    def revoke(self, params: dict, now: int) -> None:
        """RFC 7009: 200 whatever the token, once the client authenticated. A token of
        another client is left alone (Doorkeeper does the same)."""
        self.stats["revoke_requests_total"] += 1
        client = self.authenticate_client(params, require_secret=False)
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise OAuthError(400, "invalid_request", "The request is missing token.")
        grant = None
        if token.count(".") == 2:
            try:
                grant = self.grants.get(self.signer.verify(token).get("jti", ""))
            except InvalidToken:
                grant = None
        else:
            jti = self.refresh_index.get(token)
            grant = self.grants.get(jti) if jti else None
        if grant is None or grant.client_id != client.client_id or grant.revoked:
            return
        grant.revoked = True
        self.stats["revoked"] += 1
        self.ledger.append({"seq": len(self.ledger), "event": "revoked", "jti": grant.jti,
                            "client_id": grant.client_id, "owner_id": grant.owner_id,
                            "t": time.time()})

    def check(self, token: str, now: float) -> dict:
        """What the Core API does with a bearer token. Raises InvalidToken."""
        self.stats["check_requests_total"] += 1
        claims = self.signer.verify(token)
        grant = self.grants.get(claims.get("jti", ""))
        if grant is None:
            raise InvalidToken("unknown token")
        if grant.revoked:
            raise InvalidToken("token revoked")
        if claims.get("exp", 0) <= now:
            raise InvalidToken("token expired")
        app = claims.get("application", {})
        return {"ok": True, "client_id": app.get("client_id"), "kind": app.get("kind"),
                "owner_id": grant.owner_id, "scope": claims.get("scope"),
                "exp": claims.get("exp")}


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------
ROUTES = {
    "/oauth/token": ("POST",),
    "/oauth/revoke": ("POST",),
    "/.well-known/jwks.json": ("GET",),
    "/api/check": ("GET",),
    "/_fake/stats": ("GET",),
    "/_fake/ledger": ("GET",),
    "/_fake/control": ("POST",),
    "/_fake/reset": ("POST",),
    "/_fake/rotate_key": ("POST",),
    "/_fake/clients": ("POST",),
    "/_fake/users": ("POST",),
}


class BadRequest(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 with keep-alive: the daemon reuses its upstream connection, so every answer
    # carries Content-Length and the connection stays open unless the client says otherwise.
    protocol_version = "HTTP/1.1"
    server: "FakeAuthServer"

    def version_string(self) -> str:
        return SERVER_NAME

    def setup(self) -> None:
        self.timeout = self.server.state.config.idle_timeout_s
        super().setup()

    # The default per-request log line includes the raw request line; ours is built from
    # what we parsed and never carries a body, a header value or a query string.
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        log(f"{self.client_address[0]} " + (format % args))

    def _access_log(self, status: Any, note: str = "") -> None:
        ms = (time.monotonic() - getattr(self, "_t0", time.monotonic())) * 1000
        path = urllib.parse.urlsplit(getattr(self, "path", "") or "").path or "-"
        log(f"{self.client_address[0]} {self.command or '-'} {path} -> {status} "
            f"{ms:.0f}ms{(' ' + note) if note else ''}")

    # -- responses -----------------------------------------------------------------------
    def send_body(self, status: int, body: bytes, content_type: str = "application/json; "
                  "charset=utf-8", headers: dict | None = None, note: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._access_log(status, note)

    def send_json(self, status: int, obj: Any, headers: dict | None = None,
                  note: str = "") -> None:
        self.send_body(status, json_bytes(obj), headers=headers, note=note)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Protocol errors found by http.server (bad request line, headers too long...):
        JSON like the rest, and the connection closes since the stream may be out of sync."""
        self.close_connection = True
        if not hasattr(self, "_t0"):
            self._t0 = time.monotonic()
        try:
            self.send_json(code, error_doc(code, message or "Bad request", explain or
                                           message or "Malformed HTTP request."))
        except OSError:
            pass

    # -- request body --------------------------------------------------------------------
    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_hdr = self.headers.get("Content-Length")
        if length_hdr is None:
            return b""   # HTTP/1.1: no length and no chunking means no body
        try:
            length = int(length_hdr)
        except ValueError:
            self.close_connection = True
            raise BadRequest(400, "Content-Length is not a number.") from None
        if length < 0:
            self.close_connection = True
            raise BadRequest(400, "Content-Length is negative.")
        if length > MAX_BODY:
            # Read a moderately large body before answering, so the client is not cut off
            # mid-send and sees the 413; beyond that, just answer and close.
            if length <= MAX_DRAIN:
                self.rfile.read(length)
            self.close_connection = True
            raise BadRequest(413, "The request body is too large.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise BadRequest(400, "Malformed chunk size.") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass    # trailers
                return data
            if len(data) + size > MAX_BODY:
                self.close_connection = True
                raise BadRequest(413, "The request body is too large.")
            data += self.rfile.read(size)
            self.rfile.readline(1024)

    def parse_params(self, body: bytes) -> dict:
        """JSON (what Commerce Layer documents) or form encoding (what OAuth clients send
        and upstream accepts too). Unknown fields are ignored, like upstream."""
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(400, "The body is not UTF-8.") from None
            return {k: v[-1] for k, v in urllib.parse.parse_qs(text,
                                                                keep_blank_values=True).items()}
        if not body.strip():
            return {}
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(400, "The body is not valid JSON.") from None
        if not isinstance(obj, dict):
            raise BadRequest(400, "The body must be a JSON object.")
        return obj

    def basic_auth(self, params: dict) -> dict:
        """client_id/client_secret may also come as HTTP Basic (RFC 6749 2.3.1)."""
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic " and "client_id" not in params:
            try:
                cid, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return params
            params = dict(params, client_id=urllib.parse.unquote(cid),
                          client_secret=urllib.parse.unquote(secret))
        return params

    # -- dispatch ------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_OPTIONS(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        self._t0 = time.monotonic()
        path = urllib.parse.urlsplit(self.path).path
        methods = ROUTES.get(path)
        try:
            if methods is None:
                self.discard_body()
                self.send_json(404, error_doc(404, "Not found",
                                              f"No route matches {self.command} {path}."))
                return
            if self.command not in methods:
                self.discard_body()
                self.send_json(405, error_doc(405, "Method not allowed",
                                              f"{path} accepts {', '.join(methods)}."),
                               headers={"Allow": ", ".join(methods)})
                return
            handler = getattr(self, "route_" + path.strip("/").replace("/", "_")
                              .replace(".", "_").replace("-", "_"))
            handler()
        except BadRequest as exc:
            self.send_json(exc.status, error_doc(exc.status, "Bad request", exc.detail))

    def discard_body(self) -> None:
        try:
            self.read_body()
        except BadRequest:
            self.close_connection = True

    # -- /oauth/token --------------------------------------------------------------------
    def route_oauth_token(self) -> None:
        state = self.server.state
        parse_error: BadRequest | None = None
        try:
            params = self.basic_auth(self.parse_params(self.read_body()))
        except BadRequest as exc:
            if exc.status == 413:
                raise
            params, parse_error = {}, exc
        cid = params.get("client_id") if isinstance(params.get("client_id"), str) else None
        grant = params.get("grant_type") if isinstance(params.get("grant_type"), str) else None
        note = f"grant={grant or '-'} client={cid or '-'}"

        with state.lock:
            admitted, retry = state.limiter.admit(self.client_address[0], time.monotonic())
            if not admitted:
                state.record_token_request(cid, grant, 429, "rate_limited")
            mb = state.take_misbehaviour(cid) if admitted else None
        if not admitted:
            self.send_json(429, error_doc(429, "Too many requests",
                                          "Rate limit exceeded: retry later."),
                           headers={"Retry-After": str(retry)}, note=note + " rate-limited")
            return
        mode = mb.mode if mb else "normal"
        if mode == "slow":
            # Counted while held, so a test can act while a request is surely in flight.
            with state.lock:
                state.stats["slow_waiting"] += 1
            try:
                # Interruptible, so stopping the server does not wait for a slow answer.
                self.server.stopping.wait(mb.delay_ms / 1000.0)
            finally:
                with state.lock:
                    state.stats["slow_waiting"] = max(0, state.stats["slow_waiting"] - 1)
        elif mode in ("429", "500", "errors_object"):
            status = {"429": 429, "500": mb.status, "errors_object": 401}[mode]
            with state.lock:
                state.record_token_request(cid, grant, status, mode)
            headers = {}
            if mode == "429":
                doc = error_doc(429, "Too many requests", "Rate limit exceeded: retry later.")
                if mb.retry_after is not None:
                    headers["Retry-After"] = mb.retry_after
            elif mode == "500":
                doc = error_doc(status, "Internal server error",
                                "Something went wrong upstream (fake).")
            else:
                # Upstream sometimes sends `errors` as a single object instead of a list.
                doc = {"errors": error_doc(401, "invalid_client",
                                           OAUTH_DETAILS["invalid_client"])["errors"][0]}
            self.send_json(status, doc, headers=headers, note=f"{note} mode={mode}")
            return
        elif mode in ("hang", "reset", "garbage"):
            with state.lock:
                state.record_token_request(cid, grant, 200 if mode == "garbage" else None, mode)
            if mode == "hang":
                self.hang(note)
            elif mode == "reset":
                self.reset_connection(note)
            else:
                self.send_body(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
                               note=f"{note} mode=garbage")
            return

        with state.lock:
            now = int(time.time()) + state.clock_offset
            body: dict | None = None
            if mode == "same_token" and grant == GRANT_CLIENT_CREDENTIALS:
                body = state.same_token(cid, now)
            if body is not None:
                status = 200
                doc: Any = body
            elif parse_error is not None:
                status, doc = parse_error.status, error_doc(parse_error.status,
                                                            "invalid_request",
                                                            parse_error.detail)
            else:
                try:
                    doc, status = state.token(params, now), 200
                except OAuthError as exc:
                    doc, status = exc.doc(), exc.status
            state.record_token_request(cid, grant, status, mode)
        if mode in TOKEN_MODES and status == 200:
            with state.lock:
                doc = dict(doc, access_token=state.altered_token(doc["access_token"], mode))
        if mode == "truncated":
            self.send_truncated(status, json_bytes(doc), note)
            return
        suffix = f" mode={mode}" if mode != "normal" else ""
        if status != 200:
            suffix += f" error={doc['errors'][0]['title']}"
        self.send_json(status, doc, note=note + suffix)

    def hang(self, note: str) -> None:
        """Hold the request without answering until the client gives up (closes) or the
        server stops; then close without a word."""
        self._access_log("-", note + " mode=hang (holding)")
        sock = self.connection
        sock.settimeout(0.2)
        while not self.server.stopping.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
                if ready and not sock.recv(4096):
                    break       # orderly close by the client
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ValueError):
                break           # reset by the client
        self.close_connection = True
        self._access_log("-", note + " mode=hang (released)")

    def reset_connection(self, note: str) -> None:
        """Abortive close: SO_LINGER 0 makes close() send a TCP RST, what a crashing load
        balancer looks like to the daemon."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self._access_log("RST", note + " mode=reset")

    def send_truncated(self, status: int, body: bytes, note: str) -> None:
        """Headers promise the whole body; half of it arrives, then the connection ends."""
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.server.no_close_notify(self.connection)
        self._access_log(status, note + " mode=truncated")

    # -- /oauth/revoke -------------------------------------------------------------------
    def route_oauth_revoke(self) -> None:
        params = self.basic_auth(self.parse_params(self.read_body()))
        state = self.server.state
        with state.lock:
            try:
                state.revoke(params, int(time.time()) + state.clock_offset)
                status, doc = 200, {}
            except OAuthError as exc:
                status, doc = exc.status, exc.doc()
        self.send_json(status, doc, note=f"client={params.get('client_id') or '-'}")

    # -- /.well-known/jwks.json ----------------------------------------------------------
    def route__well_known_jwks_json(self) -> None:
        self.discard_body()
        state = self.server.state
        with state.lock:
            state.stats["jwks_requests"] += 1
            mode = state.jwks_mode
            doc = state.signer.jwks()
        if mode == "503":
            self.send_json(503, error_doc(503, "Service unavailable", "key set unavailable (fake jwks=503)"))
        elif mode == "empty":
            self.send_json(200, {"keys": []})
        else:
            self.send_json(200, doc)

    # -- /api/check ----------------------------------------------------------------------
    def route_api_check(self) -> None:
        """Stands in for the Core API: 401 INVALID_TOKEN for a revoked, expired or foreign
        token, with status as a string, exactly as upstream writes it."""
        self.discard_body()
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        try:
            if auth[:7].lower() != "bearer " or not auth[7:].strip():
                with state.lock:
                    state.stats["check_requests_total"] += 1
                raise InvalidToken("missing bearer token")
            with state.lock:
                doc = state.check(auth[7:].strip(), time.time() + state.clock_offset)
            self.send_json(200, doc, note=f"client={doc['client_id']}")
        except InvalidToken as exc:
            self.send_json(401, {"errors": [{"title": "Invalid token", "code": "INVALID_TOKEN",
                                             "status": "401", "detail": str(exc)}]},
                           note=str(exc))

    # -- /_fake/* (never rate limited) ---------------------------------------------------
    def _control_body(self) -> dict:
        return self.parse_params(self.read_body())

    def route__fake_stats(self) -> None:
        self.discard_body()
        self.send_json(200, self.server.state.snapshot())

    def route__fake_ledger(self) -> None:
        """The ledger from ?since=N on: {"events":[...], "next": N}."""
        self.discard_body()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        try:
            since = max(0, int(query.get("since", ["0"])[0]))
        except ValueError:
            raise BadRequest(400, "since must be an integer") from None
        state = self.server.state
        with state.lock:
            events = state.ledger[since:]
            doc = {"events": [dict(e) for e in events], "next": since + len(events),
                   "clock_offset_s": state.clock_offset}
        self.send_json(200, doc)

    def route__fake_control(self) -> None:
        body = self._control_body()
        state = self.server.state
        unknown = set(body) - CONTROL_KEYS
        try:
            if unknown:
                raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
            new_mb = Misbehaviour.from_control(body) if "mode" in body else None
            if "mode" not in body and set(body) - SETTING_KEYS:
                raise ValueError("mode is required with retry_after/count/delay_ms/clients")
            limit = body.get("rate_limit_per_minute")
            if limit is not None and (not isinstance(limit, int) or limit < 0):
                raise ValueError("rate_limit_per_minute must be an integer >= 0")
            jump = body.get("clock_jump_s")
            if jump is not None and (not isinstance(jump, int) or isinstance(jump, bool)
                                     or jump < 0):
                raise ValueError("clock_jump_s must be an integer >= 0 (the clock only "
                                 "jumps ahead)")
            window = body.get("reissue_window")
            if window is not None and (not isinstance(window, int) or isinstance(window, bool)
                                       or window < 0):
                raise ValueError("reissue_window must be an integer >= 0 (0 = a new token "
                                 "every time)")
            jwks_mode = body.get("jwks")
            if jwks_mode is not None and jwks_mode not in JWKS_MODES:
                raise ValueError(f"jwks must be one of {', '.join(JWKS_MODES)}")
        except ValueError as exc:
            self.send_json(400, error_doc(400, "Bad request", str(exc)))
            return
        with state.lock:
            if new_mb is not None:
                state.misbehaviour = new_mb
            if limit is not None:
                state.limiter.limit = limit
            if window is not None:
                state.config.reissue_window = window
            if jump is not None:
                state.clock_offset += jump
            if jwks_mode is not None:
                state.jwks_mode = jwks_mode
            doc = {"mode": state.misbehaviour.as_json(),
                   "rate_limit_per_minute": state.limiter.limit,
                   "reissue_window": state.config.reissue_window,
                   "clock_offset_s": state.clock_offset,
                   "jwks": state.jwks_mode}
        self.send_json(200, doc, note=f"mode={doc['mode']['mode']}")

    def route__fake_rotate_key(self) -> None:
        """A new signing key; the old ones stay in the JWKS so their tokens still verify,
        unless the body is {"withdraw": true}."""
        body = self._parse_any()
        if not isinstance(body, dict) or set(body) - {"withdraw"} or not isinstance(body.get("withdraw", False), bool):
            self.send_json(400, {"error": 'body must be empty or {"withdraw": true|false}'})
            return
        state = self.server.state
        with state.lock:
            kid = state.signer.rotate(body.get("withdraw", False))
            if body.get("withdraw", False):
                state.current.clear()  # never hand back a token signed by a withdrawn key
            kids = [k.kid for k in state.signer.keys]
        self.send_json(200, {"kid": kid, "published": kids})

    def route__fake_reset(self) -> None:
        self.discard_body()
        self.server.state.reset()
        self.send_json(200, {"reset": True})

    def route__fake_clients(self) -> None:
        """Add or replace clients at runtime (reload tests). Body: a client object, a list,
        or {"clients":[...], "remove":[client_id...]}."""
        body = self._parse_any()
        items, remove = body, []
        if isinstance(body, dict) and ("clients" in body or "remove" in body):
            items, remove = body.get("clients") or [], body.get("remove") or []
        if isinstance(items, dict):
            items = [items]
        try:
            clients = [Client.from_json(obj) for obj in items]
        except ValueError as exc:
            self.send_json(400, error_doc(400, "Bad request", str(exc)))
            return
        state = self.server.state
        with state.lock:
            for client in clients:
                state.config.clients[client.client_id] = client
            for cid in remove:
                state.config.clients.pop(cid, None)
            ids = sorted(state.config.clients)
        self.send_json(200, {"clients": ids})

    def route__fake_users(self) -> None:
        """Add or replace users: a user object or a list of them."""
        body = self._parse_any()
        items = body.get("users", body) if isinstance(body, dict) else body
        if isinstance(items, dict):
            items = [items]
        try:
            users = [User.from_json(obj) for obj in items]
        except ValueError as exc:
            self.send_json(400, error_doc(400, "Bad request", str(exc)))
            return
        state = self.server.state
        with state.lock:
            for user in users:
                state.config.users[user.username] = user
            count = len(state.config.users)
        self.send_json(200, {"users": count})

    def _parse_any(self) -> Any:
        raw = self.read_body()
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise BadRequest(400, "The body is not valid JSON.") from None


class FakeAuthServer(http.server.ThreadingHTTPServer):
    """Accepts plain TCP in the listening thread and does the TLS handshake in the
    connection's own thread, so a client that connects and never says hello cannot stall
    every other client."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext,
                 state: AuthState) -> None:
        self.ssl_context = context
        self.state = state
        self.stopping = threading.Event()
        self._no_notify: set[int] = set()
        super().__init__(address, Handler)

    def no_close_notify(self, sock: Any) -> None:
        """Mark a connection to end with a bare TCP FIN (no TLS close_notify)."""
        self._no_notify.add(id(sock))

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        try:
            request.settimeout(HANDSHAKE_TIMEOUT_S)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            # e.g. the "wrong certificate host" test: the client refuses our certificate.
            log(f"{client_address[0]} TLS handshake failed: {exc}")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            log(f"{client_address[0]} connection ended: {exc.__class__.__name__}")
        finally:
            self._close_tls(tls)

    def _close_tls(self, tls: ssl.SSLSocket) -> None:
        if tls.fileno() < 0:
            return      # already closed (mode "reset")
        if id(tls) in self._no_notify:
            self._no_notify.discard(id(tls))
        else:
            # Best effort close_notify, so a client that reuses connections sees a clean
            # end rather than a truncation error; never wait long for the peer's answer.
            try:
                tls.settimeout(0.5)
                tls.unwrap().close()
                return
            except (OSError, ValueError, ssl.SSLError):
                pass
        try:
            tls.close()
        except OSError:
            pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log(f"{client_address[0]} internal error: {sys.exc_info()[1]!r}")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    # Test infrastructure: never expose a server with fake credentials beyond loopback.
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address")
    return host, int(port)


def write_port_file(path: str, port: int) -> None:
    """Atomic: a reader never sees an empty or partial file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fake Commerce Layer auth server (tests only).")
    ap.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0),
                    help="HOST:PORT on loopback; port 0 picks a free one (default)")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--config", help="JSON config: organization, clients, users, ...")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--reissue-window", type=int, metavar="SECONDS",
                    help="answer client_credentials with the current token until it has this "
                         f"long left (default {DEFAULT_REISSUE_WINDOW_S}, or the config's "
                         "reissue_window; 0 = a new token every time)")
    args = ap.parse_args(argv)

    try:
        config = Config.load(args.config)
        if args.reissue_window is not None:
            if args.reissue_window < 0:
                raise ValueError("--reissue-window must be >= 0")
            config.reissue_window = args.reissue_window
    except (OSError, ValueError) as exc:
        print(f"fake_auth: bad config: {exc}", file=sys.stderr)
        return 2

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["http/1.1"])

    state = AuthState(config, Signer())
    host, port = args.listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    FakeAuthServer.address_family = family
    server = FakeAuthServer((host, port), context, state)
    port = server.server_address[1]
    state.issuer = config.issuer_template.format(port=port)

    def stop(signum: int, _frame: Any) -> None:
        log(f"signal {signum}: stopping")
        server.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        write_port_file(args.port_file, port)
    log(f"listening on https://{host}:{port} issuer={state.issuer} "
        f"clients={len(config.clients)} users={len(config.users)} "
        f"rate_limit={config.rate_limit_per_minute}/min "
        f"reissue_window={config.reissue_window}s")
    try:
        print(f"LISTENING {port}", flush=True)
    except OSError:
        pass
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

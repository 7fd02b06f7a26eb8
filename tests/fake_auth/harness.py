"""Start and drive the fake Commerce Layer auth server from a test.

    import sys; sys.path.insert(0, "<source>/tests/fake_auth")
    from harness import FakeAuth, INTEGRATION_CLIENT_ID

    with FakeAuth(workdir) as fake:          # default clients and user
        ...point the daemon at fake.url with upstream.ca_file = fake.ca_file...
        assert fake.stats()["token_requests_total"] == 1
        fake.control(mode="429", retry_after="4", count=1)

Standard library only (http.client + ssl, verification ON against the test CA), for
Debian's /usr/bin/python3. Everything started here is stopped by pid.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_AUTH = os.path.join(HERE, "fake_auth.py")
MAKE_TEST_CA = os.path.join(HERE, "make_test_ca.sh")
PYTHON = "/usr/bin/python3"

# ---------------------------------------------------------------------------------------
# Shared identities: integration tests and config/dev.toml use the same values.
# ---------------------------------------------------------------------------------------
ORGANIZATION_ID = "org-fake"
ORGANIZATION_SLUG = "fake-org"

INTEGRATION_CREDENTIAL = "backoffice"            # the daemon's [credentials.<name>]
INTEGRATION_CLIENT_ID = "it-backoffice"
INTEGRATION_CLIENT_SECRET = "s3cr3t-backoffice-value"
INTEGRATION_SCOPE = "market:all"

SALES_CHANNEL_CREDENTIAL = "storefront-eu"
SALES_CHANNEL_CLIENT_ID = "sc-storefront-eu"
SALES_CHANNEL_CLIENT_SECRET = None               # a public client
SALES_CHANNEL_SCOPE = "market:code:europe"

CUSTOMER_USERNAME = "ada@example.com"
CUSTOMER_PASSWORD = "correct horse"
CUSTOMER_ID = "cust-ada"

# Markets the fake knows when the config names none; scopes naming others are invalid_scope.
MARKET_EUROPE_ID = "mkt-europe"
MARKET_USA_ID = "mkt-usa"

DEFAULT_START_TIMEOUT_S = 20.0
DEFAULT_REQUEST_TIMEOUT_S = 10.0


def client(client_id: str, kind: str = "integration", client_secret: str | None = None,
           token_lifetime: int | None = None, scope: str | None = None) -> dict:
    """One client entry of the fake's config (lifetime defaults: 7200 s / 14400 s)."""
    entry: dict[str, Any] = {"client_id": client_id, "client_secret": client_secret,
                             "kind": kind}
    if token_lifetime is not None:
        entry["token_lifetime"] = token_lifetime
    if scope is not None:
        entry["scope"] = scope
    return entry


def default_clients(integration_lifetime: int | None = None,
                    sales_channel_lifetime: int | None = None) -> list[dict]:
    """The integration "backoffice" and the sales channel "storefront-eu"."""
    return [
        client(INTEGRATION_CLIENT_ID, "integration", INTEGRATION_CLIENT_SECRET,
               integration_lifetime, INTEGRATION_SCOPE),
        client(SALES_CHANNEL_CLIENT_ID, "sales_channel", SALES_CHANNEL_CLIENT_SECRET,
               sales_channel_lifetime, SALES_CHANNEL_SCOPE),
    ]


def default_users() -> list[dict]:
    return [{"username": CUSTOMER_USERNAME, "password": CUSTOMER_PASSWORD,
             "customer_id": CUSTOMER_ID}]


def max_requests_in_window(requests: list[dict], window_s: float = 60.0,
                           client_id: str | None = None) -> int:
    """The most token requests that fall in one sliding window of window_s seconds (all
    less than window_s apart), from stats()["requests"]. For checking that the daemon
    never exceeds its budget in any 60 s window."""
    times = sorted(r["t"] for r in requests
                   if client_id is None or r.get("client_id") == client_id)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def make_test_ca(outdir: str) -> None:
    """Creates (or keeps) the test PKI in outdir; see make_test_ca.sh."""
    proc = subprocess.run(["sh", MAKE_TEST_CA, outdir], capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"make_test_ca.sh failed ({proc.returncode}): {proc.stderr}")


class FakeAuthError(RuntimeError):
    pass


class FakeAuth:
    """One fake auth server process.

    workdir holds the test PKI (tls/), the generated config, the port file and the
    server's log (<name>.log), so a failing test can show what the fake saw."""

    def __init__(self, workdir: str, clients: list[dict] | None = None,
                 users: list[dict] | None = None, rate_limit_per_minute: int = 30, *,
                 organization: dict | None = None, markets: list[dict] | None = None,
                 issuer: str | None = None, cert: str = "server",
                 rotate_refresh_tokens: bool = True,
                 refresh_token_lifetime: int | None = None,
                 reissue_window: int | None = None,
                 extra_config: dict | None = None, name: str = "fake_auth",
                 start_timeout: float = DEFAULT_START_TIMEOUT_S, port: int = 0) -> None:
        """cert: "server" (SAN localhost, auth.localhost, 127.0.0.1) or "wronghost"
        (SAN wrong.example only). issuer: a template with {port}; default
        "https://localhost:{port}". port: 0 picks a free one; after stop(), start()
        listens on the port it had, so a test can take the server away (connection
        refused) and bring it back where the daemon looks for it."""
        self.workdir = os.path.abspath(workdir)
        self.tls_dir = os.path.join(self.workdir, "tls")
        self.name = name
        self.cert = cert
        self.start_timeout = start_timeout
        config: dict[str, Any] = {
            "organization": organization or {"id": ORGANIZATION_ID,
                                             "slug": ORGANIZATION_SLUG},
            "rate_limit_per_minute": rate_limit_per_minute,
            "clients": default_clients() if clients is None else clients,
            "users": default_users() if users is None else users,
            "rotate_refresh_tokens": rotate_refresh_tokens,
        }
        if markets is not None:
            config["markets"] = markets
        if issuer is not None:
            config["issuer"] = issuer
        if refresh_token_lifetime is not None:
            config["refresh_token_lifetime"] = refresh_token_lifetime
        if reissue_window is not None:
            config["reissue_window"] = reissue_window
        config.update(extra_config or {})
        self.config = config
        self.config_path = os.path.join(self.workdir, f"{name}.json")
        self.port_file = os.path.join(self.workdir, f"{name}.port")
        self.log_path = os.path.join(self.workdir, f"{name}.log")
        self._proc: subprocess.Popen | None = None
        self._port: int | None = port or None
        self._ssl: ssl.SSLContext | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "FakeAuth":
        if self._proc is not None:
            raise FakeAuthError("already started")
        os.makedirs(self.workdir, exist_ok=True)
        make_test_ca(self.tls_dir)
        with open(self.config_path, "w", encoding="utf-8") as fh:
            json.dump(self.config, fh, indent=2)
        try:
            os.unlink(self.port_file)     # a stale file would announce a dead server
        except FileNotFoundError:
            pass
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                [PYTHON, FAKE_AUTH, "--listen", f"127.0.0.1:{self._port or 0}",
                 "--cert", os.path.join(self.tls_dir, f"{self.cert}.pem"),
                 "--key", os.path.join(self.tls_dir, f"{self.cert}.key"),
                 "--config", self.config_path, "--port-file", self.port_file],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                close_fds=True)
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            port = self._read_port()
            if port is not None:
                self._port = port
                break
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise FakeAuthError(f"fake_auth.py exited with {code} before listening:\n"
                                    f"{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise FakeAuthError(f"fake_auth.py not listening after "
                                    f"{self.start_timeout}s:\n{self.log_text()[-4000:]}")
            time.sleep(0.02)   # polling the port file, bounded by the deadline above
        return self

    def _read_port(self) -> int | None:
        try:
            with open(self.port_file, encoding="ascii") as fh:
                text = fh.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after timeout; always reaps the process."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> "FakeAuth":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise FakeAuthError("not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give the daemon as upstream.auth_url."""
        return f"https://localhost:{self.port}"

    @property
    def ca_file(self) -> str:
        return os.path.join(self.tls_dir, "ca.pem")

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    # -- HTTP ----------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the fake's certificate against the test CA, hostname included."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        return self._ssl

    def request(self, method: str, path: str, body: Any = None,
                headers: dict | None = None,
                timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> tuple[int, dict, bytes]:
        """One request on a fresh connection: (status, headers lower-cased, raw body).
        A dict or list body is sent as JSON, bytes/str as they are."""
        hdrs = dict(headers or {})
        payload: bytes | None
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = body
        conn = http.client.HTTPSConnection("localhost", self.port, timeout=timeout,
                                           context=self.ssl_context())
        try:
            conn.request(method, path, body=payload, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def _json(self, method: str, path: str, body: Any = None,
              headers: dict | None = None) -> tuple[int, Any]:
        status, _, data = self.request(method, path, body, headers)
        return status, (json.loads(data) if data else None)

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, doc = self._json(method, path, body)
        if status != 200:
            raise FakeAuthError(f"{method} {path} -> {status}: {doc}")
        return doc

    def stats(self) -> dict:
        return self._ok("GET", "/_fake/stats")

    def control(self, **kw: Any) -> dict:
        """mode=normal|429|500|hang|reset|garbage|truncated|errors_object|same_token|slow|
        foreign_key|other_application|other_scope|other_issuer|wrong_exp,
        retry_after="4"|HTTP-date, count=N, delay_ms=N, clients=[ids], status=5xx,
        rate_limit_per_minute=N, reissue_window=SECONDS, clock_jump_s=SECONDS, jwks=normal|503|empty
        (the key set endpoint only). See README.md."""
        return self._ok("POST", "/_fake/control", kw)

    def ledger(self, since: int = 0) -> dict:
        """Tokens issued and revoked from event `since` on: {"events", "next", "clock_offset_s"}."""
        return self._ok("GET", f"/_fake/ledger?since={since}")

    def rotate_key(self, withdraw: bool = False) -> dict:
        """A new signing key (new kid); the old keys stay published unless `withdraw`.
        {"kid", "published"}."""
        return self._ok("POST", "/_fake/rotate_key", {"withdraw": True} if withdraw else None)

    def reset(self) -> dict:
        """Clears stats, the misbehaviour and the rate limiter's window (tokens stay valid)."""
        return self._ok("POST", "/_fake/reset")

    def add_client(self, client_id: str, kind: str = "integration",
                   client_secret: str | None = None, token_lifetime: int | None = None,
                   scope: str | None = None) -> dict:
        """Adds or replaces a client at runtime (for reload tests)."""
        return self.add_clients([client(client_id, kind, client_secret, token_lifetime,
                                        scope)])

    def add_clients(self, clients: list[dict]) -> dict:
        return self._ok("POST", "/_fake/clients", {"clients": clients})

    def remove_client(self, client_id: str) -> dict:
        return self._ok("POST", "/_fake/clients", {"remove": [client_id]})

    def add_user(self, username: str, password: str, customer_id: str) -> dict:
        return self._ok("POST", "/_fake/users", {"username": username, "password": password,
                                                 "customer_id": customer_id})

    def token(self, **params: Any) -> tuple[int, Any]:
        """POST /oauth/token with these JSON params: (status, document). Counts against
        the fake's rate limit like any token request."""
        return self._json("POST", "/oauth/token", params)

    def revoke(self, token: str, client_id: str,
               client_secret: str | None = None) -> tuple[int, Any]:
        body = {"client_id": client_id, "token": token}
        if client_secret is not None:
            body["client_secret"] = client_secret
        return self._json("POST", "/oauth/revoke", body)

    def check(self, token: str) -> tuple[int, Any]:
        """GET /api/check as the Core API would: (200, {"ok":true,...}) or (401, errors)."""
        return self._json("GET", "/api/check", headers={"Authorization": f"Bearer {token}"})

    def wait_stats(self, predicate: Callable[[dict], bool], timeout: float = 10.0,
                   interval: float = 0.05) -> dict:
        """Polls /_fake/stats until predicate(stats) holds; raises after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.stats()
            if predicate(doc):
                return doc
            if time.monotonic() > deadline:
                raise FakeAuthError(f"stats condition not met within {timeout}s: {doc}")
            time.sleep(interval)


def main() -> int:
    """Run a fake by hand for a demo: prints its URL and CA file, stops on Ctrl-C/SIGTERM."""
    import argparse
    import tempfile
    ap = argparse.ArgumentParser(description="Run the fake auth server with default clients.")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rate-limit", type=int, default=30)
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="fake_auth.")

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with FakeAuth(workdir, rate_limit_per_minute=args.rate_limit) as fake:
        print(f"url={fake.url} ca_file={fake.ca_file} log={fake.log_path}", flush=True)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

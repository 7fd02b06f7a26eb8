"""Runs the real cl-tokend and cl-tokenctl against the fake auth server.

Binaries come from the environment CTest sets (CL_TOKEND, CL_TOKENCTL); the source tree
from CLTOKEN_SOURCE_DIR. Every process started here is stopped by pid. Nothing sleeps to
let time pass: waits poll a condition with a deadline.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any, Callable

SOURCE_DIR = os.environ.get("CLTOKEN_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "fake_auth"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "schema"))

import harness as fake_harness  # noqa: E402  (tests/fake_auth/harness.py)
from harness import FakeAuth  # noqa: E402,F401

CL_TOKEND = os.environ.get("CL_TOKEND", os.path.join(SOURCE_DIR, "build", "daemon", "cl-tokend"))
CL_TOKENCTL = os.environ.get("CL_TOKENCTL", os.path.join(SOURCE_DIR, "build", "daemon", "ctl", "cl-tokenctl"))


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls condition until it returns something truthy; fails with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # the condition may fail until the thing is up
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


def metric(text: str, name: str, labels: str) -> float:
    """The value of one sample of a /metrics exposition."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name}{{{labels}}} in /metrics")


def make_workdir(prefix: str = "cltok-") -> str:
    """A short, world-traversable folder (socket paths are limited to 107 bytes, and tests
    run clients as other users)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: keep-alive like a real sibling service."""

    def __init__(self, path: str, timeout: float = 30.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:200]!r}>"


class Client:
    """One keep-alive connection to the daemon."""

    def __init__(self, socket_path: str, timeout: float = 30.0):
        self.conn = UnixHTTPConnection(socket_path, timeout)

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> Response:
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=hdrs)
        r = self.conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


DEFAULT_CREDENTIALS = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
scope = "{it_scope}"
allow = ["*"]

[credentials.storefront-eu]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["*"]
"""


class Daemon:
    """One cl-tokend process with a config written for the given fake server."""

    def __init__(self, workdir: str, fake: FakeAuth, *, credentials: str | None = None,
                 refresh: dict | None = None, server: dict | None = None,
                 upstream: dict | None = None, log_level: str = "debug", name: str = "d",
                 env: dict | None = None, extra: str = ""):
        self.workdir = workdir
        self.fake = fake
        self.name = name
        self.socket = os.path.join(workdir, f"{name}.sock")
        self.config_path = os.path.join(workdir, f"{name}.toml")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.secret_file = os.path.join(workdir, "backoffice.secret")
        with open(self.secret_file, "w") as f:
            f.write(fake_harness.INTEGRATION_CLIENT_SECRET + "\n")
        os.chmod(self.secret_file, 0o600)
        self.env = env or {}
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.write_config(credentials=credentials, refresh=refresh, server=server, upstream=upstream, extra=extra)

    def write_config(self, *, credentials: str | None = None, refresh: dict | None = None,
                     server: dict | None = None, upstream: dict | None = None, extra: str = "") -> None:
        def table(name: str, values: dict) -> str:
            lines = [f"[{name}]"]
            for k, v in values.items():
                lines.append(f"{k} = {json.dumps(v)}")
            return "\n".join(lines) + "\n"

        srv = {"socket": self.socket, "socket_mode": "0666"}
        srv.update(server or {})
        up = {"auth_url": self.fake.url, "ca_file": self.fake.ca_file}
        up.update(upstream or {})
        ref = {"at": 0.75, "jitter": 0.0, "min_ttl": 0, "backoff_initial_ms": 200, "backoff_max_ms": 2000}
        ref.update(refresh or {})
        creds = credentials if credentials is not None else DEFAULT_CREDENTIALS
        creds = creds.format(it_id=fake_harness.INTEGRATION_CLIENT_ID, secret_file=self.secret_file,
                             it_scope=fake_harness.INTEGRATION_SCOPE, sc_id=fake_harness.SALES_CHANNEL_CLIENT_ID,
                             sc_scope=fake_harness.SALES_CHANNEL_SCOPE)
        text = table("server", srv) + table("upstream", up) + table("refresh", ref) + extra + creds
        with open(self.config_path, "w") as f:
            f.write(text)
        os.chmod(self.config_path, 0o600)

    def start(self, wait_ready: bool = True) -> "Daemon":
        env = dict(os.environ)
        env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([CL_TOKEND, "-c", self.config_path, "--log-level", self.log_level],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait_ready:
            wait_for(self._accepting, 15, f"cl-tokend to accept on {self.socket} (log: {self.log_path})")
        return self

    def _accepting(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"cl-tokend exited with {self.proc.returncode}:\n{self.read_log()}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.socket, timeout)

    def get(self, path: str) -> Response:
        c = self.client()
        try:
            return c.get(path)
        finally:
            c.close()

    def post(self, path: str, body: Any = None) -> Response:
        c = self.client()
        try:
            return c.request("POST", path, body if body is not None else b"")
        finally:
            c.close()

    def wait_ready(self, timeout: float = 15) -> None:
        wait_for(lambda: self.get("/v1/health").status == 200, timeout, "every credential to hold a token")

    def ctl(self, *args: str, input: str | None = None, timeout: float = 30, env: dict | None = None,
            user: int | None = None) -> subprocess.CompletedProcess:
        e = dict(os.environ)
        e.pop("CL_TOKEND_SOCKET", None)
        e.update(env or {})
        cmd = [CL_TOKENCTL, "--socket", self.socket, *args]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=e)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def revoke_at_the_auth_server(fake: FakeAuth, token: str) -> None:
    """What makes the Core API refuse a token in real life before it expires: it was
    revoked. The auth server then never hands it back, so the invalidate that follows gets a
    new token (with a live token the auth server would answer with that same token until its
    reissue window opens, and the daemon would have to revoke it itself)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    client_id = claims["application"]["client_id"]
    secret = fake_harness.INTEGRATION_CLIENT_SECRET if client_id == fake_harness.INTEGRATION_CLIENT_ID else None
    status, doc = fake.revoke(token, client_id, secret)
    assert status == 200, (status, doc)


class DaemonTestCase(unittest.TestCase):
    """A fresh fake server and workdir per test; subclasses start daemons with self.daemon()."""

    fake_clients: list[dict] | None = None
    fake_rate_limit = 30

    def setUp(self) -> None:
        self.workdir = make_workdir()
        self.fake = FakeAuth(self.workdir, clients=self.fake_clients, rate_limit_per_minute=self.fake_rate_limit)
        self.fake.start()
        self.daemons: list[Daemon] = []

    def tearDown(self) -> None:
        failed = not getattr(self._outcome, "success", True)
        for d in self.daemons:
            d.stop()
            if failed or os.environ.get("CLTOKEN_SHOW_LOGS"):
                sys.stderr.write(f"\n--- {d.log_path} ---\n{d.read_log()[-6000:]}\n")
        self.fake.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def daemon(self, start: bool = True, **kw: Any) -> Daemon:
        d = Daemon(self.workdir, self.fake, name=f"d{len(self.daemons)}", **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def reject(self, token: str) -> None:
        revoke_at_the_auth_server(self.fake, token)

    def token_requests(self, client_id: str | None = None) -> int:
        stats = self.fake.stats()
        if client_id is None:
            return stats["token_requests_total"]
        return stats["token_requests"].get(client_id, 0)

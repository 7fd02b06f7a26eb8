"""The chaos run: the real cl-tokend against the fake auth server, with polite and hostile
clients, while a seeded schedule injects faults together; invariants are checked on every
answer and by a monitor that runs throughout. See README.md in this folder for what is
checked and why each bound holds.

    tests/chaos/run [--minutes M | --seconds S | --preset ci] [--seed N] [--keep]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CLTOKEN_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "fake_auth"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

import harness as fake_harness  # noqa: E402
from harness import FakeAuth  # noqa: E402
from ledger import Ledger, claims, fingerprint  # noqa: E402
from store_harness import RedisServer  # noqa: E402

PYTHON = "/usr/bin/python3"  # any uid can run it
HOSTILE = os.path.join(HERE, "hostile.py")
ALLOWED_HOSTILE_UID = 65534     # in the credentials' allow lists: storms and floods of sessions
STRANGER_UID = 65533            # in no allow list: garbage, big headers, connection floods
ADMIN_UID = 4100                # the only admin: the runner's own clients (root) are not admins

IT_CLIENT = fake_harness.INTEGRATION_CLIENT_ID
SC_CLIENT = fake_harness.SALES_CHANNEL_CLIENT_ID
CLIENT_OF = {"backoffice": IT_CLIENT, "storefront-eu": SC_CLIENT}
CREDENTIALS = tuple(CLIENT_OF)
STORE_KEY = "chaos-store-key-0123456789abcdef-0123"

# Lifetimes short enough that tokens turn over many times in a phase, with a reissue
# window like Commerce Layer's (the same token comes back until it has this much left).
LIFETIME = {IT_CLIENT: 40, SC_CLIENT: 30}
REISSUE_WINDOW = 8
# The host's budget (max_requests_per_minute, split between the daemons of a phase) is
# larger than the default 25 so that, with lifetimes this short, the polite clients' own
# needs fit beside the attackers' and the fault injection's; the fake's own limit sits
# above it, as upstream's 30 sits above the default 25.
HOST_BUDGET = 40
FAKE_RATE_LIMIT = 50

# The daemon's limits, which the resource bounds below are derived from.
SERVER = {"max_connections": 320, "max_connections_per_peer": 128, "admin_reserved_connections": 8,
          "request_timeout_ms": 3000, "idle_timeout_ms": 5000, "max_header_bytes": 8192,
          "max_body_bytes": 16384, "invalidate_burst": 3, "invalidate_interval_ms": 20000}
UPSTREAM = {"request_timeout_ms": 1500, "connect_timeout_ms": 1000, "jwks_min_interval_s": 2}
CUSTOMERS = {"max_sessions": 2000, "max_sessions_per_peer": 400, "max_memory_mib": 16, "login_burst": 5,
             "login_interval_ms": 10000, "idle_timeout_s": 120}
# Per uid, reports of current tokens (3 + 3 a minute, each worth up to two token requests
# and a revoke) and logins (5 + 6 a minute) fit in the host budget beside the polite
# clients' refreshes, so that what the attackers spend does not starve everyone else by
# itself; the polite clients then see outages only when the faults add to it.
# A polite request is answered by server.request_timeout_ms (the daemon's own deadline);
# the grace covers this process's scheduling on a loaded machine (its threads, the GIL,
# two cores shared with the daemons, the fake and the attackers), never the daemon's.
DEADLINE_GRACE_S = 5.0
REPORT_SETTLE_S = SERVER["request_timeout_ms"] / 1000 + DEADLINE_GRACE_S + 1.0
RSS_SLACK_MIB = 32            # allocator and library slack over the stated bound
FD_SLACK = 16                 # upstream, store, JWKS and signal descriptors beyond the baseline


def now() -> float:
    return time.time()


def utc(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


# --------------------------------------------------------------------------------------------
# The run's shared state: counters, violations, the stop signal
# --------------------------------------------------------------------------------------------
class Run:
    def __init__(self, seed: int, seconds: float, workdir: str, verbose: bool):
        self.seed = seed
        self.seconds = seconds
        self.workdir = workdir
        self.verbose = verbose
        self.t0 = now()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.violations: list[dict] = []
        self.counts: collections.Counter = collections.Counter()
        self.faults: collections.Counter = collections.Counter()
        self.fault_log: list[str] = []
        self.phase = "-"
        self.figures: dict[str, Any] = {}

    def rel(self, t: float | None = None) -> float:
        return (now() if t is None else t) - self.t0

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def note_fault(self, kind: str, detail: str = "") -> None:
        with self.lock:
            self.faults[f"{self.phase}:{kind}"] += 1
            self.fault_log.append(f"{self.rel():8.2f}s {self.phase:5} {kind} {detail}")
        if self.verbose:
            print(f"  {self.rel():8.2f}s fault {kind} {detail}", flush=True)

    def violate(self, what: str, detail: str, t: float | None = None) -> None:
        t = now() if t is None else t
        with self.lock:
            self.violations.append({"what": what, "detail": detail, "t": t, "phase": self.phase})
            first = len(self.violations) == 1
        if first:
            print(f"VIOLATION at {self.rel(t):.2f}s ({utc(t)}, phase {self.phase}, seed {self.seed}): "
                  f"{what}: {detail}", flush=True)
        self.stop.set()

    def figure_max(self, key: str, value: float) -> None:
        with self.lock:
            self.figures[key] = max(self.figures.get(key, value), value)


# --------------------------------------------------------------------------------------------
# Daemons
# --------------------------------------------------------------------------------------------
def toml_value(v: Any) -> str:
    return json.dumps(v)


def table(name: str, values: dict) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())


class Daemon:
    """One cl-tokend; every life (start to SIGKILL or stop) is recorded for the budget and
    error checks."""

    def __init__(self, folder: str, name: str, fake: FakeAuth, budget: int, store: dict, binary: str):
        self.name = name
        self.fake = fake
        self.budget = budget
        self.store = store
        self.binary = binary
        self.socket = os.path.join(folder, f"{name}.sock")
        self.config_path = os.path.join(folder, f"{name}.toml")
        self.log_path = os.path.join(folder, f"{name}.log")
        self.budget_path = os.path.join(folder, f"{name}.budget")
        self.secret_file = os.path.join(folder, "backoffice.secret")
        self.proc: subprocess.Popen | None = None
        self.lives: list[list] = []            # [start, ready, end or None]
        self.expected_exit = False
        self.baseline: dict[str, int] = {}
        self.bounds: dict[str, int] = {}
        self.peak = {"rss_kib": 0, "fds": 0}
        self.write_config("A")

    # -- configuration: two valid variants and broken ones ------------------------------------
    def config_text(self, variant: str) -> str:
        server = dict(SERVER, socket=self.socket, socket_mode="0666", admin=[f"uid:{ADMIN_UID}"])
        upstream = dict(UPSTREAM, auth_url=self.fake.url, ca_file=self.fake.ca_file,
                        max_requests_per_minute=self.budget, budget_path=self.budget_path)
        refresh = {"at": 0.75, "jitter": 0.05, "min_ttl": 2, "backoff_initial_ms": 200, "backoff_max_ms": 4000,
                   "reissue_window_s": REISSUE_WINDOW}
        log = {"level": "info", "format": "text"}
        if variant == "B":
            refresh.update(at=0.7, min_ttl=3, backoff_initial_ms=300)
            log["level"] = "debug"
        allow = ["uid:0", f"uid:{ALLOWED_HOSTILE_UID}"]
        creds = table("credentials.backoffice", {"kind": "integration", "client_id": IT_CLIENT,
                                                 "client_secret_file": self.secret_file,
                                                 "scope": fake_harness.INTEGRATION_SCOPE, "allow": allow})
        creds += table("credentials.storefront-eu", {"kind": "sales_channel", "client_id": SC_CLIENT,
                                                     "scope": fake_harness.SALES_CHANNEL_SCOPE, "allow": allow})
        if variant == "B":
            # A credential that only one of the two configs has: reloads add and drop it.
            creds += table("credentials.storefront-us", {"kind": "sales_channel", "client_id": SC_CLIENT,
                                                         "scope": "market:code:usa", "allow": ["uid:0"]})
        text = (table("server", server) + table("upstream", upstream) + table("refresh", refresh)
                + table("log", log) + table("customers", CUSTOMERS) + table("store", self.store) + creds)
        if variant == "invalid-range":
            text = text.replace("at = 0.75", "at = 7.5")
        elif variant == "invalid-syntax":
            text += "[credentials.broken\nkind = \n"
        elif variant == "invalid-credential":
            text += table("credentials.nobody-knows", {"kind": "marketplace", "client_id": "x", "allow": ["*"]})
        return text

    def write_config(self, variant: str) -> None:
        """Atomically, so that a reload never reads half a file."""
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.config_text(variant))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab")
        started = now()
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path], stdout=log, stderr=subprocess.STDOUT)
        self.expected_exit = False  # after the new process is in place: the monitor reads both
        log.close()
        self.lives.append([started, None, None])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            if self.accepting():
                break
            time.sleep(0.02)  # polling for the socket, bounded by the deadline
        else:
            raise RuntimeError(f"{self.name} not accepting after {timeout} s:\n{self.log_tail()}")
        self.lives[-1][1] = now()
        if not self.baseline:
            # Bounds from the daemon's own limits: every connection holding a full header
            # and body twice (buffer and parsed), the session table's memory cap, slack.
            self.baseline = {"rss_kib": self.rss_kib() or 0, "fds": self.fd_count() or 0}
            conn_bytes = SERVER["max_connections"] * (SERVER["max_header_bytes"] + SERVER["max_body_bytes"]) * 2
            self.bounds = {"fds": self.baseline["fds"] + SERVER["max_connections"] + FD_SLACK}
            if not self.sanitized():  # a sanitizer's shadow memory and quarantine are not the daemon's
                self.bounds["rss_kib"] = (self.baseline["rss_kib"] + conn_bytes // 1024
                                          + CUSTOMERS["max_memory_mib"] * 1024 + RSS_SLACK_MIB * 1024)

    def sanitized(self) -> bool:
        try:
            with open(f"/proc/{self.proc.pid}/maps") as f:
                return any(lib in line for line in f for lib in ("libasan", "libtsan"))
        except (OSError, AttributeError):
            return False

    def accepting(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.expected_exit = True
        self.lives[-1][2] = now()  # before the signal: a request cut off by it ends later
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM; the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.expected_exit = True
        self.lives[-1][2] = now()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def life_at(self, t: float) -> int:
        """Index of the life that was running at t (the latest started before t)."""
        idx = -1
        for i, (start, _ready, _end) in enumerate(self.lives):
            if start <= t:
                idx = i
        return idx

    def down_between(self, a: float, b: float) -> bool:
        """Whether the daemon was down (from a kill until the next life accepts) at some
        moment in [a, b]."""
        inf = float("inf")
        down: list[tuple[float, float]] = []
        prev_end = None
        for start, ready, end in list(self.lives):
            down.append((prev_end if prev_end is not None else start, ready if ready is not None else inf))
            prev_end = end
        if prev_end is not None:
            down.append((prev_end, inf))
        return any(lo <= b and hi >= a for lo, hi in down)

    def rss_kib(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, AttributeError):
            return None
        return None

    def fd_count(self) -> int | None:
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except (OSError, AttributeError):
            return None

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------------------------------------
# Invariants on answers
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Known:
    """The newest token a daemon served for a credential or session, with the expiry the
    daemon itself stated: while it holds, the daemon has a valid token to give."""
    fp: str
    expires_at: float
    t_got: float
    life: int


class Checker:
    """Checks every answer a polite client gets, against the fake's ledger and against
    what the same daemon said before."""

    def __init__(self, run: Run, ledger: Ledger, daemons: list[Daemon], single_daemon: bool):
        self.run = run
        self.ledger = ledger
        self.daemons = daemons
        self.single_daemon = single_daemon
        self.lock = threading.Lock()
        self.known: dict[tuple[str, str], Known] = {}
        # (daemon, life, fp) -> (report sent, answered, by whom): a token reported invalid, which the
        # daemon drops from the moment it reads the report and never serves once it answered
        self.told: dict[tuple[str, int, str], tuple[float, float, str]] = {}
        # (daemon, credential) -> [(sent, answered)] of every report that may have made the
        # daemon drop the token it held then (which a reader may not have seen yet)
        self.drops: dict[tuple[str, str], list[tuple[float, float]]] = collections.defaultdict(list)
        self.runner_revoked: set[str] = set()            # jtis the runner revoked at the fake
        self.deferred: list[tuple[float, Callable[[], None]]] = []
        self.max_latency = 0.0

    def latency(self, d: Daemon, what: str, t_send: float, t_recv: float, failed: bool) -> None:
        took = t_recv - t_send
        if failed and d.down_between(t_send, t_recv):
            return  # cut off by a SIGKILL of the daemon
        with self.lock:
            self.max_latency = max(self.max_latency, took)
        limit = SERVER["request_timeout_ms"] / 1000 + DEADLINE_GRACE_S
        if took > limit:
            self.run.violate("client not answered by its deadline",
                             f"{what} on {d.name} took {took:.2f} s (deadline {SERVER['request_timeout_ms']} ms "
                             f"+ {DEADLINE_GRACE_S} s grace), sent at {self.run.rel(t_send):.2f}s", t_recv)

    def token_answer(self, d: Daemon, key: str, client_id: str, owner: str | None, doc: dict,
                     t_send: float, t_recv: float) -> str | None:
        """A 200 with a token: issued by the fake to this client (and customer), not expired
        when asked for, not reported invalid to this daemon before, and the expiry the daemon
        states is no later than the real one. Returns the fingerprint."""
        token = doc.get("access_token")
        if not isinstance(token, str) or token.count(".") != 2:
            self.run.violate("malformed token answer", f"{key} on {d.name}: {str(doc)[:80]!r}", t_recv)
            return None
        fp = fingerprint(token)
        try:
            jti = claims(token)["jti"]
        except (ValueError, KeyError, IndexError):
            self.run.violate("token the auth server never issued", f"{key} on {d.name}: unreadable claims ({fp})",
                             t_recv)
            return None
        entry = self.ledger.lookup(jti)
        if entry is None:
            self.run.violate("token the auth server never issued", f"{key} on {d.name}: jti {jti[:8]} ({fp})", t_recv)
            return None
        if entry["client_id"] != client_id or entry["owner_id"] != owner:
            self.run.violate("token of another client or customer served",
                             f"{key} on {d.name}: issued to {entry['client_id']}/{entry['owner_id']} ({fp})", t_recv)
        if t_send >= entry["expires_real"]:
            self.run.violate("expired token served",
                             f"{key} on {d.name}: asked at {utc(t_send)}, token expired at "
                             f"{utc(entry['expires_real'])} by the fake's record ({fp})", t_recv)
        stated = parse_time(doc.get("expires_at"))
        if stated is None or stated > entry["expires_real"]:
            self.run.violate("daemon states a later expiry than the token has",
                             f"{key} on {d.name}: expires_at {doc.get('expires_at')} vs real "
                             f"{utc(entry['expires_real'])} ({fp})", t_recv)
        with self.lock:
            told = self.told.get((d.name, d.life_at(t_send), fp))
        if told is not None and told[1] < t_send:
            self.run.violate("token served after it was reported invalid to this daemon",
                             f"{key} on {d.name}: reported ({told[2]}) at {self.run.rel(told[0]):.3f}s, answered at "
                             f"{self.run.rel(told[1]):.3f}s, served for a request sent at {self.run.rel(t_send):.3f}s "
                             f"({fp})", t_recv)
        if self.single_daemon and entry["revoked_t"] is not None and jti not in self.runner_revoked \
                and entry["revoked_t"] < t_send:
            self.run.violate("token served after the daemon revoked it",
                             f"{key} on {d.name}: revoked at {utc(entry['revoked_t'])} ({fp})", t_recv)
        if stated is not None:
            life = d.life_at(t_send)
            with self.lock:
                k = self.known.get((d.name, key))
                if k is None or k.life != life or stated >= k.expires_at:
                    self.known[(d.name, key)] = Known(fp, stated, t_recv, life)
        return fp

    def told_invalid(self, d: Daemon, key: str, fp: str, t_sent: float, t_done: float, source: str,
                     answered: bool = True) -> None:
        """A report that may have made the daemon drop its token. It binds the life of the
        daemon that read it: a restarted daemon knows nothing of it (and may load the
        token from its store again). Unanswered, it is taken as read unless the daemon was
        down meanwhile."""
        with self.lock:
            self.drops[(d.name, key)].append((t_sent, t_done))
        if not answered and d.down_between(t_sent, t_done):
            return
        with self.lock:
            self.told.setdefault((d.name, d.life_at(t_sent), fp), (t_sent, t_done, source))

    def error_answer(self, d: Daemon, key: str, what: str, status: int, body: bytes,
                     t_send: float, t_recv: float) -> None:
        """A polite client got no token. Judged once every report that could explain it
        has been answered: a report waits at most the daemon's request deadline (plus this
        process's grace), so REPORT_SETTLE_S later."""
        def judge() -> None:
            if d.down_between(t_send, t_recv):
                self.run.count("polite error: daemon killed or restarting")
                return
            if status == 0:
                self.run.violate("polite client's connection failed", f"{what} on {d.name} at "
                                 f"{self.run.rel(t_send):.2f}s: {body.decode(errors='replace')[:120]}", t_recv)
                return
            life = d.life_at(t_send)
            with self.lock:
                k = self.known.get((d.name, key))
                drops = list(self.drops.get((d.name, key), []))
            if k is not None and k.life == life and k.t_got < t_send and t_recv < k.expires_at - 1:
                if any(sent <= t_recv and done >= k.t_got for sent, done in drops):
                    # A report (by a polite invalidator or a hostile peer) that may have been
                    # read between the serve and this answer: the daemon drops the token it
                    # holds when a client reports it, by design.
                    self.run.count(f"polite error after the held token was reported invalid: {status}")
                    return
                self.run.violate("polite client error while a valid token existed",
                                 f"{what} on {d.name}: {status} {body.decode(errors='replace')[:200]} at "
                                 f"{self.run.rel(t_recv):.2f}s; it served {k.fp} at {self.run.rel(k.t_got):.2f}s, "
                                 f"expiring {utc(k.expires_at)}", t_recv)
                return
            self.run.count(f"polite error (no valid token held): {status}")
        with self.lock:
            self.deferred.append((time.monotonic() + REPORT_SETTLE_S, judge))

    def run_deferred(self, force: bool = False) -> None:
        with self.lock:
            due = [f for t, f in self.deferred if force or t <= time.monotonic()]
            self.deferred = [(t, f) for t, f in self.deferred if not (force or t <= time.monotonic())]
        for f in due:
            f()


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Polite clients (threads of this process, uid 0, not an admin)
# --------------------------------------------------------------------------------------------
class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Polite(threading.Thread):
    def __init__(self, run: Run, checker: Checker, d: Daemon, fake: FakeAuth, kind: str, seed: int, idx: int):
        super().__init__(name=f"polite-{kind}-{idx}", daemon=True)
        self.run_ = run
        self.checker = checker
        self.d = d
        self.fake = fake
        self.kind = kind
        self.rng = random.Random(seed)
        # Past the daemon's deadline and the grace: a late answer is reported by the
        # deadline check, not lost in a socket timeout.
        self.conn = UnixHTTP(d.socket, SERVER["request_timeout_ms"] / 1000 + DEADLINE_GRACE_S + 10)
        self.session: str | None = None
        self.session_created = 0.0
        self.last_token: dict[str, str] = {}
        self.last_used = time.monotonic()
        self.conn_opened = 0.0
        self.retry_after: str | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float, float]:
        t_send = now()
        status, payload = self._exchange(method, path, body)
        if status < 0:
            # A kept-alive connection that the daemon closed as idle just as this request
            # went out (server.idle_timeout_ms), or that a killed daemon left behind: what
            # every HTTP client retries once, on a new connection.
            self.run_.count("kept-alive connection closed (idle or killed daemon), request retried")
            status, payload = self._exchange(method, path, body)
            status = max(status, 0)
        t_recv = now()
        self.checker.latency(self.d, f"{method} {path.split('?')[0]}", t_send, t_recv, status == 0)
        self.run_.count("polite requests")
        return status, payload, t_send, t_recv

    def _exchange(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        """(status, body); (0, error) when the connection failed; (-1, error) when a
        kept-alive connection failed that had been idle for about the daemon's idle timeout."""
        reused = self.conn.sock is not None
        idle = time.monotonic() - self.last_used
        if not reused:
            self.conn_opened = now()
        try:
            data = json.dumps(body) if body is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            payload = r.read()
            status = r.status
            self.retry_after = r.getheader("Retry-After")
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            killed_since = any(end is not None and end >= self.conn_opened for _s, _r, end in list(self.d.lives))
            status = -1 if reused and (idle >= SERVER["idle_timeout_ms"] / 1000 - 0.5 or killed_since) else 0
            payload = f"{type(e).__name__}: {e}".encode()
        self.last_used = time.monotonic()
        return status, payload

    def run(self) -> None:
        while not self.run_.stop.is_set():
            try:
                if self.kind in ("reader", "min_ttl"):
                    self.read()
                elif self.kind == "invalidator":
                    self.invalidate()
                else:
                    self.customer()
            except Exception as e:  # a bug of the runner must not pass for a pass
                self.run_.violate("runner error", f"{self.name}: {type(e).__name__}: {e}")
            self.run_.stop.wait(self.rng.uniform(0.05, 0.4))  # pacing: a client's own request rate
        self.conn.close()

    def read(self, name: str | None = None) -> None:
        name = name or self.rng.choice(CREDENTIALS)
        path = f"/v1/tokens/{name}"
        if self.kind == "min_ttl":
            path += f"?min_ttl={self.rng.choice([1, 4, 8, 12])}"
        status, body, t_send, t_recv = self.request("GET", path)
        if status == 200:
            fp = self.checker.token_answer(self.d, name, CLIENT_OF[name], None, json.loads(body), t_send, t_recv)
            self.last_token[name] = json.loads(body)["access_token"]
            self.run_.count("polite tokens served")
            del fp
        else:
            self.checker.error_answer(self.d, name, f"GET {path}", status, body, t_send, t_recv)

    def invalidate(self) -> None:
        """Reads, then now and then reports the token it holds, often after revoking it at
        the auth server first (what makes the Core API refuse a token in real life)."""
        name = self.rng.choice(CREDENTIALS)
        self.read(name)
        token = self.last_token.get(name)
        if token is None or self.rng.random() < 0.6:
            return
        if self.rng.random() < 0.5:
            jti = claims(token)["jti"]
            with self.checker.lock:
                self.checker.runner_revoked.add(jti)
            secret = fake_harness.INTEGRATION_CLIENT_SECRET if name == "backoffice" else None
            try:
                self.fake.revoke(token, CLIENT_OF[name], secret)
                self.run_.count("tokens revoked at the auth server by the runner")
            except OSError:
                pass
        status, body, t_send, t_recv = self.request("POST", f"/v1/tokens/{name}/invalidate", {"access_token": token})
        fp = fingerprint(token)
        self.run_.count(f"polite invalidate: {status}")
        if status == 200:
            doc = json.loads(body)
            if doc.get("access_token") != token:
                self.checker.told_invalid(self.d, name, fp, t_send, t_recv, f"{self.name}: 200, got "
                                          f"{fingerprint(doc.get('access_token', ''))}")
            self.checker.token_answer(self.d, name, CLIENT_OF[name], None, doc, t_send, t_recv)
        elif status in (0, 503):
            # 503: dropped, and no new token yet. No answer: the daemon may have read the
            # report before the connection failed; either way, taken as reported.
            self.checker.told_invalid(self.d, name, fp, t_send, t_recv, f"{self.name}: {status}", status != 0)
        elif status != 429:
            self.checker.error_answer(self.d, name, "POST invalidate", status, body, t_send, t_recv)
        self.last_token.pop(name, None)

    def customer(self) -> None:
        base = "/v1/customers/storefront-eu/sessions"
        if self.session is None:
            status, body, t_send, t_recv = self.request(
                "POST", base, {"username": fake_harness.CUSTOMER_USERNAME, "password": fake_harness.CUSTOMER_PASSWORD})
            self.run_.count(f"polite session create: {status}")
            if status == 201:
                doc = json.loads(body)
                self.session, self.session_created = doc["session"], t_send
                self.checker.token_answer(self.d, "session:" + self.session, SC_CLIENT, fake_harness.CUSTOMER_ID,
                                          doc, t_send, t_recv)
            elif status in (429, 503):
                # The per-uid login limit or the upstream budget, both documented: a polite
                # client comes back after Retry-After.
                self.run_.stop.wait(min(10.0, float(self.retry_after or 1)))
            else:
                self.checker.error_answer(self.d, "login", "POST session", status, body, t_send, t_recv)
            return
        if self.rng.random() < 0.03:
            status, body, t_send, t_recv = self.request("DELETE", f"{base}/{self.session}")
            self.run_.count(f"polite session end: {status}")
            if status == 404 and self.d.life_at(t_send) == self.d.life_at(self.session_created):
                self.run_.violate("polite session lost", f"DELETE on {self.d.name}: 404 without a restart", t_recv)
            self.session = None
            return
        path = f"{base}/{self.session}" + (f"?min_ttl={self.rng.choice([2, 6])}" if self.rng.random() < 0.3 else "")
        status, body, t_send, t_recv = self.request("GET", path)
        key = "session:" + self.session
        if status == 200:
            self.checker.token_answer(self.d, key, SC_CLIENT, fake_harness.CUSTOMER_ID, json.loads(body), t_send, t_recv)
            self.run_.count("polite session tokens served")
        elif status == 404:
            if self.d.life_at(t_send) == self.d.life_at(self.session_created):
                self.run_.violate("polite session lost", f"GET on {self.d.name}: 404 without a restart "
                                  f"(created at {self.run_.rel(self.session_created):.2f}s)", t_recv)
            self.run_.count("polite session gone after a restart")
            self.session = None
        elif status == 410:
            self.run_.violate("polite session expired", f"GET on {self.d.name}: 410 {body[:200]!r}", t_recv)
            self.session = None
        else:
            self.checker.error_answer(self.d, key, "GET session", status, body, t_send, t_recv)


# --------------------------------------------------------------------------------------------
# Hostile peers (other uids, other processes)
# --------------------------------------------------------------------------------------------
ALLOWED_MODES = ["min_ttl_storm", "invalidate_storm", "session_flood", "slow_reader"]
STRANGER_MODES = ["garbage", "big_header", "flood", "forbidden"]


class Hostiles:
    def __init__(self, run: Run, checker: Checker, daemons: list[Daemon], seconds: float, seed: int):
        self.run = run
        self.checker = checker
        self.by_socket = {d.socket: d for d in daemons}
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.summaries: list[dict] = []
        self.threads: list[threading.Thread] = []
        for i, mode in enumerate(ALLOWED_MODES + STRANGER_MODES):
            uid = ALLOWED_HOSTILE_UID if mode in ALLOWED_MODES else STRANGER_UID
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                   PYTHON, HOSTILE, mode, f"{seconds:.1f}", str(seed * 100 + i), *self.by_socket]
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
            self.procs.append((mode, p))
            t = threading.Thread(target=self.read, args=(mode, p), daemon=True)
            t.start()
            self.threads.append(t)

    def read(self, mode: str, p: subprocess.Popen) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "invalidate":
                d = self.by_socket.get(ev["socket"])
                # Only a report of the token it had just been served can take one away
                # (an older token is answered with the current one).
                dropped = ev["credential"] == ev["token_of"] and ev["was_current"] and (
                    ev["status"] in (0, 503) or (ev["status"] == 200 and ev["got"] != ev["reported"]))
                if d is not None and dropped:
                    self.checker.told_invalid(d, ev["credential"], ev["reported"], ev["t_send"], ev["t_recv"],
                                              f"hostile {mode}: {ev['status']}, got {ev['got']}", ev["status"] != 0)
                    self.run.count("hostile reports of a token of that credential, answered 200 or 503")
            elif ev.get("event") == "summary":
                self.summaries.append(ev)
                if mode in STRANGER_MODES and ev["token_bodies"]:
                    self.run.violate("a peer outside every allow list got a token", json.dumps(ev))

    def stop(self, early: bool) -> None:
        """Waits for each to end on its own time (kills them when the phase ended early)."""
        for mode, p in self.procs:
            if early:
                p.kill()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err = p.stderr.read() if p.stderr else ""
            if p.returncode != 0 and not early:
                self.run.violate("hostile client failed", f"{mode}: exit {p.returncode}: {err[-500:]}")
        for t in self.threads:
            t.join(10)


# --------------------------------------------------------------------------------------------
# The monitor: budget window, resources, crashes, logs (throughout)
# --------------------------------------------------------------------------------------------
JWT_RUN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}")
LONG_RUN = re.compile(r"[A-Za-z0-9_-]{32,}")
HEX = re.compile(r"^[0-9a-f]+$")
FORGED_PASSWORD = re.compile(r"wrong 0\.\d+")


class Monitor(threading.Thread):
    def __init__(self, run: Run, checker: Checker, fake: FakeAuth, daemons: list[Daemon]):
        super().__init__(name="monitor", daemon=True)
        self.run_ = run
        self.checker = checker
        self.fake = fake
        self.daemons = daemons
        self.log_pos: dict[str, int] = {}
        self.kids: set[str] = set()
        self.window_max = 0
        self.upstream: dict = {}
        self.log_lines = 0
        self.secrets = [fake_harness.INTEGRATION_CLIENT_SECRET, fake_harness.CUSTOMER_PASSWORD, STORE_KEY]
        self.done = threading.Event()

    def run(self) -> None:
        last_window = 0.0
        while not self.done.is_set():
            try:
                self.check_processes()
                self.check_resources()
                self.check_logs()
                self.checker.run_deferred()
                if time.monotonic() - last_window > 1.0:
                    self.check_window()
                    self.checker.ledger.sync()
                    last_window = time.monotonic()
            except Exception as e:
                if not self.done.is_set():
                    self.run_.violate("runner error", f"monitor: {type(e).__name__}: {e}")
            self.done.wait(0.25)  # pacing of the monitor's rounds

    def final(self) -> None:
        self.check_logs()
        self.check_window()
        self.checker.run_deferred(force=True)

    def check_processes(self) -> None:
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is not None and not d.expected_exit:
                d.expected_exit = True  # reported once
                self.run_.violate("daemon crashed", f"{d.name} exited with {d.proc.returncode}; log tail:\n"
                                  + d.log_tail(1500))

    def check_resources(self) -> None:
        for d in self.daemons:
            if not d.alive() or not d.bounds:
                continue
            rss, fds = d.rss_kib(), d.fd_count()
            if rss is not None:
                d.peak["rss_kib"] = max(d.peak["rss_kib"], rss)
                if rss > d.bounds.get("rss_kib", float("inf")):
                    self.run_.violate("RSS over its bound", f"{d.name}: {rss} KiB > {d.bounds['rss_kib']} KiB")
            if fds is not None:
                d.peak["fds"] = max(d.peak["fds"], fds)
                if fds > d.bounds["fds"]:
                    self.run_.violate("open descriptors over their bound", f"{d.name}: {fds} > {d.bounds['fds']}")

    def check_logs(self) -> None:
        for d in self.daemons:
            try:
                with open(d.log_path, "rb") as f:
                    f.seek(self.log_pos.get(d.name, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            self.log_pos[d.name] = self.log_pos.get(d.name, 0) + end
            for raw in data[:end].splitlines():
                self.log_lines += 1
                self.check_line(d, raw.decode(errors="replace"))

    def check_line(self, d: Daemon, line: str) -> None:
        for s in self.secrets:
            if s in line:
                self.run_.violate("secret in a log line", f"{d.name}: a configured secret appears in: "
                                  + line.replace(s, "<SECRET>")[:200])
        if FORGED_PASSWORD.search(line):
            self.run_.violate("password in a log line", f"{d.name}: {FORGED_PASSWORD.sub('<PASSWORD>', line)[:200]}")
        m = JWT_RUN.search(line)
        if m:
            self.run_.violate("token in a log line", f"{d.name}: {JWT_RUN.sub('<TOKEN>', line)[:200]}")
        for run in LONG_RUN.findall(line):
            if HEX.match(run) or run in self.kids:
                continue
            self.kids |= self.published_kids()
            if run not in self.kids:
                self.run_.violate("secret-looking string in a log line",
                                  f"{d.name}: {len(run)} characters: {line.replace(run, '<REDACTED>')[:200]}")

    def published_kids(self) -> set[str]:
        try:
            status, _, body = self.fake.request("GET", "/.well-known/jwks.json")
            return {k["kid"] for k in json.loads(body)["keys"]} if status == 200 else set()
        except OSError:
            return set()

    def check_window(self) -> None:
        """The auth server's sliding 60 s window never holds more requests than the budgets
        of the daemons with a life in it: a daemon SIGKILLed and restarted within the window
        counts once, since the budget's record outlives the process (upstream.budget_path)."""
        stats = self.fake.stats()
        self.upstream = {k: stats[k] for k in ("token_requests_total", "by_status", "tokens_issued", "tokens_reused",
                                                "rejected_429", "revoked", "revoke_requests_total", "jwks_requests")}
        times = sorted(r["t"] for r in stats["requests"])
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - 60:
                start += 1
            n = end - start + 1
            lo = t - 60
            lives = [(d, life) for d in self.daemons for life in d.lives
                     if life[0] <= t and (life[2] is None or life[2] >= lo)]
            allowed = sum(d.budget for d in {id(d): d for d, _ in lives}.values())
            if n > allowed:
                self.run_.violate("upstream window over the budget",
                                  f"{n} token requests in the 60 s before {utc(t)} "
                                  f"({len(lives)} daemon lives, budget {allowed})", t)
                return
            self.window_max = max(self.window_max, n)


# --------------------------------------------------------------------------------------------
# The seeded fault schedule
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Fault:
    at: float
    kind: str
    params: dict

    def __str__(self) -> str:
        return f"{self.at:7.2f}s {self.kind} {json.dumps(self.params, sort_keys=True)}"


def schedule(rng: random.Random, seconds: float, redis: bool) -> list[Fault]:
    """Upstream faults one after another (the fake has one misbehaviour at a time), process
    faults on their own timeline, overlapping them. Nothing starts in the first 3 s or
    the last 6 s of a phase, so that each phase starts warm and ends with a recovery."""
    out: list[Fault] = []
    t = 3.0
    end = seconds - 6.0
    while True:
        t += rng.uniform(1.0, 4.0)
        if t >= end:
            break
        kind = rng.choices(["429", "500", "hang", "reset", "garbage", "same_token", "rotate_key", "clock_jump"],
                           weights=[3, 3, 2, 2, 2, 2, 1, 1])[0]
        p: dict = {}
        if kind == "429":
            p = {"count": rng.randint(1, 4)}
            if rng.random() < 0.6:
                p["retry_after"] = str(rng.randint(1, 3))
        elif kind == "500":
            p = {"status": rng.choice([500, 502, 503, 504]), "seconds": round(rng.uniform(1.0, 6.0), 2)}
        elif kind in ("hang", "reset", "garbage", "same_token"):
            p = {"count": rng.randint(1, 4)}
        elif kind == "clock_jump":
            p = {"seconds": rng.randint(1, 5)}
        out.append(Fault(round(t, 2), kind, p))
        t += p.get("seconds", 0.5)
    t = 4.0
    while True:
        t += rng.uniform(3.0, 9.0)
        if t >= end:
            break
        kinds = ["sighup_storm", "sigkill"] + (["redis_restart"] if redis else [])
        kind = rng.choices(kinds, weights=[3, 1, 2][:len(kinds)])[0]
        p = {}
        if kind == "sighup_storm":
            p = {"reloads": rng.randint(2, 6)}
        elif kind == "sigkill":
            p = {"down_s": round(rng.uniform(0.1, 2.0), 2)}
        elif kind == "redis_restart":
            p = {"down_s": round(rng.uniform(0.3, 4.0), 2)}
        out.append(Fault(round(t, 2), kind, p))
    return sorted(out, key=lambda f: f.at)


PROCESS_FAULTS = {"sighup_storm", "sigkill", "redis_restart"}
MAX_CLOCK_JUMP = 40   # the fake's clock stays within the daemon's verify_skew_s (60 by default)


class Injector(threading.Thread):
    def __init__(self, run: Run, fake: FakeAuth, daemons: list[Daemon], redis: RedisServer | None,
                 faults: list[Fault], rng: random.Random, phase_start: float):
        super().__init__(name="injector", daemon=True)
        self.run_ = run
        self.fake = fake
        self.daemons = daemons
        self.redis = redis
        self.faults = faults
        self.rng = rng
        self.phase_start = phase_start
        self.clock_offset = 0

    def run(self) -> None:
        try:
            for f in self.faults:
                # Pacing: the schedule says when each fault starts.
                if self.run_.stop.wait(max(0.0, self.phase_start + f.at - time.monotonic())):
                    return
                self.inject(f)
        except Exception as e:
            if not self.run_.stop.is_set():
                self.run_.violate("runner error", f"injector: {type(e).__name__}: {e}")

    def inject(self, f: Fault) -> None:
        p = f.params
        if f.kind in ("429", "hang", "reset", "garbage", "same_token"):
            kw = {"mode": f.kind, "count": p["count"]}
            if "retry_after" in p:
                kw["retry_after"] = p["retry_after"]
            self.fake.control(**kw)
            self.run_.note_fault(f.kind + (" with Retry-After" if "retry_after" in p else ""),
                                 json.dumps(p, sort_keys=True))
        elif f.kind == "500":
            self.fake.control(mode="500", status=p["status"])
            self.run_.note_fault("500 storm", json.dumps(p, sort_keys=True))
            self.run_.stop.wait(p["seconds"])  # pacing: the storm's length
            self.fake.control(mode="normal")
        elif f.kind == "rotate_key":
            self.fake.rotate_key()
            self.run_.note_fault("key rotation")
        elif f.kind == "clock_jump":
            jump = min(p["seconds"], MAX_CLOCK_JUMP - self.clock_offset)
            if jump > 0:
                self.fake.control(clock_jump_s=jump)
                self.clock_offset += jump
                self.run_.note_fault("fake clock jump", f"+{jump} s (now +{self.clock_offset} s)")
        elif f.kind == "sighup_storm":
            d = self.rng.choice(self.daemons)
            variants = []
            for _ in range(p["reloads"]):
                variants.append(self.rng.choice(["A", "B", "invalid-range", "invalid-syntax", "invalid-credential"]))
            variants.append(self.rng.choice(["A", "B"]))  # always end on a valid config
            for v in variants:
                if not d.alive():
                    break
                d.write_config(v)
                d.proc.send_signal(signal.SIGHUP)
                self.run_.stop.wait(self.rng.uniform(0.02, 0.3))  # pacing between reloads
            self.run_.note_fault("SIGHUP storm", f"{d.name}: {' '.join(variants)}")
        elif f.kind == "sigkill":
            d = self.rng.choice(self.daemons)
            if not d.alive():
                return
            d.kill()
            self.run_.note_fault("SIGKILL + restart", f"{d.name}, down {p['down_s']} s")
            self.run_.stop.wait(p["down_s"])  # pacing: how long it stays down
            d.write_config(self.rng.choice(["A", "B"]))
            d.start()
        elif f.kind == "redis_restart":
            assert self.redis is not None
            self.redis.kill()
            self.run_.note_fault("Redis killed + restarted", f"down {p['down_s']} s")
            self.run_.stop.wait(p["down_s"])  # pacing: how long Redis stays down
            self.redis.start()


# --------------------------------------------------------------------------------------------
# Phases and the report
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PhaseResult:
    name: str
    seconds: float
    faults: list[Fault]
    upstream: dict
    window_max: int
    host_budget: int
    ledger_issued: int
    ledger_revoked: int
    max_latency: float
    daemons: list[dict]
    hostile: list[dict]
    log_lines: int


def run_phase(run: Run, name: str, seconds: float, seed: int, binary: str) -> PhaseResult:
    """One phase: its own fake auth server (and Redis), daemons, clients and faults. Stops
    early at the first violation."""
    run.phase = name
    run.stop.clear()
    rng = random.Random(f"{seed}:{name}")
    folder = os.path.join(run.workdir, name)
    os.makedirs(folder)
    os.chmod(folder, 0o755)  # the hostile uids reach the sockets in it
    clients = [fake_harness.client(IT_CLIENT, "integration", fake_harness.INTEGRATION_CLIENT_SECRET,
                                   LIFETIME[IT_CLIENT], fake_harness.INTEGRATION_SCOPE),
               fake_harness.client(SC_CLIENT, "sales_channel", None, LIFETIME[SC_CLIENT],
                                   fake_harness.SALES_CHANNEL_SCOPE)]
    fake = FakeAuth(folder, clients=clients, rate_limit_per_minute=FAKE_RATE_LIMIT, reissue_window=REISSUE_WINDOW)
    redis: RedisServer | None = None
    daemons: list[Daemon] = []
    threads: list[threading.Thread] = []
    hostiles: Hostiles | None = None
    monitor: Monitor | None = None
    key_file = os.path.join(folder, "store.key")
    with open(key_file, "w") as f:
        f.write(STORE_KEY)
    os.chmod(key_file, 0o600)
    try:
        fake.start()
        if name == "file":
            store = {"backend": "file", "path": os.path.join(folder, "state"), "key_file": key_file}
            daemons = [Daemon(folder, "d0", fake, HOST_BUDGET, store, binary)]
        else:
            redis = RedisServer(folder)
            redis.start()
            store = {"backend": "redis", "url": redis.url, "key_file": key_file, "poll_ms": 50, "timeout_ms": 500,
                     "reconnect_max_ms": 1000}
            # Two daemons behind one IP: the host's budget split between them.
            daemons = [Daemon(folder, f"d{i}", fake, HOST_BUDGET // 2, store, binary) for i in range(2)]
        with open(daemons[0].secret_file, "w") as f:
            f.write(fake_harness.INTEGRATION_CLIENT_SECRET + "\n")
        os.chmod(daemons[0].secret_file, 0o600)
        for d in daemons:
            d.start()
        ledger = Ledger(fake)
        checker = Checker(run, ledger, daemons, single_daemon=len(daemons) == 1)
        faults = schedule(rng, seconds, redis is not None)
        phase_start = time.monotonic()
        monitor = Monitor(run, checker, fake, daemons)
        monitor.start()
        kinds = ["reader"] * 10 + ["min_ttl"] * 6 + ["invalidator"] * 2 + ["customer"] * 3
        for i, kind in enumerate(kinds):
            threads.append(Polite(run, checker, daemons[i % len(daemons)], fake, kind, rng.randrange(1 << 30), i))
        hostile_seed = rng.randrange(1 << 30)
        upstream_faults = [f for f in faults if f.kind not in PROCESS_FAULTS]
        process_faults = [f for f in faults if f.kind in PROCESS_FAULTS]
        threads.append(Injector(run, fake, daemons, redis, upstream_faults, random.Random(rng.random()), phase_start))
        threads.append(Injector(run, fake, daemons, redis, process_faults, random.Random(rng.random()), phase_start))
        for t in threads:
            t.start()
        hostiles = Hostiles(run, checker, daemons, seconds - 2, hostile_seed)
        run.stop.wait(max(0.0, phase_start + seconds - time.monotonic()))  # the phase's length
        early = run.stop.is_set()
        run.stop.set()
        for t in threads:
            t.join(60)
        hostiles.stop(early)
        monitor.done.set()
        monitor.join(10)
        monitor.final()
        # A clean stop: SIGTERM ends each daemon with 0 within its grace.
        for d in daemons:
            code = d.stop()
            if code != 0:
                run.violate("daemon did not stop cleanly", f"{d.name}: exit {code}\n{d.log_tail(1500)}")
        monitor.check_logs()
        return PhaseResult(
            name=name, seconds=time.monotonic() - phase_start, faults=faults, upstream=monitor.upstream,
            window_max=monitor.window_max,
            host_budget=sum(d.budget for d in daemons), ledger_issued=ledger.issued, ledger_revoked=ledger.revoked,
            max_latency=checker.max_latency,
            daemons=[{"name": d.name, "lives": len(d.lives), "baseline": d.baseline, "bounds": d.bounds,
                      "peak": d.peak} for d in daemons],
            hostile=hostiles.summaries, log_lines=monitor.log_lines)
    finally:
        run.stop.set()
        if monitor is not None:
            monitor.done.set()
        if hostiles is not None:
            for _, p in hostiles.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for d in daemons:
            if d.alive():
                d.expected_exit = True
                d.proc.kill()
                d.proc.wait()
        if redis is not None:
            redis.stop()
        fake.stop()


def report(run: Run, results: list[PhaseResult]) -> str:
    lines = []
    ok = not run.violations
    lines.append(f"cl-tokend chaos run: {'PASSED' if ok else 'FAILED'}")
    lines.append(f"  seed {run.seed}, {run.seconds:.0f} s requested, {run.rel():.0f} s in all; "
                 f"replay: tests/chaos/run --seconds {run.seconds:g} --seed {run.seed}")
    for r in results:
        up = r.upstream
        lines.append(f"  phase {r.name}: {r.seconds:.0f} s, {len(r.daemons)} daemon(s), host budget "
                     f"{r.host_budget}/min, fake limit {FAKE_RATE_LIMIT}/min")
        lines.append(f"    upstream: {up.get('token_requests_total', 0)} token requests "
                     f"(by status {json.dumps(up.get('by_status', {}), sort_keys=True)}), "
                     f"{up.get('tokens_issued', 0)} issued, {up.get('tokens_reused', 0)} handed back, "
                     f"{up.get('revoke_requests_total', 0)} revoke requests, {up.get('jwks_requests', 0)} JWKS requests")
        lines.append(f"    busiest 60 s window: {r.window_max} token requests (budget {r.host_budget})")
        lines.append(f"    slowest polite answer: {r.max_latency:.2f} s (deadline {SERVER['request_timeout_ms']} ms "
                     f"+ {DEADLINE_GRACE_S} s grace)")
        for d in r.daemons:
            lines.append(f"    {d['name']}: {d['lives']} life(s); RSS peak {d['peak']['rss_kib']} KiB "
                         f"(start {d['baseline'].get('rss_kib')} KiB, bound {d['bounds'].get('rss_kib')} KiB); "
                         f"fds peak {d['peak']['fds']} (start {d['baseline'].get('fds')}, bound {d['bounds'].get('fds')})")
        lines.append(f"    daemon log lines checked: {r.log_lines}")
        for h in sorted(r.hostile, key=lambda h: h["mode"]):
            lines.append(f"    hostile uid {h['uid']} {h['mode']}: {h['requests']} requests, {h['connections']} "
                         f"connections, statuses {json.dumps(h['statuses'], sort_keys=True)}")
    lines.append("  faults injected:")
    for k, v in sorted(run.faults.items()):
        lines.append(f"    {k}: {v}")
    lines.append("  clients:")
    for k, v in sorted(run.counts.items()):
        lines.append(f"    {k}: {v}")
    if ok:
        lines.append("  invariants held: no expired, revoked-and-reported or foreign token served; no stated expiry "
                     "past the real one; upstream window within budget; no polite error while a valid token was "
                     "held; every polite answer by its deadline; RSS and descriptors within bounds; no crash; no "
                     "secret or token in a log line")
    else:
        v = run.violations[0]
        lines.append(f"  FIRST VIOLATION at {run.rel(v['t']):.2f} s ({utc(v['t'])}), phase {v['phase']}, "
                     f"seed {run.seed}: {v['what']}")
        lines.append("    " + v["detail"].replace("\n", "\n    "))
        if len(run.violations) > 1:
            lines.append(f"  ({len(run.violations) - 1} more after it)")
    return "\n".join(lines)


SKIPPED = 77  # ctest's SKIP_RETURN_CODE for this test


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="tests/chaos/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, help="length of the run (default 10)")
    ap.add_argument("--seconds", type=float, help="length of the run in seconds")
    ap.add_argument("--preset", choices=["ci"], help="ci: 90 s, as ctest runs it")
    ap.add_argument("--seed", type=int, help="replay a run (default: a new seed, printed)")
    ap.add_argument("--build-dir", default=os.environ.get("CLTOKEN_BUILD_DIR", os.path.join(SOURCE_DIR, "build")))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (daemon and fake logs)")
    ap.add_argument("--verbose", action="store_true", help="print each fault as it is injected")
    ap.add_argument("--only", choices=["file", "redis"], help="run one phase only (for the whole length)")
    args = ap.parse_args(argv)
    seconds = 600.0
    if args.preset == "ci":
        seconds = 90.0
    if args.minutes is not None:
        seconds = args.minutes * 60
    if args.seconds is not None:
        seconds = args.seconds
    if seconds < 30:
        ap.error("a run needs at least 30 s (two phases with a warm start and a recovery each)")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    binary = os.environ.get("CL_TOKEND", os.path.join(args.build_dir, "daemon", "cl-tokend"))
    if not os.access(binary, os.X_OK):
        print(f"chaos: no cl-tokend at {binary} (build first, or set CL_TOKEND)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        # The attackers must be other uids than the polite clients (setpriv needs root).
        print("chaos: needs root, to run the hostile clients under other uids", file=sys.stderr)
        return SKIPPED
    workdir = tempfile.mkdtemp(prefix="cltok-chaos-", dir="/tmp")
    os.chmod(workdir, 0o755)
    run = Run(seed, seconds, workdir, args.verbose)
    print(f"chaos: seed {seed}, {seconds:.0f} s, work folder {workdir}", flush=True)
    results: list[PhaseResult] = []
    try:
        phases = [args.only] if args.only else ["file", "redis"]
        for name in phases:
            results.append(run_phase(run, name, seconds / len(phases), seed, binary))
            if run.violations:
                break
    except Exception as e:  # set-up failures are failures of the run, with the seed
        run.violate("runner error", f"{type(e).__name__}: {e}")
    text = report(run, results)
    print(text, flush=True)
    with open(os.path.join(workdir, "report.txt"), "w") as f:
        f.write(text + "\n\nfault schedule as injected:\n" + "\n".join(run.fault_log) + "\n")
    if run.violations or args.keep:
        print(f"chaos: logs and the report kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if run.violations else 0

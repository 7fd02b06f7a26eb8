#!/usr/bin/python3
"""cl-tokend benchmark: throughput and latency next to nginx, upstream economy, and cost
(RSS, idle CPU, start to READY), in one run; writes the table into docs/performance.md.

    cmake --build build --target cl-tokend cltoken-load floor-server
    bench/run.py                  # the full run (several minutes), rewrites the table
    bench/run.py --quick          # seconds; what CI runs as the ctest bench.smoke
    bench/run.py --no-write       # print the table, leave docs/performance.md alone
    bench/run.py --only throughput  # the serving comparison alone, printed

Real processes only: the fake Commerce Layer auth server (tests/fake_auth), cl-tokend,
nginx (Debian nginx-light, one worker, its own config in a temporary folder), the floor
(bench/floor_server.cpp) and cltoken-load (bench/cltoken_load.cpp). Standard library only.
It never fails on a number: it exits non-zero only when something did not work (a process
did not start, an answer was not 200). docs/performance.md says what the numbers mean.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
NGINX = "/usr/sbin/nginx"
BEGIN = "<!-- bench:begin (written by bench/run.py; edit the prose around it, not this) -->"
END = "<!-- bench:end -->"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# /proc readings
# ---------------------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_ns(pid: int) -> int:
    """CPU time of every thread in ns (schedstat: finer than the 10 ms ticks of stat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended
    return total


def cpu_ticks(pid: int) -> int:
    """utime + stime from /proc/PID/stat, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tree_cpu_ns(pid: int) -> int:
    """cpu_ns of a process and of its children (nginx: the master and its worker)."""
    total = cpu_ns(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except FileNotFoundError:
        children = []
    for child in children:
        try:
            total += cpu_ns(child)
        except FileNotFoundError:
            pass  # a child that ended
    return total


def wait_socket(path: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {path} accepted")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.01)
        finally:
            s.close()
    raise RuntimeError(f"nothing accepts on {path}")


def raw_answer(sock: str, path: str) -> bytes:
    """One GET on a fresh connection: the whole answer as sent, head and body."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"{sock} closed before answering {path}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{sock}: answer to {path} without Content-Length")
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"{sock} closed in the middle of the answer to {path}")
            body += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            status = head.split(b"\r\n")[0].decode(errors="replace")
            raise RuntimeError(f"{sock}: {status} for {path}")
        return head + b"\r\n\r\n" + body[:length]
    finally:
        s.close()


def header(answer: bytes, name: str) -> str | None:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


# ---------------------------------------------------------------------------------------
# The contenders
# ---------------------------------------------------------------------------------------
class Nginx:
    """nginx (one worker, no access log) in two configurations, one process, two Unix sockets:

    - `file`: the document as a static file, with the tuning a user who cares applies to a
      small static file: `open_file_cache` (descriptor, size and mtime kept, so no open,
      fstat and close per request) and `sendfile` as given (on this machine `off` serves a
      ~1 KiB body faster: one writev instead of a writev plus a sendfile);
    - `memory`: the document inline in the config (`return 200 '...'`), answered from memory
      with no file at all: the least nginx can do per request.
    Both send Cache-Control: no-store and cl-tokend's Content-Type."""

    def __init__(self, workdir: str, url_path: str, body: bytes, content_type: str, sendfile: str):
        self.dir = os.path.join(workdir, "nginx")
        self.socket = os.path.join(self.dir, "file.sock")
        self.memory_socket = os.path.join(self.dir, "memory.sock")
        www = os.path.join(self.dir, "www")
        target = os.path.join(www, url_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), mode=0o755)
        for d in (self.dir, www):
            os.chmod(d, 0o755)
        with open(target, "wb") as f:
            f.write(body)
        os.chmod(target, 0o644)
        text = body.decode()
        # Inside '...' nginx reads $ as a variable and \ as an escape; a token document has neither.
        if any(c in text for c in "$\\'") or any(ord(c) < 0x20 for c in text):
            raise RuntimeError("the document has characters an inline nginx string cannot hold as they are")
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp)
        conf = f"""{user}worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  default_type "{content_type}";
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  sendfile {sendfile};
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  open_file_cache_min_uses 1;
  open_file_cache_errors on;
  server {{
    listen unix:{self.socket};
    root {www};
    location / {{ add_header Cache-Control no-store; }}
  }}
  server {{
    listen unix:{self.memory_socket};
    location = {url_path} {{ add_header Cache-Control no-store; return 200 '{text}'; }}
  }}
}}
"""
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        self.proc = subprocess.Popen([NGINX, "-e", os.path.join(self.dir, "error.log"), "-p", self.dir, "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_socket(self.socket, 10, self.proc)
        wait_socket(self.memory_socket, 10, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the master stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Floor:
    """bench/floor_server.cpp: answers every request with the bytes cl-tokend answered."""

    def __init__(self, binary: str, workdir: str, answer: bytes):
        self.binary = binary
        self.socket = os.path.join(workdir, "floor.sock")
        self.answer_file = os.path.join(workdir, "floor.answer")
        with open(self.answer_file, "wb") as f:
            f.write(answer)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Floor":
        self.proc = subprocess.Popen([self.binary, "--socket", self.socket, "--answer-file", self.answer_file])
        wait_socket(self.socket, 10, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def load(binary: str, sock: str, path: str, connections: int, duration: float, warmup: float,
         server_pid: int | None = None, body_file: str | None = None, cpu: int | None = None) -> dict:
    """One cltoken-load run (a POST of body_file when given), on CPU `cpu` alone when given.
    With server_pid, also the CPU time that process (and its children) spent over the
    measured window, per answer counted in it."""
    cmd = [binary, "--socket", sock, "--path", path, "--connections", str(connections),
           "--duration", str(duration), "--warmup", str(warmup), "--json", "--mark"]
    if body_file:
        cmd += ["--body-file", body_file]
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pin)
    marks = {}
    try:
        lines = []
        for line in proc.stdout:
            word = line.strip()
            if word in ("measuring", "measured"):
                if server_pid is not None:
                    marks[word] = tree_cpu_ns(server_pid)
            else:
                lines.append(word)
        proc.wait(duration + warmup + 60)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not lines or not lines[-1]:
        raise RuntimeError(f"cltoken-load failed ({proc.returncode}): {err.strip()}")
    r = json.loads(lines[-1])
    if r["errors"] or r["requests"] == 0:
        raise RuntimeError(f"cltoken-load against {sock}: {r['errors']} errors, {r['requests']} answers 200")
    if server_pid is not None:
        if len(marks) != 2:
            raise RuntimeError(f"cltoken-load against {sock} did not mark its measured window")
        r["cpu_us"] = (marks["measured"] - marks["measuring"]) / 1000 / r["requests"]
    return r


def sales_channel_credentials(n: int) -> tuple[list[dict], str]:
    """n public sales-channel clients for the fake, and the daemon's [credentials.*] for them."""
    from cltoken_harness import fake_harness
    clients = [fake_harness.client(f"sc-bench-{i:04d}", "sales_channel", None, None, fake_harness.SALES_CHANNEL_SCOPE)
               for i in range(n)]
    toml = "".join(f'\n[credentials.c{i:04d}]\nkind = "sales_channel"\nclient_id = "sc-bench-{i:04d}"\n'
                   f'scope = "{fake_harness.SALES_CHANNEL_SCOPE}"\nallow = ["*"]\n' for i in range(n))
    return clients, toml


# Limits raised so the benchmark measures serving, not the per-peer guard or the idle timer:
# every connection of the load generator has the same uid, and idle connections must stay
# open while they are counted.
BENCH_SERVER = {"max_connections": 4096, "max_connections_per_peer": 0, "max_requests_per_peer": 4096,
                "idle_timeout_ms": 300000}
BENCH_UPSTREAM = {"max_requests_per_minute": 100000}


# ---------------------------------------------------------------------------------------
# The three parts
# ---------------------------------------------------------------------------------------
# The servers of the throughput table, in its order, with what they are in its legend.
SERVERS = ("cl-tokend", "nginx-file", "nginx-memory", "floor")
TOKEN_PATH = "/v1/tokens/backoffice"
# A read with a min_ttl the held token satisfies (it lives 7,200 s, refreshed at 3/4 of
# that): answered from memory, never waiting for a refresh.
MIN_TTL_PATH = TOKEN_PATH + "?min_ttl=60"
STOREFRONT_CONNECTIONS = 16


def throughput(args, load_bin: str, floor_bin: str) -> dict:
    from cltoken_harness import Daemon, FakeAuth, fake_harness, make_workdir
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0)
    daemon = nginx = floor = None
    try:
        fake.start()
        daemon = Daemon(workdir, fake, server=BENCH_SERVER, upstream=BENCH_UPSTREAM, log_level="info")
        daemon.start()
        daemon.wait_ready(30)
        answer = raw_answer(daemon.socket, TOKEN_PATH)
        body = answer.split(b"\r\n\r\n", 1)[1]
        content_type = header(answer, "Content-Type") or "application/json"
        nginx = Nginx(workdir, TOKEN_PATH, body, content_type, args.nginx_sendfile).start()
        floor = Floor(floor_bin, workdir, answer).start()
        # A customer signed in once (password grant at the fake); the storefront then reads
        # the session's token on every page.
        login = daemon.post(f"/v1/customers/{fake_harness.SALES_CHANNEL_CREDENTIAL}/sessions",
                            {"username": fake_harness.CUSTOMER_USERNAME, "password": fake_harness.CUSTOMER_PASSWORD})
        if login.status != 201:
            raise RuntimeError(f"no customer session: {login.status} {login.body[:200]!r}")
        session_path = f"/v1/customers/{fake_harness.SALES_CHANNEL_CREDENTIAL}/sessions/{login.json()['session']}"
        # name -> (socket, path, pid whose CPU time is read)
        targets = {"cl-tokend": (daemon.socket, TOKEN_PATH, daemon.proc.pid),
                   "nginx-file": (nginx.socket, TOKEN_PATH, nginx.proc.pid),
                   "nginx-memory": (nginx.memory_socket, TOKEN_PATH, nginx.proc.pid),
                   "floor": (floor.socket, TOKEN_PATH, floor.proc.pid)}
        reads = {"min_ttl": (daemon.socket, MIN_TTL_PATH, daemon.proc.pid),
                 "session": (daemon.socket, session_path, daemon.proc.pid)}
        sizes = {name: len(raw_answer(sock, path)) for name, (sock, path, _) in {**targets, **reads}.items()}
        upstream_before = fake.stats()["token_requests_total"]
        runs: dict[tuple[str, int], list[dict]] = {}
        for rnd in range(args.rounds):
            for conns in args.connections:
                cells = list(targets.items())
                if conns == STOREFRONT_CONNECTIONS:
                    cells += list(reads.items())
                # Interleaved, and the order flips every round: no server always goes first.
                if rnd % 2:
                    cells.reverse()
                for name, (sock, path, pid) in cells:
                    r = load(load_bin, sock, path, conns, args.duration, args.warmup, pid)
                    runs.setdefault((name, conns), []).append(r)
                    log(f"round {rnd + 1}/{args.rounds} {name} {conns} conns: {r['rps']:.0f} req/s "
                        f"p99 {r['p99_us']:.0f} us, {r['cpu_us']:.1f} us CPU/request")
        upstream = fake.stats()["token_requests_total"] - upstream_before
        med = {}
        for key, rs in runs.items():
            med[key] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us", "p999_us", "cpu_us")}
        return {"median": med, "bytes": len(body), "sizes": sizes, "upstream_requests": upstream,
                "sendfile": args.nginx_sendfile}
    finally:
        for p in (floor, nginx, daemon):
            if p:
                p.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


VERIFY_CONNECTIONS = (1, 4, 16)
# The row the verification target is judged on: four connections keep the daemon's one
# core busy (one connection leaves it idle while the answer travels and the next request
# is written) without queues deep enough that the p99 measures waiting for a turn.
VERIFY_TARGET_CONNECTIONS = 4


def pin_cpus() -> tuple[int, int] | None:
    """(daemon CPU, load generator CPU) when this process may run on 2 CPUs or more: the
    daemon is single-threaded, so "one core" is one CPU of its own, and the load
    generator gets another rather than competing with it. None on a 1-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def pin_process(pid: int, cpu: int) -> None:
    """Every thread of pid onto `cpu` (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def verification(args, load_bin: str) -> dict:
    """POST /v1/verify of a valid sales-channel token with the key cached, at 1, 4 and 16
    connections, the daemon on one CPU and the load generator on another; and how many
    key-set requests that cost."""
    from cltoken_harness import Daemon, FakeAuth, make_workdir
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0)
    daemon = None
    try:
        fake.start()
        daemon = Daemon(workdir, fake, server=BENCH_SERVER, upstream=BENCH_UPSTREAM, log_level="info")
        daemon.start()
        daemon.wait_ready(30)
        token = daemon.get("/v1/tokens/storefront-eu").json()["access_token"]
        body_file = os.path.join(workdir, "verify.json")
        with open(body_file, "w") as f:
            json.dump({"access_token": token}, f)
        check = daemon.post("/v1/verify", {"access_token": token}).json()
        if check.get("valid") is not True:
            raise RuntimeError(f"the bench token does not verify: {check}")
        pins = None if args.no_pin else pin_cpus()
        if pins:
            pin_process(daemon.proc.pid, pins[0])
        jwks_before = fake.stats()["jwks_requests"]
        load_start = os.getloadavg()[0]
        runs: dict[int, list[dict]] = {}
        for rnd in range(args.rounds):
            for conns in VERIFY_CONNECTIONS:
                # CPU per verification from the daemon's schedstat over the measured window:
                # unlike the rate, it hardly moves with the load of a shared machine.
                r = load(load_bin, daemon.socket, "/v1/verify", conns, args.duration, args.warmup,
                         server_pid=daemon.proc.pid, body_file=body_file, cpu=pins[1] if pins else None)
                runs.setdefault(conns, []).append(r)
                log(f"round {rnd + 1}/{args.rounds} verify {conns} conns: {r['rps']:.0f} verifications/s "
                    f"p99 {r['p99_us']:.0f} us, {r['cpu_us']:.1f} us CPU/verification")
        med = {c: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us", "cpu_us")}
               for c, rs in runs.items()}
        return {"median": med, "jwks_requests": fake.stats()["jwks_requests"] - jwks_before, "pins": pins,
                "load": (load_start, os.getloadavg()[0])}
    finally:
        if daemon:
            daemon.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


JS_AUTH_VERIFY = r"""
import { Agent, setGlobalDispatcher } from 'undici'
import { jwtVerify } from '@commercelayer/js-auth'
// The fake's issuer is https://auth.localhost:PORT: resolve it to loopback, as the js-auth test does.
setGlobalDispatcher(new Agent({ connect: { lookup: (h, o, cb) => (typeof o === 'function' ? o : cb)(
  null, ...(o && o.all ? [[{ address: '127.0.0.1', family: 4 }]] : ['127.0.0.1', 4])) } }))
const t0 = performance.now()
await jwtVerify(process.env.TOKEN)
console.log(JSON.stringify({ verify_ms: performance.now() - t0 }))
"""


def js_auth_fresh(args) -> dict | None:
    """One jwtVerify in a fresh Node process with @commercelayer/js-auth (what a service
    without the daemon does per process): it fetches the key set from the token's own iss
    first. None when the library is not installed (ctest fake_auth.js_auth installs it)."""
    js_dir = os.path.join(args.build_dir, "tests", "fake_auth", "js")
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(js_dir, "node_modules", "@commercelayer", "js-auth")):
        return None
    from cltoken_harness import FakeAuth, fake_harness, make_workdir
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0, issuer="https://auth.localhost:{port}")
    script = os.path.join(js_dir, f"bench-verify-{os.getpid()}.mjs")
    try:
        fake.start()
        status, doc = fake.token(grant_type="client_credentials", client_id=fake_harness.SALES_CHANNEL_CLIENT_ID,
                                 scope=fake_harness.SALES_CHANNEL_SCOPE)
        if status != 200:
            raise RuntimeError(f"no token from the fake: {doc}")
        with open(script, "w") as f:
            f.write(JS_AUTH_VERIFY)
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=fake.ca_file, TOKEN=doc["access_token"])
        walls, verifies = [], []
        for _ in range(max(3, args.rounds)):
            t0 = time.monotonic()
            out = subprocess.run([node, script], cwd=js_dir, env=env, capture_output=True, text=True, timeout=60)
            walls.append((time.monotonic() - t0) * 1000)
            if out.returncode != 0:
                raise RuntimeError(f"jwtVerify failed: {out.stderr.strip()[-400:]}")
            verifies.append(json.loads(out.stdout.strip().splitlines()[-1])["verify_ms"])
        return {"process_ms": statistics.median(walls), "verify_ms": statistics.median(verifies),
                "jwks_requests": fake.stats()["jwks_requests"], "runs": len(walls)}
    finally:
        if os.path.exists(script):
            os.unlink(script)
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def render_verification(ver: dict) -> str:
    pins = ver.get("pins")
    where = (f"the daemon pinned to CPU {pins[0]}, the load generator to CPU {pins[1]}" if pins
             else "daemon and load generator not pinned")
    lines = ["", "**Token verification** (`POST /v1/verify` of a valid sales-channel token, key cached; "
             f"{where}; latency in µs; daemon CPU per verification from /proc/PID/task/*/schedstat; "
             f"1-minute load average {ver['load'][0]:.1f} at the start, {ver['load'][1]:.1f} at the end). "
             f"Target: ≥ 20,000/s with p99 < 1 ms, judged at {VERIFY_TARGET_CONNECTIONS} connections "
             "(the daemon's core kept busy without deep queues); every row is checked against it.", "",
             "| connections | verifications/s | p50 | p99 | CPU µs | ≥ 20,000/s and p99 < 1 ms |",
             "|---|---|---|---|---|---|"]
    for conns, m in sorted(ver["median"].items()):
        ok = verdict(m['rps'] >= 20000 and m['p99_us'] < 1000)
        if conns == VERIFY_TARGET_CONNECTIONS:
            ok += " (the target's row)"
        lines.append(f"| {conns} | {m['rps']:,.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['cpu_us']:.1f} | {ok} |")
    lines += ["", f"Key-set requests to the auth server during the whole measurement: {ver['jwks_requests']}."]
    js = ver.get("js_auth")
    if js is None:
        lines += ["", "js-auth `jwtVerify` in a fresh Node process: not measured (the library is installed by "
                  "ctest `fake_auth.js_auth`)."]
    else:
        lines += ["", f"Next to it, one `jwtVerify` of @commercelayer/js-auth in a fresh Node process (median of "
                  f"{js['runs']}): {js['verify_ms']:.1f} ms for the call, which fetches the key set first, "
                  f"{js['process_ms']:.0f} ms for the whole process; {js['jwks_requests']} key-set requests for "
                  f"{js['runs']} verifications."]
    return "\n".join(lines) + "\n"


CLIENT_VIA_DAEMON = r"""
import socket, sys, time
sock, path = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock); break
    except OSError:
        s.close()
        if time.monotonic() > deadline: sys.exit(1)
        time.sleep(0.005)
s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
data = b""
while chunk := s.recv(65536): data += chunk
sys.exit(0 if data.startswith(b"HTTP/1.1 200") else 2)
"""

CLIENT_OWN_CACHE = r"""
import http.client, json, ssl, sys, urllib.parse
url, ca, client_id = sys.argv[1], sys.argv[2], sys.argv[3]
u = urllib.parse.urlsplit(url)
c = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca), timeout=60)
c.request("POST", "/oauth/token", body=json.dumps({"grant_type": "client_credentials", "client_id": client_id}),
          headers={"Content-Type": "application/json"})
sys.exit(0 if c.getresponse().status == 200 else 2)
"""


def economy(args) -> dict:
    from cltoken_harness import Daemon, FakeAuth, make_workdir
    k, m = args.credentials, args.processes
    clients, toml = sales_channel_credentials(k)
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, clients=clients, rate_limit_per_minute=0)
    daemon = None
    try:
        fake.start()
        daemon = Daemon(workdir, fake, credentials=toml, server=BENCH_SERVER, upstream=BENCH_UPSTREAM,
                        log_level="info")
        before = fake.stats()["token_requests_total"]
        # Cold: the daemon and its M clients start together; clients wait for the socket.
        daemon.start(wait_ready=False)
        procs = [subprocess.Popen([sys.executable, "-c", CLIENT_VIA_DAEMON, daemon.socket, f"/v1/tokens/c{i % k:04d}"])
                 for i in range(m)]
        codes = [p.wait(120) for p in procs]
        if any(codes):
            raise RuntimeError(f"economy: {sum(1 for c in codes if c)} of {m} clients got no token from cl-tokend")
        shared = fake.stats()["token_requests_total"] - before
        # What a library gives: each process has its own cache, so each fetches its own token.
        before = fake.stats()["token_requests_total"]
        procs = [subprocess.Popen([sys.executable, "-c", CLIENT_OWN_CACHE, fake.url, fake.ca_file,
                                   f"sc-bench-{i % k:04d}"]) for i in range(m)]
        codes = [p.wait(120) for p in procs]
        if any(codes):
            raise RuntimeError(f"economy: {sum(1 for c in codes if c)} of {m} direct clients got no token")
        own = fake.stats()["token_requests_total"] - before
        return {"k": k, "m": m, "shared": shared, "own": own}
    finally:
        if daemon:
            daemon.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def steady_state(args) -> dict:
    """Upstream requests per token lifetime once started, against the fake's faithful
    behaviour: the current token comes back until it has the reissue window left. Real time
    needs short tokens, so lifetime and window keep Commerce Layer's ratio (900 s of 7200 s)
    at a scale of seconds. Measured with the daemon told about the window, and with
    refresh.reissue_window_s = 0 (planning by refresh.at alone) for comparison."""
    from cltoken_harness import Daemon, FakeAuth, fake_harness, make_workdir
    k, lifetime, window, lifetimes = args.credentials, args.steady_lifetime, args.steady_lifetime // 8, args.steady_lifetimes
    results = {}
    for label, daemon_window in (("aware", window), ("unaware", 0)):
        clients = [fake_harness.client(f"sc-steady-{i:04d}", "sales_channel", None, lifetime,
                                       fake_harness.SALES_CHANNEL_SCOPE) for i in range(k)]
        toml = "".join(f'\n[credentials.c{i:04d}]\nkind = "sales_channel"\nclient_id = "sc-steady-{i:04d}"\n'
                       f'scope = "{fake_harness.SALES_CHANNEL_SCOPE}"\nallow = ["*"]\n' for i in range(k))
        workdir = make_workdir("cltok-bench-")
        fake = FakeAuth(workdir, clients=clients, rate_limit_per_minute=0, reissue_window=window)
        daemon = None
        try:
            fake.start()
            # The config example's refresh settings, only the window scaled like the lifetime.
            daemon = Daemon(workdir, fake, credentials=toml, server=BENCH_SERVER, upstream=BENCH_UPSTREAM,
                            log_level="info", refresh={"at": 0.75, "jitter": 0.05, "min_ttl": 0,
                                                       "backoff_initial_ms": 1000, "backoff_max_ms": 300000,
                                                       "reissue_window_s": daemon_window})
            daemon.start()
            daemon.wait_ready(30)
            start = fake.stats()
            t0 = time.monotonic()
            while time.monotonic() - t0 < lifetimes * lifetime:
                time.sleep(0.5)  # the daemon works alone; nothing to do but let the time pass
            end = fake.stats()
            requests = end["token_requests_total"] - start["token_requests_total"]
            issued = end["tokens_issued"] - start["tokens_issued"]
            # Each token lives one lifetime: requests per new token is requests per lifetime
            # of a credential's tokens (1.0 = no request that brought nothing new).
            results[label] = {"requests": requests, "issued": issued,
                              "per_lifetime": requests / max(issued, 1), "daemon_window": daemon_window}
        finally:
            if daemon:
                daemon.stop()
            fake.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return {"k": k, "lifetime": lifetime, "window": window, "lifetimes": lifetimes, **results}


def start_to_ready(args) -> list[float]:
    """Spawn to READY=1 on a NOTIFY_SOCKET this script owns, in ms."""
    from cltoken_harness import Daemon, FakeAuth, make_workdir
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0)
    notify_path = os.path.join(workdir, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(notify_path)
    os.chmod(notify_path, 0o666)
    times = []
    try:
        fake.start()
        for i in range(args.ready_runs):
            d = Daemon(workdir, fake, name=f"r{i}", upstream=BENCH_UPSTREAM, log_level="info",
                       env={"NOTIFY_SOCKET": notify_path})
            t0 = time.perf_counter()
            d.start(wait_ready=False)
            ns.settimeout(10)
            try:
                while True:
                    msg = ns.recv(4096).decode(errors="replace")
                    if "READY=1" in msg.split("\n"):
                        times.append((time.perf_counter() - t0) * 1000)
                        break
            finally:
                d.stop()
        return times
    finally:
        ns.close()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cost(args, load_bin: str) -> dict:
    from cltoken_harness import Daemon, FakeAuth, make_workdir
    out: dict = {"rss": {}}
    biggest = max(args.cred_counts)
    clients, _ = sales_channel_credentials(biggest)
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, clients=clients, rate_limit_per_minute=0)
    try:
        fake.start()
        for n in args.cred_counts:
            _, toml = sales_channel_credentials(n)
            d = Daemon(workdir, fake, name=f"c{n}", credentials=toml, server=BENCH_SERVER, upstream=BENCH_UPSTREAM,
                       log_level="info")
            try:
                t0 = time.monotonic()
                d.start()
                d.wait_ready(600)  # every credential holds a token: the steady state
                log(f"{n} credentials ready in {time.monotonic() - t0:.1f} s")
                # Every credential's token asked for once, so documents and caches are warm.
                c = d.client()
                for i in range(n):
                    if c.get(f"/v1/tokens/c{i:04d}").status != 200:
                        raise RuntimeError(f"no token for c{i:04d}")
                c.close()
                pid = d.proc.pid
                out["rss"][n] = rss_kib(pid)
                log(f"{n} credentials: VmRSS {out['rss'][n]} KiB")
                if n != biggest:
                    continue
                # Idle connections that each served one request (the buffers they keep are the
                # ones a busy storefront leaves behind), held open while RSS is read.
                holder = subprocess.Popen([load_bin, "--socket", d.socket, "--path", "/v1/tokens/c0000",
                                           "--hold", str(args.idle_connections)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                try:
                    line = holder.stdout.readline()
                    if not line.startswith("holding"):
                        raise RuntimeError("cltoken-load --hold did not open its connections")
                    out["rss_idle_conns"] = rss_kib(pid)
                    log(f"{n} credentials + {args.idle_connections} idle connections: VmRSS "
                        f"{out['rss_idle_conns']} KiB")
                    # Idle CPU: nothing asks; only timers run (refresh schedule, heartbeat).
                    ns0, t0_ticks, w0 = cpu_ns(pid), cpu_ticks(pid), time.monotonic()
                    time.sleep(args.idle_seconds)  # a benchmark measures a rate over wall time
                    ns1, t1_ticks, w1 = cpu_ns(pid), cpu_ticks(pid), time.monotonic()
                    out["idle_cpu_pct"] = (ns1 - ns0) / 1e9 / (w1 - w0) * 100
                    out["idle_cpu_ticks"] = t1_ticks - t0_ticks
                    out["idle_seconds"] = w1 - w0
                    log(f"idle CPU {out['idle_cpu_pct']:.4f} % over {w1 - w0:.1f} s")
                finally:
                    holder.stdin.close()
                    holder.wait(30)
            finally:
                d.stop()
        return out
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render_steady(steady: dict) -> list[str]:
    lines = [f"**Steady state**: {steady['k']} credentials over {steady['lifetimes']} token lifetimes of "
             f"{steady['lifetime']} s; the fake hands back the current token until it has {steady['window']} s "
             "left (Commerce Layer: 900 s of 7200 s, the same ratio)",
             "",
             "| refresh.reissue_window_s | upstream token requests | new tokens | requests per token lifetime |",
             "|---|---|---|---|"]
    for label in ("aware", "unaware"):
        r = steady[label]
        lines.append(f"| {r['daemon_window']} | {r['requests']} | {r['issued']} | {r['per_lifetime']:.2f} |")
    return lines


LEGEND = {"cl-tokend": "cl-tokend",
          "nginx-file": "nginx, static file",
          "nginx-memory": "nginx, from memory",
          "floor": "floor",
          "min_ttl": "cl-tokend, `?min_ttl=60`",
          "session": "cl-tokend, customer session"}


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def render_throughput(args, tp: dict) -> list[str]:
    med, sizes = tp["median"], tp["sizes"]
    lines = ["**Throughput and latency** (`GET /v1/tokens/backoffice`, the same "
             f"{tp['bytes']}-byte document from each server; whole answers of {sizes['cl-tokend']} bytes from "
             f"cl-tokend and the floor, {sizes['nginx-file']} from nginx's static file, {sizes['nginx-memory']} "
             f"from nginx's memory; nginx with `sendfile {tp['sendfile']}`; latency in µs; CPU: the server's "
             "CPU time over the measured window per answer, all its threads or processes)",
             "",
             "| connections | server | requests/s | p50 | p99 | p99.9 | CPU µs/request |",
             "|---|---|---|---|---|---|---|"]
    for conns in args.connections:
        for name in SERVERS:
            r = med[(name, conns)]
            lines.append(f"| {conns} | {LEGEND[name]} | {r['rps']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                         f"{r['p999_us']:.0f} | {r['cpu_us']:.1f} |")
    lines += ["",
              "**cl-tokend relative to each** (requests/s: above 1 is cl-tokend faster; p99 and CPU per request: "
              "below 1 is cl-tokend better)",
              "",
              "| connections | vs | requests/s | p99 | CPU/request |",
              "|---|---|---|---|---|"]
    for conns in args.connections:
        t = med[("cl-tokend", conns)]
        for name in SERVERS[1:]:
            o = med[(name, conns)]
            lines.append(f"| {conns} | {LEGEND[name]} | {ratio(t['rps'], o['rps'])} | "
                         f"{ratio(t['p99_us'], o['p99_us'])} | {ratio(t['cpu_us'], o['cpu_us'])} |")
    if ("session", STOREFRONT_CONNECTIONS) in med:
        lines += ["",
                  f"**What a page render costs** (cl-tokend, {STOREFRONT_CONNECTIONS} connections, same run; "
                  "latency in µs)",
                  "",
                  "| read | answer bytes | requests/s | p50 | p99 | p99.9 | CPU µs/request |",
                  "|---|---|---|---|---|---|---|"]
        for name, what in (("cl-tokend", "`GET /v1/tokens/backoffice`"),
                           ("min_ttl", "`GET /v1/tokens/backoffice?min_ttl=60` (no refresh needed)"),
                           ("session", "`GET /v1/customers/storefront-eu/sessions/SESSION`")):
            r = med[(name, STOREFRONT_CONNECTIONS)]
            lines.append(f"| {what} | {sizes[name]} | {r['rps']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                         f"{r['p999_us']:.0f} | {r['cpu_us']:.1f} |")
        lines += ["", f"Upstream token requests during all the throughput runs: {tp['upstream_requests']}."]
    return lines


def throughput_targets(tp: dict) -> list[str]:
    """The serving targets, each against the tuned nginx (static file) unless it says otherwise."""
    med = tp["median"]
    lines = []

    def both(name: str, conns: int):
        return med.get(("cl-tokend", conns)), med.get((name, conns))

    t, n = both("nginx-file", 16)
    if t and n:
        lines.append(f"| 16 connections: requests/s ≥ 1.2 × nginx (static file) | "
                     f"{verdict(t['rps'] >= 1.2 * n['rps'])} ({t['rps'] / n['rps']:.2f}×) |")
        lines.append(f"| 16 connections: p99 ≤ 0.8 × nginx (static file) | "
                     f"{verdict(t['p99_us'] <= 0.8 * n['p99_us'])} ({t['p99_us'] / n['p99_us']:.2f}×: "
                     f"{t['p99_us']:.0f} vs {n['p99_us']:.0f} µs) |")
    for conns in (1, 64):
        t, n = both("nginx-file", conns)
        if t and n:
            lines.append(f"| {conns} connection{'s' if conns != 1 else ''}: requests/s ≥ nginx (static file) | "
                         f"{verdict(t['rps'] >= n['rps'])} ({t['rps'] / n['rps']:.2f}×) |")
    t, f = both("floor", 16)
    if t and f:
        lines.append(f"| 16 connections: requests/s ≥ 0.7 × the floor | {verdict(t['rps'] >= 0.7 * f['rps'])} "
                     f"({t['rps'] / f['rps']:.2f}×) |")
    t, n = both("nginx-file", 16)
    if t and n:
        lines.append(f"| 16 connections: CPU per request < nginx (static file) | "
                     f"{verdict(t['cpu_us'] < n['cpu_us'])} ({t['cpu_us']:.1f} vs {n['cpu_us']:.1f} µs) |")
    return lines


def render(args, tp: dict, eco: dict, steady: dict, ready: list[float], cst: dict) -> str:
    nginx_version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    try:
        commit = subprocess.run(["git", "-C", SOURCE, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    lines = [f"Run: `{' '.join(['bench/run.py'] + args.argv)}` at commit {commit}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs, "
             f"Linux {platform.release()}, nginx {nginx_version}; "
             f"{args.rounds} rounds of {args.duration:g} s (after {args.warmup:g} s warm-up) per cell, medians.",
             ""]
    lines += render_throughput(args, tp)
    lines += ["",
              f"**Upstream economy**: {eco['m']} client processes starting cold at once, {eco['k']} credentials",
              "",
              "| who caches | upstream token requests | ratio |",
              "|---|---|---|",
              f"| cl-tokend (one cache for the host) | {eco['shared']} | 1 |",
              f"| each process its own cache (a library) | {eco['own']} | {eco['own'] / max(eco['shared'], 1):.1f} |",
              "",
              *render_steady(steady),
              "",
              "**Cost** (cl-tokend alone; VmRSS from /proc, CPU from /proc/PID/task/*/schedstat)",
              "",
              "| measure | value |",
              "|---|---|"]
    for n, kib in cst["rss"].items():
        lines.append(f"| RSS, {n} credential{'s' if n != 1 else ''} | {kib / 1024:.1f} MiB |")
    biggest = max(cst["rss"])
    lines += [f"| RSS, {biggest} credentials + {args.idle_connections} idle connections | "
              f"{cst['rss_idle_conns'] / 1024:.1f} MiB |",
              f"| CPU while idle ({cst['idle_seconds']:.0f} s, with the above) | {cst['idle_cpu_pct']:.4f} % "
              f"({cst['idle_cpu_ticks']} ticks of utime+stime) |",
              f"| start to READY=1 (median of {len(ready)}) | {statistics.median(ready):.1f} ms "
              f"(min {min(ready):.1f}, max {max(ready):.1f}) |",
              "",
              "**Targets**",
              "",
              "| target | result |",
              "|---|---|"]
    lines += throughput_targets(tp)
    big = cst["rss_idle_conns"] / 1024
    lines += [f"| RSS < 20 MiB with {biggest} credentials and {args.idle_connections} idle connections | "
              f"{verdict(big < 20)} ({big:.1f} MiB) |",
              f"| idle CPU < 0.1 % | {verdict(cst['idle_cpu_pct'] < 0.1)} ({cst['idle_cpu_pct']:.4f} %) |",
              f"| start to READY < 50 ms | {verdict(statistics.median(ready) < 50)} "
              f"({statistics.median(ready):.1f} ms) |",
              f"| M cold clients cost K upstream requests | {verdict(eco['shared'] == eco['k'])} "
              f"({eco['shared']} for K = {eco['k']}) |",
              f"| steady state: 1.0 upstream request per credential per token lifetime | "
              f"{verdict(steady['aware']['per_lifetime'] <= 1.0)} "
              f"({steady['aware']['per_lifetime']:.2f}) |"]
    return "\n".join(lines) + "\n"


def write_doc(table: str) -> None:
    path = os.path.join(SOURCE, "docs", "performance.md")
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise RuntimeError(f"{path} lacks the markers {BEGIN!r} / {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n" + table + END + tail)
    log(f"wrote the table into {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--quick", action="store_true", help="everything tiny: proves it works, the numbers mean little")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--steady-lifetime", type=int, default=48,
                    help="token lifetime (s) for the steady-state economy; the window is an eighth of it")
    ap.add_argument("--steady-lifetimes", type=int, default=4, help="how many lifetimes it runs")
    ap.add_argument("--only", choices=["steady", "throughput", "verify"],
                    help="run one part alone and print its table (nothing written)")
    ap.add_argument("--no-pin", action="store_true",
                    help="verification: leave the daemon and the load generator to the scheduler (for comparison)")
    ap.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    ap.add_argument("--nginx-sendfile", choices=["on", "off"], default="off",
                    help="nginx's sendfile for the static file (off: the faster for a ~1 KiB body here)")
    ap.add_argument("--credentials", type=int, default=4, help="K, for the upstream economy")
    ap.add_argument("--processes", type=int, default=64, help="M, for the upstream economy")
    ap.add_argument("--cred-counts", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100, 1000])
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--ready-runs", type=int, default=7)
    argv = sys.argv[1:]
    args = ap.parse_args()
    args.argv = [a for a in argv if not a.startswith("--build-dir") and a != "--no-write"]
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 0.5, 0.2
        args.connections = [STOREFRONT_CONNECTIONS]  # every server and every read once
        args.credentials, args.processes = 2, 6
        args.steady_lifetime, args.steady_lifetimes = 8, 1
        args.cred_counts, args.idle_connections, args.idle_seconds, args.ready_runs = [1, 10], 50, 0.5, 2

    os.environ.setdefault("CL_TOKEND", os.path.join(args.build_dir, "daemon", "cl-tokend"))
    os.environ.setdefault("CLTOKEN_SOURCE_DIR", SOURCE)
    load_bin = os.environ.get("CLTOKEN_LOAD", os.path.join(args.build_dir, "bench", "cltoken-load"))
    floor_bin = os.environ.get("CLTOKEN_FLOOR", os.path.join(args.build_dir, "bench", "floor-server"))
    for b in (os.environ["CL_TOKEND"], load_bin, floor_bin, NGINX):
        if not os.access(b, os.X_OK):
            print(f"bench/run.py: {b} is missing (build cl-tokend, cltoken-load and floor-server; "
                  "apt-get install nginx-light)", file=sys.stderr)
            return 1

    if args.only == "steady":
        log("steady state: upstream requests per token lifetime")
        print("\n".join(render_steady(steady_state(args))))
        return 0
    if args.only == "verify":
        log("token verification")
        ver = verification(args, load_bin)
        ver["js_auth"] = js_auth_fresh(args)
        print(render_verification(ver))
        return 0
    if args.only == "throughput":
        log("throughput and latency alone")
        tp = throughput(args, load_bin, floor_bin)
        print("\n".join(render_throughput(args, tp) + ["", "| target | result |", "|---|---|"]
                        + throughput_targets(tp)))
        return 0
    log("throughput and latency: cl-tokend, nginx (static file, from memory) and the floor, interleaved")
    tp = throughput(args, load_bin, floor_bin)
    log("upstream economy")
    eco = economy(args)
    log("steady state: upstream requests per token lifetime")
    steady = steady_state(args)
    log("start to READY")
    ready = start_to_ready(args)
    log("cost: RSS and idle CPU")
    cst = cost(args, load_bin)
    log("token verification")
    ver = verification(args, load_bin)
    ver["js_auth"] = js_auth_fresh(args)
    table = render(args, tp, eco, steady, ready, cst) + render_verification(ver)
    print(table)
    if not args.no_write and not args.quick:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

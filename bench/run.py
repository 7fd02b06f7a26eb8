#!/usr/bin/python3
"""cl-tokend benchmark: throughput and latency next to nginx, upstream economy, and cost
(RSS, idle CPU, start to READY), in one run; writes the table into docs/performance.md.

    cmake --build build --target cl-tokend cltoken-load
    bench/run.py                  # the full run (several minutes), rewrites the table
    bench/run.py --quick          # seconds; what CI runs as the ctest bench.smoke
    bench/run.py --no-write       # print the table, leave docs/performance.md alone

Real processes only: the fake Commerce Layer auth server (tests/fake_auth), cl-tokend,
nginx (Debian nginx-light, one worker, its own config in a temporary folder) and
cltoken-load (bench/cltoken_load.cpp). Standard library only. It never fails on a number:
it exits non-zero only when something did not work (a process did not start, an answer
was not 200). docs/performance.md says what the numbers mean.
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


# ---------------------------------------------------------------------------------------
# The contenders
# ---------------------------------------------------------------------------------------
class Nginx:
    """nginx serving one static JSON file over a Unix socket: one worker, no access log."""

    def __init__(self, workdir: str, url_path: str, body: bytes):
        self.dir = os.path.join(workdir, "nginx")
        self.socket = os.path.join(self.dir, "nginx.sock")
        www = os.path.join(self.dir, "www")
        target = os.path.join(www, url_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), mode=0o755)
        for d in (self.dir, www):
            os.chmod(d, 0o755)
        with open(target, "wb") as f:
            f.write(body)
        os.chmod(target, 0o644)
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
  default_type application/json;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {{
    listen unix:{self.socket};
    root {www};
    location / {{ add_header Cache-Control no-store; }}
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
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the master stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load(binary: str, sock: str, path: str, connections: int, duration: float, warmup: float) -> dict:
    out = subprocess.run([binary, "--socket", sock, "--path", path, "--connections", str(connections),
                          "--duration", str(duration), "--warmup", str(warmup), "--json"],
                         capture_output=True, text=True, timeout=duration + warmup + 60)
    if not out.stdout.strip():
        raise RuntimeError(f"cltoken-load failed ({out.returncode}): {out.stderr.strip()}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["errors"] or r["requests"] == 0:
        raise RuntimeError(f"cltoken-load against {sock}: {r['errors']} errors, {r['requests']} answers 200")
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
def throughput(args, load_bin: str) -> dict:
    from cltoken_harness import Daemon, FakeAuth, make_workdir
    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0)
    daemon = nginx = None
    path = "/v1/tokens/backoffice"
    try:
        fake.start()
        daemon = Daemon(workdir, fake, server=BENCH_SERVER, upstream=BENCH_UPSTREAM, log_level="info")
        daemon.start()
        daemon.wait_ready(30)
        body = daemon.get(path).body
        nginx = Nginx(workdir, path, body).start()
        targets = {"nginx": nginx.socket, "cl-tokend": daemon.socket}
        runs: dict[tuple[str, int], list[dict]] = {}
        for rnd in range(args.rounds):
            for conns in args.connections:
                # Interleaved, and the order flips every round: neither side always goes first.
                order = list(targets) if rnd % 2 == 0 else list(reversed(targets))
                for name in order:
                    r = load(load_bin, targets[name], path, conns, args.duration, args.warmup)
                    runs.setdefault((name, conns), []).append(r)
                    log(f"round {rnd + 1}/{args.rounds} {name} {conns} conns: {r['rps']:.0f} req/s "
                        f"p99 {r['p99_us']:.0f} us")
        med = {}
        for (name, conns), rs in runs.items():
            med[(name, conns)] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us", "p999_us")}
        return {"median": med, "bytes": len(body)}
    finally:
        if nginx:
            nginx.stop()
        if daemon:
            daemon.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def verification(args, load_bin: str) -> dict:
    """POST /v1/verify of a valid sales-channel token with the key cached, one connection
    (one client on one core) and 16; and how many key-set requests that cost."""
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
        jwks_before = fake.stats()["jwks_requests"]
        runs: dict[int, list[dict]] = {}
        for rnd in range(args.rounds):
            for conns in (1, 16):
                out = subprocess.run([load_bin, "--socket", daemon.socket, "--path", "/v1/verify", "--body-file", body_file,
                                      "--connections", str(conns), "--duration", str(args.duration),
                                      "--warmup", str(args.warmup), "--json"],
                                     capture_output=True, text=True, timeout=args.duration + args.warmup + 60)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if r["errors"] or r["requests"] == 0:
                    raise RuntimeError(f"cltoken-load on /v1/verify: {r['errors']} errors, {r['requests']} answers 200")
                runs.setdefault(conns, []).append(r)
                log(f"round {rnd + 1}/{args.rounds} verify {conns} conns: {r['rps']:.0f} verifications/s "
                    f"p99 {r['p99_us']:.0f} us")
        med = {c: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us")} for c, rs in runs.items()}
        return {"median": med, "jwks_requests": fake.stats()["jwks_requests"] - jwks_before}
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
    lines = ["", "**Token verification** (`POST /v1/verify` of a valid sales-channel token, key cached; "
             "latency in µs)", "",
             "| connections | verifications/s | p50 | p99 | target |", "|---|---|---|---|---|"]
    for conns, m in sorted(ver["median"].items()):
        target = (f"{verdict(m['rps'] >= 20000 and m['p99_us'] < 1000)} ≥ 20,000/s, p99 < 1 ms" if conns == 1 else "")
        lines.append(f"| {conns} | {m['rps']:,.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | {target} |")
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
             "",
             "**Throughput and latency** (`GET /v1/tokens/backoffice`, the same "
             f"{tp['bytes']}-byte document; latency in µs)",
             "",
             "| connections | server | requests/s | p50 | p99 | p99.9 | cl-tokend / nginx req/s | p99 cl-tokend / nginx |",
             "|---|---|---|---|---|---|---|---|"]
    med = tp["median"]
    for conns in args.connections:
        n, t = med[("nginx", conns)], med[("cl-tokend", conns)]
        for name, r in (("nginx", n), ("cl-tokend", t)):
            ratio = f"{t['rps'] / n['rps']:.2f}" if name == "cl-tokend" else ""
            p99r = f"{t['p99_us'] / n['p99_us']:.2f}" if name == "cl-tokend" else ""
            lines.append(f"| {conns} | {name} | {r['rps']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                         f"{r['p999_us']:.0f} | {ratio} | {p99r} |")
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
    n16, t16 = med.get(("nginx", 16)), med.get(("cl-tokend", 16))
    if n16 and t16:
        lines.append(f"| 16 connections: requests/s ≥ nginx | {verdict(t16['rps'] >= n16['rps'])} "
                     f"({t16['rps'] / n16['rps']:.2f}×) |")
        lines.append(f"| 16 connections: p99 ≤ nginx | {verdict(t16['p99_us'] <= n16['p99_us'])} "
                     f"({t16['p99_us']:.0f} vs {n16['p99_us']:.0f} µs) |")
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
    ap.add_argument("--only", choices=["steady", "verify"], help="run one part alone and print its table (nothing written)")
    ap.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
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
        args.credentials, args.processes = 2, 6
        args.steady_lifetime, args.steady_lifetimes = 8, 1
        args.cred_counts, args.idle_connections, args.idle_seconds, args.ready_runs = [1, 10], 50, 0.5, 2

    os.environ.setdefault("CL_TOKEND", os.path.join(args.build_dir, "daemon", "cl-tokend"))
    os.environ.setdefault("CLTOKEN_SOURCE_DIR", SOURCE)
    load_bin = os.environ.get("CLTOKEN_LOAD", os.path.join(args.build_dir, "bench", "cltoken-load"))
    for b in (os.environ["CL_TOKEND"], load_bin, NGINX):
        if not os.access(b, os.X_OK):
            print(f"bench/run.py: {b} is missing (build cl-tokend and cltoken-load; apt-get install nginx-light)",
                  file=sys.stderr)
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
    log("throughput and latency, cl-tokend and nginx interleaved")
    tp = throughput(args, load_bin)
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

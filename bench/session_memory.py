#!/usr/bin/python3
"""Customer-session memory: resident memory per session held by cl-tokend.
docs/customer-sessions.md quotes it. (bench/ belongs to the benchmark suite; this file is
the customer sessions' and stands alone.)

Real processes: the fake auth server (tests/fake_auth) and one cl-tokend. One customer
logs in at the fake; the daemon then adopts that login N times (POST
/v1/customers/NAME/sessions {"access_token","refresh_token"}), which holds N sessions
with real-sized tokens (a ~700-byte JWT and a refresh token) and costs no upstream
request. The daemon's VmRSS (/proc/PID/status) is read before and after, once the
allocator has settled; bytes per session = (after - before) / N.

    cmake --build build --target cl-tokend
    bench/session_memory.py [--build-dir build] [--sessions 20000] [--store memory|file|redis]

With --store file or redis the sessions are also kept in the store ([store] backend, docs/
customer-sessions.md): it reports the store's bytes per session too (the journal's size,
or Redis's used_memory, before and after, over N), and the daemon's memory with the store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--sessions", type=int, default=20000)
    ap.add_argument("--store", choices=("memory", "file", "redis"), default="memory")
    args = ap.parse_args()
    os.environ.setdefault("CL_TOKEND", os.path.join(args.build_dir, "daemon", "cl-tokend"))
    os.environ.setdefault("CLTOKEN_SOURCE_DIR", SOURCE)

    from cltoken_harness import Daemon, FakeAuth, fake_harness, make_workdir  # noqa: E402
    from store_harness import RedisServer, store_section  # noqa: E402

    workdir = make_workdir("cltok-bench-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0)
    daemon = None
    redis = None
    try:
        fake.start()
        store = ""
        if args.store != "memory":
            key_file = os.path.join(workdir, "store.key")
            with open(key_file, "wb") as f:
                f.write(os.urandom(32).hex().encode())
            os.chmod(key_file, 0o600)
            if args.store == "redis":
                redis = RedisServer(workdir)
                redis.start()
                store = store_section(backend="redis", url=redis.url, key_file=key_file)
            else:
                store = store_section(backend="file", path=os.path.join(workdir, "state"), key_file=key_file)

        def store_bytes() -> int:
            if args.store == "file":
                journal = os.path.join(workdir, "sessions")
                return os.path.getsize(journal) if os.path.exists(journal) else 0
            if args.store == "redis":
                info = redis.cli("INFO", "memory")
                return int(next(l.split(":")[1] for l in info.splitlines() if l.startswith("used_memory:")))
            return 0

        daemon = Daemon(workdir, fake, log_level="warn",
                        extra=f"[customers]\nmax_sessions = {args.sessions + 1000}\nmax_sessions_per_peer = 0\n"
                              f"max_memory_mib = 0\nlogin_burst = {args.sessions + 1000}\n" + store)
        daemon.start()
        daemon.wait_ready()
        status, login = fake.token(grant_type="password", client_id=fake_harness.SALES_CHANNEL_CLIENT_ID,
                                   username=fake_harness.CUSTOMER_USERNAME, password=fake_harness.CUSTOMER_PASSWORD)
        assert status == 200, login
        body = {"access_token": login["access_token"], "refresh_token": login["refresh_token"]}
        path = f"/v1/customers/{fake_harness.SALES_CHANNEL_CREDENTIAL}/sessions"
        client = daemon.client()
        # Warm up: the connection, the first allocations, the hash table's first buckets.
        for _ in range(100):
            assert client.request("POST", path, body).status == 201
        before = rss_bytes(daemon.proc.pid)
        store_before = store_bytes()
        for _ in range(args.sessions):
            r = client.request("POST", path, body)
            assert r.status == 201, r
        client.close()
        after = rss_bytes(daemon.proc.pid)
        held = daemon.get("/v1/status").json()["customers"]["sessions"]
        per = (after - before) / args.sessions
        print(f"sessions created: {args.sessions} (held: {held})")
        print(f"access token: {len(login['access_token'])} bytes, refresh token: {len(login['refresh_token'])} bytes")
        print(f"VmRSS before: {before / 1048576:.1f} MiB, after: {after / 1048576:.1f} MiB")
        print(f"bytes/session: {per:.0f}")
        print(f"100000 sessions (the default max_sessions): about {per * 100000 / 1048576:.0f} MiB")
        if args.store != "memory":
            stored = (store_bytes() - store_before) / args.sessions
            print(f"store ({args.store}): {stored:.0f} bytes/session")
        return 0
    finally:
        if daemon is not None:
            daemon.stop()
        if redis is not None:
            redis.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

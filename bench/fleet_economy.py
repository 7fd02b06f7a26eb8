#!/usr/bin/python3
"""Fleet economy: upstream token requests per credential per hour for N cl-tokend daemons
behind one egress IP, with each daemon on its own (store.backend = "memory") and sharing
one Redis (store.backend = "redis"), plus what a restart of every daemon costs with the
memory, file and redis backends. docs/store.md quotes it. (bench/ belongs to the
benchmark suite; this file is the token store's and stands alone.)

Real processes: the fake auth server (tests/fake_auth), N cl-tokend, one redis-server.
Tokens live LIFETIME seconds instead of 2 h and [refresh] uses the production defaults
(at = 0.75, jitter = 0.05); requests counted over the window are scaled to an hour of
2 h tokens: per_hour = requests / (window / LIFETIME) * (3600 / 7200).

    cmake --build build --target cl-tokend
    bench/fleet_economy.py [--build-dir build] [--daemons 3] [--lifetime 8] [--lifetimes 6]

Last run, `bench/fleet_economy.py --build-dir build` (defaults: 3 daemons, 8 s tokens, a
48 s window; Debian 12, redis-server 7.0.15, a 2-core machine shared with other builds):

    | store.backend | requests in window | per credential per hour (2 h tokens) | restart of all 3 daemons |
    |---|---|---|---|
    | memory | 22 | 1.83 | 3 |
    | file | 23 | 1.92 | 0 |
    | redis | 8 | 0.67 | 0 |

One daemon alone needs 3600 / (0.75 * 7200) = 0.67 per hour: with Redis the fleet spends
what one daemon would; without it, N times that (jitter moves a count by one or two).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--daemons", type=int, default=3)
    ap.add_argument("--lifetime", type=int, default=8, help="token lifetime in seconds (stands for 2 h)")
    ap.add_argument("--lifetimes", type=int, default=6, help="window length, in token lifetimes")
    args = ap.parse_args()
    os.environ.setdefault("CL_TOKEND", os.path.join(args.build_dir, "daemon", "cl-tokend"))
    os.environ.setdefault("CLTOKEN_SOURCE_DIR", SOURCE)

    from cltoken_harness import Daemon, FakeAuth, fake_harness, make_workdir  # noqa: E402
    from store_harness import RedisServer, store_section  # noqa: E402

    it = fake_harness.INTEGRATION_CLIENT_ID
    results: dict[str, dict] = {}

    def run(backend: str) -> dict:
        workdir = make_workdir("cltok-bench-")
        fake = FakeAuth(workdir, clients=fake_harness.default_clients(args.lifetime, args.lifetime),
                        rate_limit_per_minute=0)
        redis = None
        daemons = []
        try:
            fake.start()
            key = os.path.join(workdir, "store.key")
            with open(key, "w") as f:
                f.write("bench-store-key-0123456789abcdefghij")
            os.chmod(key, 0o600)
            store = ""
            if backend == "redis":
                redis = RedisServer(workdir).start()
                store = store_section(backend="redis", url=redis.url, key_file=key, poll_ms=50)
            refresh = {"at": 0.75, "jitter": 0.05, "min_ttl": 0, "backoff_initial_ms": 200, "backoff_max_ms": 2000}
            upstream = {"max_requests_per_minute": 1000}
            for i in range(args.daemons):
                extra = store
                if backend == "file":
                    os.makedirs(os.path.join(workdir, f"state{i}"))
                    extra = store_section(backend="file", path=os.path.join(workdir, f"state{i}", "state"),
                                          key_file=key)
                d = Daemon(workdir, fake, name=f"d{i}", extra=extra, refresh=refresh, upstream=upstream,
                           log_level="info")
                daemons.append(d)
                d.start()
            for d in daemons:
                d.wait_ready(30)

            # Steady state: requests over the window, scaled to 2 h tokens.
            window = args.lifetime * args.lifetimes
            before = fake.stats()["token_requests"].get(it, 0)
            time.sleep(window)  # a benchmark measures a rate over wall time
            steady = fake.stats()["token_requests"].get(it, 0) - before
            per_hour = steady / (window / args.lifetime) * (3600 / 7200)

            # Restart every daemon once: what does that cost upstream?
            before = fake.stats()["token_requests"].get(it, 0)
            for d in daemons:
                d.stop()
                d.start()
                d.wait_ready(30)
            restart = fake.stats()["token_requests"].get(it, 0) - before
            return {"steady": steady, "window": window, "per_hour": per_hour, "restart": restart}
        finally:
            for d in daemons:
                d.stop()
            if redis:
                redis.stop()
            fake.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    for backend in ("memory", "file", "redis"):
        results[backend] = run(backend)
        print(f"{backend}: {results[backend]}", file=sys.stderr)

    n = args.daemons
    print(f"\n{n} daemons, one egress IP, token lifetime {args.lifetime} s standing for 2 h, refresh at 0.75 +- 0.05,")
    print(f"window {args.lifetimes} lifetimes; counts for one credential (integration)\n")
    print(f"| store.backend | requests in window | per credential per hour (2 h tokens) | restart of all {n} daemons |")
    print("|---|---|---|---|")
    for backend, r in results.items():
        print(f"| {backend} | {r['steady']} | {r['per_hour']:.2f} | {r['restart']} |")
    print(f"\none daemon alone needs {3600 / (0.75 * 7200):.2f} per hour; without sharing a fleet needs N times that")
    return 0


if __name__ == "__main__":
    sys.exit(main())

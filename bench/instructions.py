#!/usr/bin/python3
"""What the daemon does per request, in figures that do not move with the machine's load
(requests/s on a shared 2-core machine do): the user-space instructions it executes per
answer, counted by valgrind's callgrind, with the functions they go to; and, with
--syscalls, the system calls it makes per answer, counted by perf's tracepoints. For
comparing two builds of the hot path (docs/performance.md, "The serving profile").

    bench/instructions.py                       # a held token, 16 connections
    bench/instructions.py --read session        # a customer session's token
    bench/instructions.py --read min_ttl --top 40
    bench/instructions.py --syscalls            # recv, sendmsg, epoll per answer (no valgrind)
    bench/instructions.py --binary other/build/daemon/cl-tokend

Needs valgrind (callgrind) or, for --syscalls, perf; neither is installed by
scripts/deps.sh (apt-get install valgrind linux-perf). The kernel's share of a request
(the Unix socket's recv and sendmsg, the client's wake-up) is not in the instruction
count: --syscalls counts the calls, docs/performance.md shows where their time goes.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
SYSCALLS = ("recvfrom", "sendmsg", "epoll_ctl", "epoll_wait")


def self_costs(path: str) -> collections.Counter:
    """Instructions per function, excluding the functions it calls (callgrind's own
    format, written uncompressed)."""
    cost: collections.Counter = collections.Counter()
    fn = None
    after_call = False
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                after_call = True  # the next cost line is the callee's, inclusive
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) >= 2:
                    if not after_call:
                        cost[fn] += int(parts[1])
                    after_call = False
    return cost


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(SOURCE, "build", "daemon", "cl-tokend"))
    ap.add_argument("--load", default=os.path.join(SOURCE, "build", "bench", "cltoken-load"))
    ap.add_argument("--read", choices=["token", "min_ttl", "session"], default="token")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--top", type=int, default=25, help="functions listed")
    ap.add_argument("--syscalls", action="store_true", help="count system calls with perf instead")
    args = ap.parse_args()
    tool = "perf" if args.syscalls else "valgrind"
    if shutil.which(tool) is None:
        print(f"instructions.py: {tool} is not installed (apt-get install "
              f"{'linux-perf' if args.syscalls else 'valgrind'})", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="cltok-instr-")
    out = os.path.join(work, "callgrind.out")
    if not args.syscalls:
        # The harness starts CL_TOKEND: a wrapper runs the daemon under callgrind, names
        # uncompressed so that the file reads without callgrind_annotate.
        wrapper = os.path.join(work, "under-callgrind")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec valgrind --tool=callgrind --compress-strings=no --compress-pos=no "
                    f"--callgrind-out-file={out}.%p {args.binary} \"$@\"\n")
        os.chmod(wrapper, stat.S_IRWXU)
        os.environ["CL_TOKEND"] = wrapper
    else:
        os.environ["CL_TOKEND"] = args.binary
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
    import run as bench  # the same daemon set-up as bench/run.py
    from cltoken_harness import Daemon, FakeAuth, fake_harness, make_workdir

    workdir = make_workdir("cltok-instr-")
    fake = FakeAuth(workdir, rate_limit_per_minute=0)
    daemon = None
    try:
        fake.start()
        daemon = Daemon(workdir, fake, server=bench.BENCH_SERVER, upstream=bench.BENCH_UPSTREAM, log_level="info")
        daemon.start()
        daemon.wait_ready(120)
        path = {"token": bench.TOKEN_PATH, "min_ttl": bench.MIN_TTL_PATH}.get(args.read)
        if path is None:
            login = daemon.post(f"/v1/customers/{fake_harness.SALES_CHANNEL_CREDENTIAL}/sessions",
                                {"username": fake_harness.CUSTOMER_USERNAME, "password": fake_harness.CUSTOMER_PASSWORD})
            if login.status != 201:
                raise RuntimeError(f"no customer session: {login.status}")
            path = f"/v1/customers/{fake_harness.SALES_CHANNEL_CREDENTIAL}/sessions/{login.json()['session']}"
        bench.raw_answer(daemon.socket, path)  # warm: the document rendered once
        pid = daemon.proc.pid  # the wrapper execs: valgrind (or the daemon) has this pid
        load = [args.load, "--socket", daemon.socket, "--path", path, "--connections", str(args.connections),
                "--duration", str(args.seconds), "--warmup", "0", "--json"]
        if args.syscalls:
            events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
            perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", str(pid)],
                                    stderr=subprocess.PIPE, text=True)
            r = json.loads(subprocess.run(load, capture_output=True, text=True, check=True).stdout)
            perf.send_signal(2)
            counts = {}
            for line in perf.communicate(timeout=30)[1].splitlines():
                fields = line.split(",")
                if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_"):
                    counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
            print(f"{args.read}, {args.connections} connections: {r['requests']} answers")
            for s in SYSCALLS:
                print(f"  {s:11s} {counts.get(s, 0) / r['requests']:6.3f} per answer")
            return 0
        subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
        r = json.loads(subprocess.run(load, capture_output=True, text=True, check=True).stdout)
        subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
        dumps = [p for p in glob.glob(f"{out}.{pid}.*") if not p.endswith(".0")]
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        cost = self_costs(min(dumps))
        n = r["requests"]
        total = sum(cost.values())
        print(f"{args.read}, {args.connections} connections: {n} answers, "
              f"{total / n:,.0f} instructions per answer in the daemon (user space)")
        for name, c in cost.most_common(args.top):
            print(f"  {c / n:7,.0f}  {100 * c / total:5.1f} %  {name[:110]}")
        return 0
    finally:
        if daemon:
            daemon.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

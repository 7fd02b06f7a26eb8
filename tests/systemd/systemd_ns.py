"""Real systemd, as PID 1, in private namespaces.

    ns = SystemdNamespace(workdir, share=folder_to_show_at_/srv/cltokend-test)
    reason = ns.unavailable()        # None, or why this machine cannot do it (skip)
    ns.boot()                        # until `systemctl is-system-running` says running
    ns.run("systemctl", "start", "cl-tokend.socket")
    ns.poweroff()                    # and ns.cleanup() in any case

boot_systemd.sh builds the root (an overlay of / on a tmpfs, fresh /dev, /proc, /run,
/tmp) and execs systemd with basic.target, which starts nothing the host has enabled. The
namespace gets a cgroup of its own below ours, so that two runs at once, or the host's own
services, never share a cgroup with it. Everything is stopped by pid.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT_SCRIPT = os.path.join(HERE, "boot_systemd.sh")
SYSTEMD = "/lib/systemd/systemd"
# Inside, a clean environment: nothing of the test runner's leaks into the commands.
INSIDE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "PYTHONDONTWRITEBYTECODE": "1", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _remove_cgroup(path: str) -> bool:
    """Removes a cgroup and its children, deepest first; False while one still has processes."""
    try:
        for dirpath, _, _ in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
            os.rmdir(dirpath)
        return True
    except OSError:
        return False


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2":
                return fields[4]
    return None


def _own_cgroup2_path() -> str | None:
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


class SystemdNamespace:
    def __init__(self, workdir: str, share: str, source: str):
        self.workdir = workdir
        self.share = share
        self.source = source
        self.scratch = os.path.join(workdir, "ns")
        self.log_path = os.path.join(workdir, "systemd-console.log")
        self.proc: subprocess.Popen | None = None  # unshare
        self.pid: int | None = None                # systemd, as the host sees it
        self.cgroup: str | None = None

    # -- can we? -------------------------------------------------------------------------
    @staticmethod
    def unavailable() -> str | None:
        """Why systemd cannot be booted here (a skip message), or None."""
        if os.geteuid() != 0:
            return "needs root (unshare of pid, mount and network namespaces)"
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        if not os.access(SYSTEMD, os.X_OK):
            return f"{SYSTEMD} is not installed"
        probe = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--uts", "--net", "--cgroup",
                                "--propagation", "private", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            return f"namespaces are not permitted here: {probe.stderr.strip()}"
        if _cgroup2_mount() is None or _own_cgroup2_path() is None:
            return "no cgroup v2 hierarchy to give systemd a cgroup of its own"
        return None

    # -- lifecycle -----------------------------------------------------------------------
    def _make_cgroup(self) -> str:
        base = os.path.join(_cgroup2_mount(), _own_cgroup2_path().lstrip("/"))
        # A run that was killed (a CTest timeout) leaves its empty cgroup behind: remove those
        # whose test process is gone. rmdir refuses a cgroup that still holds a process.
        for name in os.listdir(base):
            m = re.fullmatch(r"cltokend-test-(\d+)-\d+", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                _remove_cgroup(os.path.join(base, name))
        path = os.path.join(base, f"cltokend-test-{os.getpid()}-{time.monotonic_ns()}")
        os.mkdir(path)
        return path

    def boot(self, timeout: float = 60) -> None:
        os.makedirs(self.scratch, exist_ok=True)
        self.cgroup = self._make_cgroup()
        procs = os.path.join(self.cgroup, "cgroup.procs")

        def enter_cgroup() -> None:  # in the child, before exec
            # unshare --cgroup roots the namespace's cgroup tree here.
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
            # Should this test die without cleaning up (a CTest timeout kills it), unshare
            # dies too, and --kill-child takes systemd and its whole namespace with it.
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--uts", "--net", "--cgroup",
             "--propagation", "private", BOOT_SCRIPT, self.scratch, self.share, self.source],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=enter_cgroup,
            env=dict(INSIDE_ENV))
        log.close()
        deadline = time.monotonic() + timeout
        while self.pid is None:
            self._check_alive()
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    children = f.read().split()
                if children:
                    with open(f"/proc/{children[0]}/comm") as f:
                        if f.read().strip() == "systemd":
                            self.pid = int(children[0])
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"systemd did not start within {timeout} s:\n{self.console()}")
            time.sleep(0.05)  # polling for the process to appear, bounded by the deadline
        while True:
            self._check_alive()
            state = self.run("systemctl", "is-system-running", timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"systemd is {state!r} after {timeout} s:\n{self.console()}")
            time.sleep(0.1)  # polling systemd's state, bounded by the deadline

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the namespace ended (exit {self.proc.returncode}):\n{self.console()}")

    def console(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except FileNotFoundError:
            return ""

    def run(self, *cmd: str, input: str | None = None, timeout: float = 60,
            check: bool = False) -> subprocess.CompletedProcess:
        """Runs cmd inside every namespace of systemd, in its root, as root."""
        assert self.pid is not None
        full = ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "-p", "-C", "-r", "-w", "--", *cmd]
        r = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout, env=dict(INSIDE_ENV))
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def popen(self, *cmd: str, **kw) -> subprocess.Popen:
        assert self.pid is not None
        full = ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "-p", "-C", "-r", "-w", "--", *cmd]
        return subprocess.Popen(full, env=dict(INSIDE_ENV), **kw)

    def poweroff(self, timeout: float = 30) -> None:
        """systemctl poweroff, then wait for systemd to go; the namespace dies with it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.run("systemctl", "poweroff", "--no-block", timeout=10)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"systemd did not power off within {timeout} s:\n{self.console()}")

    def cleanup(self) -> None:
        """Whatever happened: systemd (and so its pid namespace) killed, the cgroup removed."""
        if self.proc is not None and self.proc.poll() is None:
            if self.pid is not None:
                try:
                    os.kill(self.pid, signal.SIGKILL)  # PID 1 of the namespace: the kernel ends the rest
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.cgroup and os.path.isdir(self.cgroup):
            deadline = time.monotonic() + 10
            while not _remove_cgroup(self.cgroup):
                if time.monotonic() > deadline:
                    raise AssertionError(f"cannot remove the cgroup {self.cgroup}")
                time.sleep(0.05)  # the last processes are still leaving; bounded by the deadline

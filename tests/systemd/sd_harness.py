"""Helpers for the systemd tests: a NOTIFY_SOCKET of our own, and imports of the shared
integration harness (tests/integration/cltoken_harness.py) and the fake auth server.

Everything started here is stopped by pid; waits poll with a deadline, nothing sleeps to
let time pass.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from typing import Callable

SOURCE_DIR = os.environ.get("CLTOKEN_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

# Re-exported for the tests here; importing it also puts fake_auth and schema on sys.path.
from cltoken_harness import (CL_TOKENCTL, CL_TOKEND, Client, DaemonTestCase, fake_harness,  # noqa: E402
                             make_workdir, wait_for)

__all__ = ["CL_TOKENCTL", "CL_TOKEND", "Client", "DaemonTestCase", "fake_harness", "make_workdir", "wait_for",
           "BUILD_DIR", "SOURCE_DIR", "CHANGED_CREDENTIALS", "ERP_CLIENT_ID", "ERP_SECRET", "NotifySocket"]

BUILD_DIR = os.environ.get("CLTOKEN_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))

# A reloaded config for Daemon.write_config(credentials=...): backoffice with the same
# identity (another allow list), storefront-eu gone, erp new (the fake needs
# ERP_CLIENT_ID, the daemon $ERP_SECRET).
ERP_CLIENT_ID = "it-erp"
ERP_SECRET = "s3cr3t-erp"
CHANGED_CREDENTIALS = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
scope = "{it_scope}"
allow = ["uid:0", "uid:65534"]

[credentials.erp]
kind = "integration"
client_id = "%s"
client_secret_env = "ERP_SECRET"
allow = ["*"]
""" % ERP_CLIENT_ID


class Notification:
    """One sd_notify datagram: its fields and the pid that sent it (SCM_CREDENTIALS)."""

    def __init__(self, text: str, pid: int | None):
        self.text = text
        self.pid = pid
        self.fields: dict[str, str] = {}
        for line in text.split("\n"):
            if "=" in line:
                key, value = line.split("=", 1)
                self.fields[key] = value

    def __repr__(self) -> str:
        return f"<{self.text!r} from {self.pid}>"


class NotifySocket:
    """What systemd's manager does with $NOTIFY_SOCKET, reduced to listening: an AF_UNIX
    datagram socket that records every notification with the sender's pid."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        # Ask the kernel for the sender's credentials, as systemd does to tell the main
        # process from others (NotifyAccess=main).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.received: list[Notification] = []

    def _drain(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            while True:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
                pid = None
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack("iII", payload[:12])[0]
                self.received.append(Notification(data.decode(), pid))
                self.sock.settimeout(0)
        except (BlockingIOError, socket.timeout):
            pass

    def wait(self, condition: Callable[[Notification], bool], timeout: float, what: str) -> Notification:
        """The first notification (old or new) that satisfies condition."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for n in self.received[seen:]:
                if condition(n):
                    return n
            seen = len(self.received)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no notification {what} within {timeout} s; got {self.received}")
            self._drain(min(left, 0.5))

    def wait_count(self, key: str, count: int, timeout: float) -> list[Notification]:
        """Waits until `count` notifications carry `key`; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [n for n in self.received if key in n.fields]
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(found)} notifications with {key}= within {timeout} s, wanted {count}")
            self._drain(min(left, 0.5))

    def has(self, key: str) -> Callable[[Notification], bool]:
        return lambda n: key in n.fields

    def close(self) -> None:
        self.sock.close()

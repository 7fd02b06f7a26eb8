#!/usr/bin/python3
"""`cl-tokenctl status` and `health` against a live daemon: the JSON documents match their
schemas, the table reads at a glance (colour only on a terminal, NO_COLOR honoured), a rejected
credential shows with an error a person can act on, exit codes follow the contract, and
`status --watch` redraws in place until Ctrl-C."""
# ctest-timeout: 180

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import unittest

from cltoken_harness import CL_TOKENCTL, DEFAULT_CREDENTIALS, DaemonTestCase, wait_for
from validate import validate

REJECTED = DEFAULT_CREDENTIALS + """
[credentials.reports]
kind = "integration"
client_id = "it-not-known-upstream"
client_secret = "not-the-secret"
allow = ["*"]
"""
HEADER = re.compile(r"^cl-tokend \d+\.\d+\.\d+, up (\d+s|\d+m \d\ds), upstream \d+/25 req/min$")
ESC = "\x1b["
CLEAR = "\x1b[H\x1b[2J"


class Terminal:
    """A command on a pseudo-terminal of a given size, as a person would run it."""

    def __init__(self, cmd: list[str], env: dict, columns: int = 200):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.output = b""

    def read_until(self, done, timeout: float) -> str:
        """Reads until done(text) or EOF; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while not done(self.output.decode(errors="replace")):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"terminal output never became complete: {self.output!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the other side closed
                chunk = b""
            if not chunk:
                break
            self.output += chunk
        return self.output.decode(errors="replace")

    def finish(self, timeout: float = 10) -> tuple[int, str]:
        """Reads to the end of the output, then reaps the command."""
        text = self.read_until(lambda _: False, timeout)
        rc = self.proc.wait(timeout)
        os.close(self.master)
        return rc, text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def env_without(*names: str, **extra: str) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in names and k != "CL_TOKEND_SOCKET"}
    e.setdefault("TERM", "xterm")
    e.update(extra)
    return e


class Status(DaemonTestCase):
    def on_terminal(self, d, *args: str, env: dict) -> tuple[int, str]:
        t = Terminal([CL_TOKENCTL, "--socket", d.socket, *args], env)
        try:
            return t.finish()
        finally:
            t.kill()

    def test_json_documents_match_their_schemas(self):
        d = self.daemon()
        d.wait_ready()
        d.get("/v1/tokens/backoffice")
        r = d.ctl("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        validate(doc, "status")
        self.assertEqual([c["name"] for c in doc["credentials"]], ["backoffice", "storefront-eu"])
        self.assertEqual({c["state"] for c in doc["credentials"]}, {"fresh"})
        self.assertEqual(doc["credentials"][0]["served"], 1)
        validate(d.get("/v1/status").json(), "status")
        h = d.ctl("health", "--json")
        self.assertEqual(h.returncode, 0, h.stderr)
        health = json.loads(h.stdout)
        validate(health, "health")
        self.assertEqual((health["live"], health["ready"]), (True, True))

    def test_table_when_healthy_exit_0_no_colour_in_a_pipe(self):
        d = self.daemon()
        d.wait_ready()
        r = d.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertNotIn(ESC, r.stdout)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], HEADER)
        self.assertEqual(lines[1], "")
        self.assertEqual(lines[2].split(), ["NAME", "KIND", "STATE", "EXPIRES", "REFRESH", "UPSTREAM", "LAST", "ERROR"])
        self.assertRegex(lines[3], r"^backoffice +integration +fresh +1h 59m +1h 45m +1 +\u2014$")
        self.assertRegex(lines[4], r"^storefront-eu +sales_channel +fresh +3h 59m +3h 45m +1 +\u2014$")
        self.assertEqual(len(lines), 5)
        # Columns line up: every row's STATE starts where the heading's does.
        col = lines[2].index("STATE")
        self.assertTrue(all(line[col - 2:col] == "  " and line[col] != " " for line in lines[3:]))
        h = d.ctl("health")
        self.assertEqual((h.returncode, h.stdout), (0, "live, ready\n"))

    def test_colour_only_on_a_terminal_and_never_with_no_color(self):
        d = self.daemon()
        d.wait_ready()
        rc, text = self.on_terminal(d, "status", env=env_without("NO_COLOR"))
        self.assertEqual(rc, 0, text)
        self.assertIn("\x1b[32mfresh\x1b[0m", text)
        rc, text = self.on_terminal(d, "status", env=env_without(NO_COLOR="1"))
        self.assertEqual(rc, 0, text)
        self.assertNotIn(ESC, text)
        self.assertIn("backoffice", text)
        rc, text = self.on_terminal(d, "status", env=env_without("NO_COLOR", TERM="dumb"))
        self.assertNotIn(ESC, text)

    def test_a_rejected_credential_degrades_status_and_health(self):
        d = self.daemon(credentials=REJECTED)
        doc = wait_for(lambda: (lambda s: s if any(c["name"] == "reports" and c["state"] == "failing"
                                                   for c in s["credentials"]) else None)(d.get("/v1/status").json()),
                       15, "credential reports to be failing")
        validate(doc, "status")
        wait_for(lambda: d.get("/v1/health").status == 503 and d.get("/v1/tokens/backoffice").status == 200, 15,
                 "the healthy credentials to hold tokens")
        r = d.ctl("status")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)  # answered but degraded
        row = next(line for line in r.stdout.splitlines() if line.startswith("reports "))
        self.assertRegex(row, r"^reports +integration +failing +\u2014 +(now|\d+s) +\d+ \(\d+ failed\) +\S")
        # Whatever the column's width, the whole error is there to act on.
        self.assertIn("client_id or client_secret rejected by the auth server (401 invalid_client)", r.stdout)
        self.assertNotIn("not-the-secret", r.stdout)
        j = d.ctl("status", "--json")
        self.assertEqual(j.returncode, 3)
        validate(json.loads(j.stdout), "status")

        h = d.ctl("health")
        self.assertEqual((h.returncode, h.stdout), (3, "live, not ready: reports\n"))
        res = d.get("/v1/health")
        self.assertEqual(res.status, 503)
        validate(res.json(), "health")
        self.assertEqual(res.json(), {"live": True, "ready": False, "credentials_not_ready": ["reports"]})
        hj = d.ctl("health", "--json")
        self.assertEqual(hj.returncode, 3)
        self.assertEqual(json.loads(hj.stdout)["credentials_not_ready"], ["reports"])

        # On a 90-column terminal every row still fits on one line; the error follows whole.
        t = Terminal([CL_TOKENCTL, "--socket", d.socket, "status"], env_without(NO_COLOR="1"), columns=90)
        try:
            rc, text = t.finish()
        finally:
            t.kill()
        self.assertEqual(rc, 3)
        table = text.replace("\r\n", "\n").split("\n\n")[1]
        self.assertTrue(all(len(line) < 90 for line in table.splitlines()), table)
        self.assertIn("\nreports: client_id or client_secret rejected by the auth server (401 invalid_client)\n",
                      text.replace("\r\n", "\n"))

    def test_daemon_unreachable_exits_1_with_one_line(self):
        d = self.daemon(start=False)
        for cmd in (["status"], ["status", "--json"], ["health"]):
            r = d.ctl(*cmd)
            self.assertEqual(r.returncode, 1, cmd)
            self.assertEqual(r.stdout, "")
            self.assertRegex(r.stderr, r"^cl-tokenctl: [^\n]+\n$")
            self.assertIn(d.socket, r.stderr)

    def test_watch_redraws_in_place_until_ctrl_c(self):
        d = self.daemon()
        d.wait_ready()
        t = Terminal([CL_TOKENCTL, "--socket", d.socket, "status", "--watch", "--interval", "0.2"],
                     env_without(NO_COLOR="1"))
        try:
            # Three frames, each starting with home + clear, each a whole table.
            text = t.read_until(lambda s: s.count(CLEAR) >= 3 and s.rstrip().endswith("\u2014"), 15)
            frames = [f for f in text.split(CLEAR) if f.strip()]
            self.assertGreaterEqual(len(frames), 2)
            for f in frames[:2]:
                self.assertRegex(f.replace("\r\n", "\n").splitlines()[0], HEADER)
                self.assertIn("backoffice", f)
            t.proc.send_signal(signal.SIGINT)
            rc, _ = t.finish()
            self.assertEqual(rc, 0)
        finally:
            t.kill()
        # Piped, frames are appended without screen control, for a log.
        p = subprocess.Popen([CL_TOKENCTL, "--socket", d.socket, "status", "--watch", "--interval", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = [p.stdout.readline() for _ in range(6)]
            self.assertRegex(first[0].rstrip("\n"), HEADER)
            self.assertRegex(first[5].rstrip("\n"), HEADER)  # the second frame follows at once
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0, err)
            self.assertNotIn(ESC, "".join(first) + out)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""Socket activation with systemd's own tool: systemd-socket-activate holds the listening
socket and starts cl-tokend at the first connection, passing the socket (LISTEN_FDS). The
client connects before the daemon exists, and is served over the inherited listener."""
# ctest-timeout: 120

import os
import shutil
import signal
import socket
import subprocess
import unittest

from sd_harness import CL_TOKENCTL, CL_TOKEND, Client, DaemonTestCase, wait_for

ACTIVATE = shutil.which("systemd-socket-activate")


@unittest.skipIf(ACTIVATE is None, "systemd-socket-activate is not installed (Debian package systemd)")
class SocketActivation(DaemonTestCase):
    def activate(self, d, sockets: list[str]) -> subprocess.Popen:
        """systemd-socket-activate listening on `sockets`, to run cl-tokend with d's config."""
        args = [ACTIVATE]
        for path in sockets:
            args += ["-l", path]
        log = open(d.log_path, "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen(args + ["--", CL_TOKEND, "-c", d.config_path, "--log-level", "debug"],
                             stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop, p)
        wait_for(lambda: all(os.path.exists(s) for s in sockets) or p.poll() is not None, 10,
                 "systemd-socket-activate to listen")
        return p

    @staticmethod
    def stop(p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def test_the_daemon_serves_over_the_socket_it_inherits(self):
        d = self.daemon(start=False)  # writes the config; the daemon's own socket path is unused
        activated = os.path.join(self.workdir, "activated.sock")
        p = self.activate(d, [activated])
        self.assertFalse(os.path.exists(d.socket))
        # Nobody has connected: nothing started yet, so nothing has asked the auth server.
        self.assertEqual(self.token_requests(), 0)

        c = Client(activated)
        r = c.get("/v1/tokens/backoffice")  # connects before cl-tokend runs; answered once it does
        c.close()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.fake.check(r.json()["access_token"])[0], 200)
        self.assertIn("listening on the socket passed by systemd", d.read_log())
        self.assertFalse(os.path.exists(d.socket), "cl-tokend bound server.socket although given a socket")

        ctl = subprocess.run([CL_TOKENCTL, "--socket", activated, "status"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        self.assertIn("backoffice", ctl.stdout)

        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)
        self.assertIn("stopped", d.read_log())
        # The socket belongs to whoever passed it: cl-tokend leaves the path alone.
        self.assertTrue(os.path.exists(activated))

    def test_more_than_one_socket_is_refused_with_a_reason(self):
        d = self.daemon(start=False)
        a, b = (os.path.join(self.workdir, n) for n in ("a.sock", "b.sock"))
        p = self.activate(d, [a, b])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a)  # starts the daemon, which must refuse the ambiguous setup
        s.close()
        self.assertEqual(p.wait(10), 1)
        self.assertIn("systemd passed 2 sockets; cl-tokend listens on exactly one", d.read_log())


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""The socket file, secret sources and process hardening, against the real daemon."""
# ctest-timeout: 240

import grp
import os
import signal
import socket
import stat
import subprocess
import unittest

from cltoken_harness import CL_TOKENCTL, CL_TOKEND, DaemonTestCase, fake_harness, wait_for

NOBODY = 65534
USERS_GID = 100


def can_connect_as(path: str, uid: int, gid: int, groups: list[int] | None) -> bool:
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1]); print('yes')\nexcept PermissionError:\n print('no')\n")
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    cmd += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    out = subprocess.run(cmd + ["/usr/bin/python3", "-c", code, path], capture_output=True, text=True, timeout=20, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "yes"


class SocketFile(DaemonTestCase):
    def start_expecting_failure(self, d) -> str:
        d.start(wait_ready=False)
        d.proc.wait(20)
        d.log.close()
        self.assertNotEqual(d.proc.returncode, 0, d.read_log())
        return d.read_log()

    def test_socket_mode_and_group_are_applied_and_enforced(self):
        d = self.daemon(server={"socket_mode": "0660", "socket_group": "users"})
        st = os.stat(d.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam("users").gr_gid)
        self.assertFalse(can_connect_as(d.socket, NOBODY, NOBODY, None))
        self.assertTrue(can_connect_as(d.socket, NOBODY, NOBODY, [USERS_GID]))

    def test_a_stale_socket_is_replaced(self):
        d = self.daemon(start=False)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(d.socket)  # bound, never listened on, then closed: what a crash leaves
        stale.close()
        self.assertTrue(stat.S_ISSOCK(os.lstat(d.socket).st_mode))
        d.start()
        self.assertEqual(d.get("/v1/health").status in (200, 503), True)
        self.assertIn(f"removed stale socket {d.socket}", d.read_log())
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(d.socket), "the socket file is removed at exit")

    def test_a_live_socket_is_left_alone(self):
        d = self.daemon(start=False)
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.bind(d.socket)
        other.listen(1)
        try:
            log = self.start_expecting_failure(d)
            self.assertIn(f"another process is already listening on {d.socket}", log)
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(d.socket)  # still the other process's socket
            c.close()
        finally:
            other.close()

    def test_any_other_file_at_the_path_is_an_error(self):
        d = self.daemon(start=False)
        with open(d.socket, "w") as f:
            f.write("precious")
        log = self.start_expecting_failure(d)
        self.assertIn(f"{d.socket} exists and is not a socket; refusing to replace it", log)
        with open(d.socket) as f:
            self.assertEqual(f.read(), "precious")
        os.unlink(d.socket)
        os.symlink("/etc/passwd", d.socket)
        log = self.start_expecting_failure(d)
        self.assertIn("is not a socket", log)
        self.assertTrue(os.path.islink(d.socket))

    def test_a_folder_others_can_write_is_refused(self):
        shared = os.path.join(self.workdir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        d = self.daemon(start=False, server={"socket": os.path.join(shared, "d.sock")})
        d.socket = os.path.join(shared, "d.sock")
        log = self.start_expecting_failure(d)
        self.assertIn(f"socket folder {shared} can be written by group or others (mode 1777); run: chmod go-w {shared}", log)
        self.assertFalse(os.path.exists(os.path.join(shared, "d.sock")))


class SecretSources(DaemonTestCase):
    def check(self, d) -> subprocess.CompletedProcess:
        return subprocess.run([CL_TOKEND, "--check", "-c", d.config_path], capture_output=True, text=True, timeout=30)

    def test_a_secret_file_others_can_read_is_refused_with_the_fix(self):
        d = self.daemon(start=False)
        os.chmod(d.secret_file, 0o644)
        out = self.check(d)
        self.assertEqual(out.returncode, 2, out)
        self.assertRegex(out.stderr, rf"^cl-tokend: {d.config_path}:\d+: credentials.backoffice.client_secret_file: "
                                     rf"{d.secret_file} is readable by group or others \(mode 0644\); "
                                     rf"run: chmod 600 {d.secret_file}\n$")
        self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, out.stderr + out.stdout)
        os.chmod(d.secret_file, 0o600)
        out = self.check(d)
        self.assertEqual(out.returncode, 0, out)
        self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, out.stdout)

    def test_a_secret_file_of_another_user_a_link_or_under_an_open_folder_is_refused(self):
        d = self.daemon(start=False)
        prefix = rf"^cl-tokend: {d.config_path}:\d+: credentials.backoffice.client_secret_file: "
        # Another user's file: they could change the secret the daemon presents.
        os.chown(d.secret_file, NOBODY, NOBODY)
        out = self.check(d)
        self.assertEqual(out.returncode, 2, out)
        self.assertRegex(out.stderr, prefix + rf"{d.secret_file} belongs to uid {NOBODY}, not to the daemon \(uid 0\) "
                                              rf"or root; run: chown 0 {d.secret_file}\n$")
        os.chown(d.secret_file, 0, 0)
        # A symbolic link is not followed, even to a private file.
        real = d.secret_file + ".real"
        os.rename(d.secret_file, real)
        os.symlink(real, d.secret_file)
        out = self.check(d)
        self.assertEqual(out.returncode, 2, out)
        self.assertRegex(out.stderr, prefix + rf"{d.secret_file} is a symbolic link; name the file itself\n$")
        os.unlink(d.secret_file)
        # A folder another user can write, above the file (StrictModes): they could swap it.
        shared = os.path.join(self.workdir, "open")
        os.makedirs(os.path.join(shared, "private"))
        os.chmod(shared, 0o777)
        moved = os.path.join(shared, "private", "secret")
        os.rename(real, moved)
        with open(d.config_path) as f:
            text = f.read()
        with open(d.config_path, "w") as f:
            f.write(text.replace(d.secret_file, moved))
        out = self.check(d)
        self.assertEqual(out.returncode, 2, out)
        self.assertIn(f"client_secret_file: folder {shared} (above the secret file) can be written by group or others (mode 0777); "
                      f"run: chmod go-w {shared}", out.stderr)
        self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, out.stderr + out.stdout)

    def test_an_inline_secret_needs_a_private_config(self):
        creds = f"""
[credentials.backoffice]
kind = "integration"
client_id = "{{it_id}}"
client_secret = "{fake_harness.INTEGRATION_CLIENT_SECRET}"
allow = ["*"]
"""
        d = self.daemon(start=False, credentials=creds)
        os.chmod(d.config_path, 0o640)
        out = self.check(d)
        self.assertEqual(out.returncode, 2, out)
        self.assertIn(f"an inline secret needs a config file that only its owner can read; run: chmod 600 {d.config_path}",
                      out.stderr)
        self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, out.stderr)
        os.chmod(d.config_path, 0o600)
        d.start()
        d.wait_ready()

    def test_client_secret_credential_reads_credentials_directory(self):
        creds_dir = os.path.join(self.workdir, "credentials")
        os.mkdir(creds_dir, 0o700)
        with open(os.path.join(creds_dir, "backoffice"), "w") as f:
            f.write(fake_harness.INTEGRATION_CLIENT_SECRET)
        os.chmod(os.path.join(creds_dir, "backoffice"), 0o400)
        creds = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_credential = "backoffice"
allow = ["*"]
"""
        d = self.daemon(start=False, credentials=creds, env={"CREDENTIALS_DIRECTORY": creds_dir})
        d.start()
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.assertEqual(self.fake.check(token)[0], 200)
        self.assertIn("secret=credential backoffice", subprocess.run(
            [CL_TOKEND, "--check", "-c", d.config_path], capture_output=True, text=True, timeout=30,
            env=dict(os.environ, CREDENTIALS_DIRECTORY=creds_dir)).stdout)


# As another user: listens where the daemon's socket should be and prints whatever a
# client sends it within a few seconds.
IMPOSTOR = r"""
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(8)
print("listening", flush=True)
s.settimeout(3)  # no connection for this long: the client is done
got = b""
try:
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            while chunk := c.recv(65536):
                got += chunk
        except OSError:
            pass
        c.close()
except OSError:
    pass
print(repr(got), flush=True)
"""


class ImpostorListener(DaemonTestCase):
    """cl-tokenctl sends a password or token only to a listener running as the daemon's
    user (SO_PEERCRED), and trusts the socket file's owner only in folders no other user
    could change."""

    def test_a_listener_of_another_user_gets_no_password(self):
        shared = os.path.join(self.workdir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)  # like /tmp: anyone may create the socket here
        path = os.path.join(shared, "cl-tokend.sock")
        impostor = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                     "/usr/bin/python3", "-c", IMPOSTOR, path],
                                    stdout=subprocess.PIPE, text=True, cwd="/")
        try:
            self.assertEqual(impostor.stdout.readline().strip(), "listening")
            for extra, says in (([], "another user could have put the socket"),
                                (["--daemon-uid", "0"], f"runs as uid {NOBODY}, not as uid 0 or root")):
                out = subprocess.run([CL_TOKENCTL, "--socket", path, *extra, "customer", "login", "storefront-eu",
                                      "--username", "ann@example.com"], input="correct horse\n", capture_output=True,
                                     text=True, timeout=30)
                self.assertEqual(out.returncode, 1, out)
                self.assertIn(says, out.stderr)
                out = subprocess.run([CL_TOKENCTL, "--socket", path, *extra, "invalidate", "backoffice"],
                                     input="eyJ.secret-token.x\n", capture_output=True, text=True, timeout=30)
                self.assertEqual(out.returncode, 1, out)
            got = impostor.communicate(timeout=30)[0]
        finally:
            if impostor.poll() is None:
                impostor.kill()
                impostor.communicate()
        self.assertNotIn("correct horse", got)
        self.assertNotIn("secret-token", got)
        self.assertEqual(got.strip(), "b''")


class LeastPrivilege(DaemonTestCase):
    """cl-tokend as an unprivileged user, as docs/security.md recommends."""

    def test_unprivileged_daemon_is_not_dumpable_and_serves(self):
        run = os.path.join(self.workdir, "run")
        os.mkdir(run, 0o755)
        os.chown(run, NOBODY, NOBODY)
        d = self.daemon(start=False, server={"socket": os.path.join(run, "d.sock")})
        d.socket = os.path.join(run, "d.sock")  # the harness names its own path otherwise
        for path in (d.config_path, d.secret_file):
            os.chown(path, NOBODY, NOBODY)
        log = open(d.log_path, "ab")
        proc = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                 CL_TOKEND, "-c", d.config_path, "--log-level", "debug"],
                                stdout=log, stderr=subprocess.STDOUT, cwd="/")
        try:
            wait_for(lambda: os.path.exists(d.socket) or proc.poll() is not None, 20, "the socket")
            self.assertIsNone(proc.poll(), d.read_log())
            wait_for(lambda: d.get("/v1/health").status == 200, 20, "a token")
            status_file = f"/proc/{proc.pid}/status"
            with open(status_file) as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            self.assertEqual(set(uids), {str(NOBODY)})
            # PR_SET_DUMPABLE 0: /proc/PID belongs to root although the process is nobody's,
            # so another process of the same user cannot read its memory or environment.
            self.assertEqual(os.stat(status_file).st_uid, 0)
            peek = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                   "/usr/bin/python3", "-c", f"open('/proc/{proc.pid}/environ','rb').read()"],
                                  capture_output=True, text=True, timeout=20, cwd="/")
            self.assertNotEqual(peek.returncode, 0)
            self.assertIn("PermissionError", peek.stderr)
            with open(f"/proc/{proc.pid}/limits") as f:
                core = next(line for line in f if line.startswith("Max core file size")).split()
            self.assertEqual(core[4:6], ["0", "0"], core)  # no core dumps, soft and hard
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
            log.close()
        self.assertEqual(proc.returncode, 0, d.read_log())
        self.assertFalse(os.path.exists(d.socket))


if __name__ == "__main__":
    unittest.main()

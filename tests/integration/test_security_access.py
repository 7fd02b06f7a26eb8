#!/usr/bin/python3
"""Per-credential access control with clients running as other users.

Each client runs under `setpriv` with the uid, gid and supplementary groups a test picks, so
the daemon sees them through SO_PEERCRED / SO_PEERGROUPS exactly as it would see a sibling
service. The socket is 0666 here so that the allow lists are the only gate.
"""
# ctest-timeout: 240

import json
import os
import subprocess
import sys
import unittest

from cltoken_harness import CL_TOKENCTL, DaemonTestCase, fake_harness, wait_for
from validate import validate

NOBODY = 65534          # user nobody, group nogroup
OTHER_USER_PYTHON = "/usr/bin/python3"  # any user can run it (a virtualenv under /root may not be)
USERS_GID = 100         # group "users": given to clients as a supplementary group only
STRANGER = 4321         # a uid and gid that no principal names

# A client that runs as another user: one request on a fresh connection, prints
# {"status", "body", "pid"} as JSON. Plain stdlib so any user can run it.
CLIENT = r"""
import json, os, socket, sys
path, method, target, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
if body:
    head += "Content-Type: application/json\r\n"
s.sendall(head.encode() + b"\r\n" + body)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, payload = data.partition(b"\r\n\r\n")
status = int(head.split(b" ")[1])
print(json.dumps({"status": status, "body": payload.decode(), "pid": os.getpid()}))
"""

CREDENTIALS = """
[credentials.by-uid]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["uid:65534"]

[credentials.by-user]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["user:nobody"]

[credentials.by-gid]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["gid:65534"]

[credentials.by-group]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["group:users"]

[credentials.anyone]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["*"]

[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
scope = "{it_scope}"
allow = ["uid:0"]
"""

ALL = ["by-uid", "by-user", "by-gid", "by-group", "anyone", "backoffice"]


def run_as(socket_path: str, uid: int, gid: int, groups: list[int] | None, method: str, target: str,
           body: str = "") -> dict:
    """One request from a client process with this uid, primary gid and supplementary groups."""
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    cmd += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    cmd += [OTHER_USER_PYTHON, "-c", CLIENT, socket_path, method, target, body]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd="/")
    if out.returncode != 0:
        raise AssertionError(f"client as uid {uid} failed: {out.stderr}")
    return json.loads(out.stdout)


class AccessControl(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.d = self.daemon(credentials=CREDENTIALS, server={"admin": ["uid:0", "group:users"]})
        self.d.wait_ready()
        # Root is not special: it reads backoffice (uid:0) and "anyone" only, so the
        # tokens are collected as nobody with "users" as a supplementary group.
        self.tokens = {"backoffice": self.d.get("/v1/tokens/backoffice").json()["access_token"]}
        for name in ALL[:-1]:
            r = run_as(self.d.socket, NOBODY, NOBODY, [USERS_GID], "GET", f"/v1/tokens/{name}")
            self.assertEqual(r["status"], 200, r)
            self.tokens[name] = json.loads(r["body"])["access_token"]

    def expect(self, uid: int, gid: int, groups: list[int] | None, allowed: set[str]) -> None:
        for name in ALL:
            r = run_as(self.d.socket, uid, gid, groups, "GET", f"/v1/tokens/{name}")
            with self.subTest(uid=uid, gid=gid, groups=groups, credential=name):
                if name in allowed:
                    self.assertEqual(r["status"], 200, r)
                    doc = json.loads(r["body"])
                    validate(doc, "token")
                    self.assertEqual(doc["access_token"], self.tokens[name])
                else:
                    self.assertEqual(r["status"], 403, r)
                    doc = json.loads(r["body"])
                    validate(doc, "error")
                    self.assertEqual(doc["error"]["code"], "forbidden")
                    for token in self.tokens.values():
                        self.assertNotIn(token[:20], r["body"])

    def test_each_principal_kind_admits_exactly_its_peers(self):
        # nobody: uid:65534, user:nobody, gid:65534 (primary group) and *.
        self.expect(NOBODY, NOBODY, None, {"by-uid", "by-user", "by-gid", "anyone"})
        # The same user with "users" as a supplementary group also passes group:users.
        self.expect(NOBODY, NOBODY, [USERS_GID], {"by-uid", "by-user", "by-gid", "by-group", "anyone"})
        # "users" as the primary group works as well.
        self.expect(STRANGER, USERS_GID, None, {"by-group", "anyone"})
        # A stranger gets only the "*" credential.
        self.expect(STRANGER, STRANGER, None, {"anyone"})
        # root is named only by backoffice (and "*").
        self.expect(0, 0, None, {"anyone", "backoffice"})

    def test_a_refused_peer_learns_nothing_beyond_status(self):
        names = {c["name"] for c in self.d.get("/v1/status").json()["credentials"]}
        self.assertEqual(names, set(ALL))  # status lists names to any peer
        refused = run_as(self.d.socket, STRANGER, STRANGER, None, "GET", "/v1/tokens/backoffice")
        unknown = run_as(self.d.socket, STRANGER, STRANGER, None, "GET", "/v1/tokens/no-such")
        self.assertEqual(refused["status"], 403)
        self.assertEqual(unknown["status"], 404)
        self.assertEqual(json.loads(unknown["body"])["error"]["code"], "unknown_credential")
        for r in (refused, unknown):
            self.assertNotIn("client", r["body"].lower())
            self.assertNotIn(fake_harness.INTEGRATION_CLIENT_ID, r["body"])
            self.assertNotIn("market", r["body"])

    def test_invalidate_from_a_refused_peer_costs_nothing(self):
        before = self.token_requests()
        token = self.tokens["backoffice"]
        r = run_as(self.d.socket, NOBODY, NOBODY, None, "POST", "/v1/tokens/backoffice/invalidate",
                   json.dumps({"access_token": token}))
        self.assertEqual(r["status"], 403, r)
        self.assertEqual(self.d.get("/v1/tokens/backoffice").json()["access_token"], token)
        self.assertEqual(self.token_requests(), before)
        self.assertEqual(self.d.read_log().count("reported invalid"), 0)
        # An allowed peer's report (of a token the API refused: revoked) does cost one
        # request and replaces the token.
        self.reject(self.tokens["by-uid"])
        r = run_as(self.d.socket, NOBODY, NOBODY, None, "POST", "/v1/tokens/by-uid/invalidate",
                   json.dumps({"access_token": self.tokens["by-uid"]}))
        self.assertEqual(r["status"], 200, r)
        self.assertNotEqual(json.loads(r["body"])["access_token"], self.tokens["by-uid"])
        self.assertEqual(self.token_requests(), before + 1)

    def test_admin_operations_need_an_admin_principal(self):
        token = self.tokens["anyone"]
        # nobody without "users": not admin, even for a credential it may read.
        for method, target in (("POST", "/v1/tokens/anyone/revoke"), ("POST", "/v1/reload"),
                               ("POST", "/v1/tokens/no-such/revoke"), ("POST", "/v1/tokens/anyone/refresh"),
                               ("POST", "/v1/tokens/no-such/refresh")):
            r = run_as(self.d.socket, NOBODY, NOBODY, None, method, target)
            with self.subTest(target=target):
                self.assertEqual(r["status"], 403, r)
                self.assertEqual(json.loads(r["body"])["error"]["code"], "forbidden")
        self.assertEqual(self.fake.stats()["revoke_requests_total"], 0)
        self.assertEqual(self.d.get("/v1/tokens/anyone").json()["access_token"], token)
        self.assertEqual(self.fake.check(token)[0], 200)
        # With "users" as a supplementary group it is admin: reload and revoke work.
        r = run_as(self.d.socket, NOBODY, NOBODY, [USERS_GID], "POST", "/v1/reload")
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(json.loads(r["body"]), {"reloaded": True})
        r = run_as(self.d.socket, NOBODY, NOBODY, [USERS_GID], "POST", "/v1/tokens/anyone/revoke")
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(json.loads(r["body"]), {"revoked": True})
        status, _ = self.fake.check(token)
        self.assertEqual(status, 401, "the revoked token still works upstream")
        # Admin alone gives no token: backoffice allows uid:0 only.
        r = run_as(self.d.socket, NOBODY, NOBODY, [USERS_GID], "GET", "/v1/tokens/backoffice")
        self.assertEqual(r["status"], 403, r)

    def test_every_denial_is_logged_once_with_uid_pid_and_credential(self):
        pids = []
        for target in ("/v1/tokens/backoffice", "/v1/tokens/by-group"):
            r = run_as(self.d.socket, STRANGER, STRANGER, None, "GET", target)
            self.assertEqual(r["status"], 403)
            pids.append(r["pid"])
        log = wait_for(lambda: self.d.read_log() if self.d.read_log().count("access denied") >= 2 else None,
                       10, "two denial lines")
        lines = [line for line in log.splitlines() if "access denied" in line]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(f"uid={STRANGER}", lines[0])
        self.assertIn(f"pid={pids[0]}", lines[0])
        self.assertIn("credential=backoffice", lines[0])
        self.assertIn(f"pid={pids[1]}", lines[1])
        self.assertIn("credential=by-group", lines[1])

    def test_a_denial_loop_cannot_flood_the_log(self):
        # 150 refused requests on one keep-alive connection, from a stranger.
        loop = CLIENT.split("s.sendall")[0] + r"""
req = f"GET /v1/tokens/backoffice HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
f = s.makefile("rb")
codes = []
for _ in range(150):
    s.sendall(req)
    status = int(f.readline().split(b" ")[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
    codes.append(status)
print(json.dumps({"codes": sorted(set(codes)), "n": len(codes)}))
"""
        out = subprocess.run(["setpriv", f"--reuid={STRANGER}", f"--regid={STRANGER}", "--clear-groups",
                              OTHER_USER_PYTHON, "-c", loop, self.d.socket, "GET", "/", ""],
                             capture_output=True, text=True, timeout=60, cwd="/")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout), {"codes": [403], "n": 150})
        # The daemon still answers, and logged at most its burst of denial lines.
        self.assertEqual(self.d.get("/v1/health").status, 200)
        denials = self.d.read_log().count("access denied")
        self.assertGreaterEqual(denials, 1)
        self.assertLessEqual(denials, 10)
        # The stranger's flood used up its own lines only: another uid's denial is logged.
        r = run_as(self.d.socket, NOBODY, NOBODY, None, "GET", "/v1/tokens/backoffice")
        self.assertEqual(r["status"], 403)
        self.assertIn(f"access denied: uid={NOBODY}", self.d.read_log())

    def test_status_details_only_for_admins(self):
        self.d.get("/v1/tokens/backoffice")
        admin = self.d.get("/v1/status").json()["credentials"]
        self.assertTrue(all("served" in c and "last_error" in c for c in admin))
        other = json.loads(run_as(self.d.socket, NOBODY, NOBODY, None, "GET", "/v1/status")["body"])
        validate(other, "status")
        for c in other["credentials"]:
            self.assertEqual(set(c), {"name", "kind", "state", "expires_at", "expires_in"})
        # cl-tokenctl status still draws its table from the states.
        table = self.d.ctl("status", user=NOBODY)
        self.assertEqual(table.returncode, 0, table)
        self.assertIn("backoffice", table.stdout)

    def test_cl_tokenctl_as_another_user(self):
        ok = self.d.ctl("token", "by-user", user=NOBODY)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(ok.stdout.strip(), self.tokens["by-user"])
        refused = self.d.ctl("token", "backoffice", user=NOBODY)
        self.assertEqual(refused.returncode, 3, refused)
        self.assertEqual(refused.stdout, "")
        self.assertTrue(refused.stderr.startswith("cl-tokenctl: "), refused.stderr)
        self.assertNotIn(self.tokens["backoffice"][:20], refused.stderr)
        revoke = self.d.ctl("revoke", "anyone", user=NOBODY)
        self.assertNotEqual(revoke.returncode, 0, revoke)


if __name__ == "__main__":
    unittest.main()

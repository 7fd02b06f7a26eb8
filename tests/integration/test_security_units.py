#!/usr/bin/python3
"""Unit and slice principals where units cannot be told, GET /v1/clients and the access
log, with clients running as other users (setpriv).

Integration hosts here are not systemd-managed with cgroup v2 (the tests check which and
expect accordingly); tests/systemd/inside_boot.py proves unit principals under a real
systemd. The socket is 0666 so that the allow lists are the only gate.
"""
# ctest-timeout: 180

import json
import os
import re
import subprocess
import unittest

from cltoken_harness import CL_TOKEND, DaemonTestCase, fake_harness, wait_for
from validate import validate

NOBODY = 65534
STRANGER = 4321
OTHER_USER_PYTHON = "/usr/bin/python3"

# One keep-alive connection as another user: each target in argv[2:] ("METHOD PATH"),
# `n` times each, in turn. Prints {"codes": {status: count}, "pid", "bodies": [last body per target]}.
LOOP = r"""
import json, os, socket, sys
path, n, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(path)
f = s.makefile("rb")
codes, last = {}, {}
for _ in range(n):
    for t in targets:
        method, target = t.split(" ", 1)
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".encode())
        status = int(f.readline().split(b" ")[1])
        length = 0
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        last[t] = f.read(length).decode()
        codes[status] = codes.get(status, 0) + 1
print(json.dumps({"codes": codes, "pid": os.getpid(), "bodies": last}))
"""

CREDENTIALS = """
[credentials.by-unit]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["unit:storefront.service", "slice:shop.slice"]

[credentials.by-unit-or-uid]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["unit:*", "uid:65534"]

[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
scope = "{it_scope}"
allow = ["uid:0"]
"""


def units_readable_here() -> bool:
    """The daemon's own test: systemd as init and the unified cgroup hierarchy."""
    if not os.path.isdir("/run/systemd/system"):
        return False
    out = subprocess.run(["stat", "-f", "-c", "%T", "/sys/fs/cgroup"], capture_output=True, text=True)
    return out.stdout.strip() == "cgroup2fs"


def loop_as(socket_path: str, uid: int, n: int, *targets: str) -> dict:
    out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", OTHER_USER_PYTHON, "-c",
                          LOOP, socket_path, str(n), *targets], capture_output=True, text=True, timeout=120, cwd="/")
    if out.returncode != 0:
        raise AssertionError(f"client as uid {uid} failed: {out.stderr}")
    result = json.loads(out.stdout)
    result["codes"] = {int(k): v for k, v in result["codes"].items()}
    return result


class UnitPrincipalsWithoutUnits(DaemonTestCase):
    """Where units cannot be read, a unit principal never matches and --check says why."""

    def setUp(self) -> None:
        super().setUp()
        if units_readable_here():
            self.skipTest("this host tells units apart: tests/systemd covers it")
        self.d = self.daemon(credentials=CREDENTIALS, start=False)

    def test_check_warns_for_each_unit_principal_with_its_line(self):
        r = subprocess.run([CL_TOKEND, "-c", self.d.config_path, "--check"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        warnings = [line for line in r.stdout.splitlines() if line.startswith("warning:")]
        with open(self.d.config_path) as f:
            lines = f.read().splitlines()
        expected = []
        for number, text in enumerate(lines, 1):
            for principal in re.findall(r'"((?:unit|slice):[^"]+)"', text):
                expected.append((number, principal))
        self.assertEqual(len(expected), 3)
        self.assertEqual(len(warnings), 3, r.stdout)
        for (number, principal), warning in zip(expected, warnings):
            self.assertIn(f"{self.d.config_path}:{number}: ", warning)
            self.assertIn(f"names {principal}, which can never match on this host", warning)
            self.assertIn("matched by their uid and gid only", warning)
        self.assertIn("allow=[unit:storefront.service,slice:shop.slice]", r.stdout)

    def test_no_unit_principal_matches_and_uid_principals_still_do(self):
        self.d.start()
        wait_for(lambda: self.d.get("/v1/health").status == 200, 15, "tokens")
        self.assertIn("can never match on this host", self.d.read_log())
        # Root matches no principal of by-unit; "unit:*" matches nobody here either.
        self.assertEqual(self.d.get("/v1/tokens/by-unit").status, 403)
        self.assertEqual(self.d.get("/v1/tokens/by-unit-or-uid").status, 403)
        # nobody is matched by its uid.
        r = loop_as(self.d.socket, NOBODY, 1, "GET /v1/tokens/by-unit-or-uid", "GET /v1/tokens/by-unit")
        self.assertEqual(r["codes"], {200: 1, 403: 1})
        # The denial line says the unit was not known.
        wait_for(lambda: f"access denied: uid={NOBODY}" in self.d.read_log(), 10, "the denial line")
        line = next(x for x in self.d.read_log().splitlines() if f"access denied: uid={NOBODY}" in x)
        self.assertIn(f"pid={r['pid']} unit=- token credential=by-unit", line)


class ClientsAndAccessLog(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.d = self.daemon(credentials=CREDENTIALS, extra="[log]\naccess = true\naccess_per_minute = 60\n")
        wait_for(lambda: self.d.get("/v1/health").status == 200, 15, "tokens")

    def clients(self) -> dict:
        r = self.d.get("/v1/clients")
        self.assertEqual(r.status, 200, r)
        validate(r.json(), "clients")
        return r.json()

    def test_the_list_counts_each_principal_and_credential(self):
        token = self.d.get("/v1/tokens/backoffice").json()["access_token"]
        loop_as(self.d.socket, NOBODY, 3, "GET /v1/tokens/by-unit-or-uid", "GET /v1/tokens/backoffice")
        rows = {(c["principal"], c["credential"]): c for c in self.clients()["clients"]}
        self.assertEqual(set(rows), {("user:nobody", "by-unit-or-uid"), ("user:nobody", "backoffice"),
                                     ("user:root", "backoffice")})
        self.assertEqual((rows[("user:nobody", "by-unit-or-uid")]["requests"],
                          rows[("user:nobody", "by-unit-or-uid")]["refused"]), (3, 0))
        self.assertEqual((rows[("user:nobody", "backoffice")]["requests"],
                          rows[("user:nobody", "backoffice")]["refused"]), (3, 3))
        self.assertEqual(rows[("user:nobody", "backoffice")]["uid"], NOBODY)
        self.assertIsNone(rows[("user:root", "backoffice")]["unit"])
        # cl-tokenctl prints it, for an admin only.
        out = self.d.ctl("clients")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"user:nobody\s+backoffice\s+3\s+3\s")
        both = self.d.ctl("status", "--clients")
        self.assertEqual(both.returncode, 0, both.stderr)
        self.assertIn("NAME", both.stdout)
        self.assertIn("user:nobody", both.stdout)
        self.assertNotIn(token, out.stdout + both.stdout + self.d.read_log())

    def test_another_uid_gets_403_and_its_flood_costs_a_few_log_lines(self):
        r = loop_as(self.d.socket, STRANGER, 500, "GET /v1/clients")
        self.assertEqual(r["codes"], {403: 500})
        self.assertEqual(json.loads(r["bodies"]["GET /v1/clients"])["error"]["code"], "forbidden")
        refused = self.d.ctl("clients", user=STRANGER)
        self.assertEqual(refused.returncode, 3, refused)
        self.assertIn("admin", refused.stderr)
        denials = [x for x in self.d.read_log().splitlines() if f"access denied: uid={STRANGER}" in x]
        self.assertGreaterEqual(len(denials), 1)
        self.assertLessEqual(len(denials), 10)
        self.assertTrue(all(x.endswith(" clients") for x in denials), denials)
        # The refusals asked for no credential: nothing in the list.
        self.assertEqual(self.clients()["clients"], [])

    def test_made_up_names_never_reach_the_list_or_the_log(self):
        made_up = [f"GET /v1/tokens/eyJmadeup{i}" for i in range(50)]
        r = loop_as(self.d.socket, STRANGER, 4, *made_up)
        self.assertEqual(r["codes"], {404: 200})
        self.assertEqual(self.clients()["clients"], [])
        self.assertNotIn("eyJmadeup", self.d.read_log())

    def test_access_lines_for_served_tokens_and_a_flood_keeps_to_its_share(self):
        token = self.d.get("/v1/tokens/backoffice").json()["access_token"]
        line = wait_for(lambda: next((x for x in self.d.read_log().splitlines()
                                      if "credential backoffice: access route=token uid=0 " in x), None),
                        10, "root's access line")
        self.assertRegex(line, r"uid=0 gid=0 pid=\d+ unit=- outcome=served status=200$")
        # nobody floods a credential it may use: 2000 tokens handed out, a tenth of 60 lines logged.
        r = loop_as(self.d.socket, NOBODY, 2000, "GET /v1/tokens/by-unit-or-uid")
        self.assertEqual(r["codes"], {200: 2000})
        flood = [x for x in self.d.read_log().splitlines() if f"access route=token uid={NOBODY} " in x]
        self.assertEqual(len(flood), 6, flood[:3])
        self.assertTrue(all(f"pid={r['pid']} unit=- outcome=served status=200" in x for x in flood))
        # ... and root's lines still come: the flood used up nobody's share only.
        before = self.d.read_log().count("credential backoffice: access route=token uid=0 ")
        self.assertEqual(self.d.get("/v1/tokens/backoffice").status, 200)
        wait_for(lambda: self.d.read_log().count("credential backoffice: access route=token uid=0 ") == before + 1,
                 10, "root's second access line")
        # A 403 is the denial warning, not an access line; a token never appears.
        loop_as(self.d.socket, NOBODY, 1, "GET /v1/tokens/backoffice")
        log = self.d.read_log()
        self.assertNotIn(f"access route=token uid={NOBODY} gid={NOBODY} pid={r['pid']} unit=- outcome=forbidden", log)
        self.assertIn(f"access denied: uid={NOBODY}", log)
        self.assertNotIn(token, log)
        self.assertNotIn(token[-12:], log)


class AccessLogOff(DaemonTestCase):
    def test_no_access_lines_by_default(self):
        d = self.daemon(credentials=CREDENTIALS)
        wait_for(lambda: d.get("/v1/health").status == 200, 15, "tokens")
        self.assertEqual(d.get("/v1/tokens/backoffice").status, 200)
        self.assertEqual(d.get("/v1/tokens/by-unit").status, 403)
        wait_for(lambda: "access denied: uid=0" in d.read_log(), 10, "the denial line")
        self.assertNotIn(": access route=", d.read_log())
        # The list is kept whether or not the access log is on.
        rows = d.get("/v1/clients").json()["clients"]
        self.assertEqual({(c["credential"], c["requests"], c["refused"]) for c in rows},
                         {("backoffice", 1, 0), ("by-unit", 1, 1)})


if __name__ == "__main__":
    unittest.main()

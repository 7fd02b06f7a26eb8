#!/usr/bin/python3
"""The package's life under a real systemd. Runs INSIDE the namespace that test_boot.py
boots (as root, with the source tree at /srv/cltokend-src and the .deb in
/srv/cltokend-test); never run it on a host.

install the .deb -> configure (secret through LoadCredential=) -> socket-activated start ->
status -> unit principals with transient units -> reload with a changed config -> a refused
reload -> restart while a client keeps fetching -> the watchdog -> stop -> purge.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import grp
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SRC = "/srv/cltokend-src"
SHARE = "/srv/cltokend-test"
os.environ["CLTOKEN_SOURCE_DIR"] = SRC
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

from cltoken_harness import Client, fake_harness, wait_for  # noqa: E402
from harness import FakeAuth  # noqa: E402

SOCKET = "/run/cl-tokend/cl-tokend.sock"
CONFIG = "/etc/cl-tokend/cl-tokend.toml"
DROPIN = "/etc/systemd/system/cl-tokend.service.d"
IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID
ERP = "it-erp"
ERP_SECRET = "s3cr3t-erp-value"


def sh(*cmd: str, check: bool = True, user: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    if user is not None:
        pw = pwd.getpwnam(user)
        cmd = ("setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def show(prop: str, unit: str = "cl-tokend.service") -> str:
    return sh("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def step(what: str) -> None:
    print(f"==> {what}", flush=True)


def credentials(names: list[str]) -> str:
    """The [credentials.*] tables for the names given, in cl-tokend.toml syntax."""
    tables = {
        "backoffice": f'kind = "integration"\nclient_id = "{IT}"\nclient_secret_credential = "backoffice.secret"\n'
                      f'scope = "market:all"\nallow = ["uid:0", "group:cl-tokens"]\n',
        "storefront-eu": f'kind = "sales_channel"\nclient_id = "{SC}"\nscope = "market:code:europe"\nallow = ["*"]\n',
        "erp": f'kind = "integration"\nclient_id = "{ERP}"\nclient_secret_credential = "erp.secret"\n'
               f'allow = ["uid:0"]\n',
        # One unit by name, and any unit in one slice: never the uid, which units share
        # (User=) or do not know in advance (DynamicUser=).
        "shop": f'kind = "sales_channel"\nclient_id = "{SC}"\nscope = "market:code:europe"\n'
                f'allow = ["unit:cltok-shop.service", "slice:cltok-shop.slice"]\n',
    }
    return "".join(f"\n[credentials.{n}]\n{tables[n]}" for n in names)


class PackageUnderSystemd(unittest.TestCase):
    def setUp(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="fake-", dir="/var/tmp")
        clients = fake_harness.default_clients() + [fake_harness.client(ERP, "integration", ERP_SECRET)]
        self.fake = FakeAuth(self.workdir, clients=clients, rate_limit_per_minute=0)
        self.fake.start()
        self.addCleanup(self.fake.stop)

    def write_config(self, names: list[str], extra: str = "") -> None:
        text = (f'[server]\nadmin = ["uid:0"]\n\n[upstream]\nauth_url = "{self.fake.url}"\n'
                f'ca_file = "/etc/cl-tokend/test-ca.pem"\n{extra}' + credentials(names))
        tmp = CONFIG + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chown(tmp, 0, grp.getgrnam("cl-tokend").gr_gid)
        os.chmod(tmp, 0o640)
        os.rename(tmp, CONFIG)  # atomically, as an operator's editor or config management would

    def requests_of(self, client_id: str) -> int:
        return self.fake.stats()["token_requests"].get(client_id, 0)

    def token(self, name: str) -> str:
        c = Client(SOCKET, timeout=20)
        try:
            r = c.get(f"/v1/tokens/{name}")
        finally:
            c.close()
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def status_text(self) -> str:
        return show("StatusText")

    def wait_status(self, text: str, timeout: float = 20) -> None:
        wait_for(lambda: self.status_text() == text, timeout, f"StatusText {text!r} (now {self.status_text()!r})")

    def test_install_start_reload_restart_stop_purge(self):
        self.install()
        self.configure()
        self.socket_activated_start()
        self.status()
        self.unit_principals()
        self.reload_with_a_changed_config()
        self.refused_reload()
        self.restart_while_a_client_keeps_fetching()
        self.watchdog()
        self.stop()
        self.purge()

    # -- the steps ------------------------------------------------------------------------
    def install(self) -> None:
        step("dpkg -i: user, group and folders made, nothing enabled or started")
        debs = glob.glob(os.path.join(SHARE, "cl-tokend_*.deb"))
        self.assertEqual(len(debs), 1, debs)
        sh("dpkg", "-i", debs[0])
        user = pwd.getpwnam("cl-tokend")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertLess(user.pw_uid, 1000, "a system user")
        grp.getgrnam("cl-tokens")
        st = os.stat("/etc/cl-tokend")
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o750, 0, grp.getgrnam("cl-tokend").gr_gid))
        st = os.stat("/run/cl-tokend")
        self.assertEqual((st.st_uid, st.st_gid), (user.pw_uid, user.pw_gid))
        self.assertTrue(os.path.isfile("/etc/cl-tokend/cl-tokend.toml.example"))
        for unit in ("cl-tokend.socket", "cl-tokend.service"):
            self.assertEqual(sh("systemctl", "is-enabled", unit, check=False).stdout.strip(), "disabled", unit)
            self.assertEqual(sh("systemctl", "is-active", unit, check=False).stdout.strip(), "inactive", unit)

    def configure(self) -> None:
        step("configure: config, secrets as systemd credentials (one encrypted), clients in cl-tokens and not")
        ca = "/etc/cl-tokend/test-ca.pem"
        with open(self.fake.ca_file) as src, open(ca, "w") as dst:
            dst.write(src.read())
        os.chmod(ca, 0o644)
        # backoffice's secret: root's file, handed over by systemd (the daemon cannot read it).
        with open("/etc/cl-tokend/backoffice.secret", "w") as f:
            f.write(fake_harness.INTEGRATION_CLIENT_SECRET + "\n")
        os.chmod("/etc/cl-tokend/backoffice.secret", 0o600)
        # erp's secret: encrypted at rest with systemd-creds (the host key: no TPM here).
        os.makedirs("/etc/credstore.encrypted", exist_ok=True)
        r = subprocess.run(["systemd-creds", "encrypt", "--name=erp.secret", "-", "/etc/credstore.encrypted/erp.secret"],
                           input=ERP_SECRET, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open("/etc/credstore.encrypted/erp.secret") as f:
            self.assertNotIn(ERP_SECRET, f.read())
        os.makedirs(DROPIN, exist_ok=True)
        with open(os.path.join(DROPIN, "secrets.conf"), "w") as f:
            f.write("[Service]\nLoadCredential=backoffice.secret:/etc/cl-tokend/backoffice.secret\n"
                    "LoadCredentialEncrypted=erp.secret:/etc/credstore.encrypted/erp.secret\n")
        self.write_config(["backoffice", "storefront-eu"])
        sh("useradd", "--system", "--groups", "cl-tokens", "--no-create-home", "erpapp")
        sh("useradd", "--system", "--no-create-home", "stranger")
        sh("systemctl", "daemon-reload")

    def socket_activated_start(self) -> None:
        step("systemctl start cl-tokend.socket; the first client starts the daemon")
        sh("systemctl", "start", "cl-tokend.socket")
        self.assertEqual(sh("systemctl", "is-active", "cl-tokend.service", check=False).stdout.strip(), "inactive")
        r = sh("cl-tokenctl", "token", "backoffice", timeout=30)
        token = r.stdout.strip()
        self.assertEqual(self.fake.check(token)[0], 200)
        self.assertEqual(sh("systemctl", "is-active", "cl-tokend.service").stdout.strip(), "active")
        journal = sh("journalctl", "-u", "cl-tokend.service", "--no-pager").stdout
        self.assertIn("listening on the socket passed by systemd", journal)
        pid = int(show("MainPID"))
        with open(f"/proc/{pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        self.assertEqual(set(map(int, uids)), {pwd.getpwnam("cl-tokend").pw_uid})
        # The service's RuntimeDirectory= must not have taken the socket from cl-tokens.
        st = os.stat(SOCKET)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o660, 0, grp.getgrnam("cl-tokens").gr_gid))
        self.assertEqual(sh("cl-tokenctl", "token", "backoffice", user="erpapp").stdout.strip(), token)
        refused = sh("cl-tokenctl", "token", "backoffice", user="stranger", check=False)
        self.assertEqual(refused.returncode, 1, refused)
        self.assertIn("ermission denied", refused.stderr)

    def status(self) -> None:
        step("systemctl status and cl-tokenctl status")
        self.wait_status("2/2 credentials fresh")
        out = sh("systemctl", "status", "--no-pager", "cl-tokend.service").stdout
        self.assertIn("active (running)", out)
        self.assertIn('Status: "2/2 credentials fresh"', out)
        self.assertIn("TriggeredBy:", out)
        doc = json.loads(sh("cl-tokenctl", "--json", "status").stdout)
        self.assertEqual({c["name"]: c["state"] for c in doc["credentials"]},
                         {"backoffice": "fresh", "storefront-eu": "fresh"})
        self.assertEqual(sh("cl-tokenctl", "health", check=False).returncode, 0)

    def run_unit(self, unit: str, *properties: str, slice_: str | None = None) -> subprocess.CompletedProcess:
        """`cl-tokenctl token shop` in a transient service `unit`; its exit status is ours."""
        cmd = ["systemd-run", f"--unit={unit}", "--pipe", "--wait", "--quiet", "--collect",
               "-p", "SupplementaryGroups=cl-tokens"]
        for p in properties:
            cmd += ["-p", p]
        if slice_:
            cmd.append(f"--slice={slice_}")
        return sh(*cmd, "/usr/bin/cl-tokenctl", "--json", "token", "shop", check=False, timeout=60)

    def unit_principals(self) -> None:
        step("unit principals: transient units with one uid and with DynamicUser=, allowed by unit or slice")
        self.write_config(["backoffice", "storefront-eu", "shop"])
        sh("systemctl", "reload", "cl-tokend.service")
        wait_for(lambda: "shop" in sh("cl-tokenctl", "--json", "status").stdout, 20, "the shop credential")
        # The shipped unit hides other users' processes (ProtectProc=invisible): their unit
        # cannot be told, so a unit principal does not admit them, and the daemon says why.
        self.assertEqual(self.run_unit("cltok-shop.service", "User=erpapp").returncode, 3)
        journal = sh("journalctl", "-u", "cl-tokend.service", "--no-pager").stdout
        self.assertIn("names unit:cltok-shop.service, which matches only peers of the daemon's own user", journal)
        # With /proc visible (docs/security.md), units are told apart whatever their uid.
        with open(os.path.join(DROPIN, "units.conf"), "w") as f:
            f.write("[Service]\nProtectProc=default\n")
        sh("systemctl", "daemon-reload")
        sh("systemctl", "restart", "cl-tokend.service")
        self.wait_status("3/3 credentials fresh")
        erpapp = pwd.getpwnam("erpapp").pw_uid
        outcomes = {}
        for unit, props, slice_ in (("cltok-shop.service", ["User=erpapp"], None),
                                    ("cltok-other.service", ["User=erpapp"], None),
                                    ("cltok-dyn-a.service", ["DynamicUser=yes"], "cltok-shop.slice"),
                                    ("cltok-dyn-b.service", ["DynamicUser=yes"], None)):
            r = self.run_unit(unit, *props, slice_=slice_)
            outcomes[unit] = r.returncode
            if r.returncode == 0:
                self.assertEqual(self.fake.check(json.loads(r.stdout)["access_token"])[0], 200)
        self.assertEqual(outcomes, {"cltok-shop.service": 0, "cltok-other.service": 3,
                                    "cltok-dyn-a.service": 0, "cltok-dyn-b.service": 3})
        # erpapp itself, outside those units, is not admitted either.
        self.assertEqual(sh("cl-tokenctl", "token", "shop", user="erpapp", check=False).returncode, 3)
        # Each refusal is logged with the unit; the list shows all four units and their uids.
        journal = sh("journalctl", "-u", "cl-tokend.service", "--no-pager").stdout
        self.assertRegex(journal, rf"access denied: uid={erpapp} .*unit=cltok-other\.service token credential=shop")
        self.assertRegex(journal, r"access denied: uid=\d+ .*unit=cltok-dyn-b\.service token credential=shop")
        rows = {c["principal"]: c for c in json.loads(sh("cl-tokenctl", "--json", "clients").stdout)["clients"]
                if c["credential"] == "shop"}
        for unit in outcomes:
            self.assertIn(f"unit:{unit}", rows)
            self.assertEqual(rows[f"unit:{unit}"]["unit"], unit)
            self.assertEqual(rows[f"unit:{unit}"]["refused"], 1 if outcomes[unit] else 0, rows[f"unit:{unit}"])
        self.assertEqual(rows["unit:cltok-shop.service"]["uid"], erpapp)
        self.assertEqual(rows["unit:cltok-other.service"]["uid"], erpapp)
        dynamic = {rows["unit:cltok-dyn-a.service"]["uid"], rows["unit:cltok-dyn-b.service"]["uid"]}
        self.assertNotIn(erpapp, dynamic)
        self.assertTrue(all(61184 <= uid <= 65519 for uid in dynamic), dynamic)  # systemd's DynamicUser= range
        table = sh("cl-tokenctl", "clients").stdout
        self.assertRegex(table, r"unit:cltok-dyn-a\.service\s+shop\s+1\s+0\s")
        print(table, flush=True)

    def reload_with_a_changed_config(self) -> None:
        step("systemctl reload: storefront-eu removed, erp added, backoffice kept with its token")
        kept = self.token("backoffice")
        before = {c: self.requests_of(c) for c in (IT, SC, ERP)}
        pid = show("MainPID")
        self.write_config(["backoffice", "erp"])
        sh("systemctl", "reload", "cl-tokend.service")

        def names() -> set[str]:
            return {c["name"] for c in json.loads(sh("cl-tokenctl", "--json", "status").stdout)["credentials"]}
        wait_for(lambda: names() == {"backoffice", "erp"}, 20, "the reloaded credentials")
        self.wait_status("2/2 credentials fresh")
        self.assertEqual(show("MainPID"), pid, "a reload is not a restart")
        self.assertEqual(self.token("backoffice"), kept)
        self.assertEqual(self.requests_of(IT), before[IT], "an unchanged credential went upstream")
        self.assertEqual(self.requests_of(SC), before[SC])
        self.assertEqual(self.requests_of(ERP), before[ERP] + 1)
        gone = sh("cl-tokenctl", "token", "storefront-eu", check=False)
        self.assertEqual(gone.returncode, 3, gone)
        self.assertEqual(self.fake.check(self.token("erp"))[0], 200)

    def refused_reload(self) -> None:
        step("a bad config: the old one stays, and status, journal and cl-tokenctl say why")
        kept = self.token("backoffice")
        self.write_config(["backoffice", "erp"], extra="max_requests_per_minute = 0\n")
        sh("systemctl", "reload", "cl-tokend.service")
        wait_for(lambda: "last reload refused: /etc/cl-tokend/cl-tokend.toml:" in self.status_text(), 20,
                 f"the refusal in StatusText (now {self.status_text()!r})")
        self.assertTrue(self.status_text().startswith("2/2 credentials fresh; last reload refused"), self.status_text())
        self.assertIn("config reload refused", sh("journalctl", "-u", "cl-tokend.service", "--no-pager").stdout)
        self.assertEqual(self.token("backoffice"), kept)
        r = sh("cl-tokenctl", "reload", check=False)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("cl-tokend.toml:", r.stderr)
        self.write_config(["backoffice", "erp"])
        sh("cl-tokenctl", "reload")  # synchronous: the config is in effect when it returns
        self.assertEqual(self.status_text(), "2/2 credentials fresh")

    def restart_while_a_client_keeps_fetching(self) -> None:
        step("systemctl restart while clients fetch on new connections: nothing refused")
        results: list = []  # (status or error, seconds)
        stop = threading.Event()

        def fetch() -> None:
            while not stop.is_set():
                start = time.monotonic()
                c = Client(SOCKET, timeout=20)
                try:
                    outcome = c.get("/v1/tokens/backoffice").status
                except Exception as e:  # any failure to get an answer counts against the daemon
                    outcome = repr(e)
                finally:
                    c.close()
                results.append((outcome, time.monotonic() - start))

        workers = [threading.Thread(target=fetch) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            wait_for(lambda: len(results) >= 40, 20, "40 answers before the restart")
            old_pid = show("MainPID")
            before = {c: self.requests_of(c) for c in (IT, ERP)}
            sh("systemctl", "restart", "cl-tokend.service")
            self.assertNotEqual(show("MainPID"), old_pid)
            at_restart = len(results)
            wait_for(lambda: len(results) >= at_restart + 100, 30, "100 answers after the restart")
        finally:
            stop.set()
            for w in workers:
                w.join(30)
        failures = [r for r, _ in results if r != 200]
        slowest = max(t for _, t in results)
        print(f"    {len(results)} requests by 4 clients, {len(results) - at_restart} after the restart; "
              f"slowest answer {slowest * 1000:.0f} ms", flush=True)
        self.assertEqual(failures, [], f"{len(failures)} of {len(results)} requests failed")
        # Tokens live in memory: the new daemon fetched each credential once, no more.
        wait_for(lambda: self.status_text() == "2/2 credentials fresh", 20, "fresh again")
        self.assertEqual({c: self.requests_of(c) - before[c] for c in (IT, ERP)}, {IT: 1, ERP: 1})
        # The budget's minute outlives the process, in the runtime folder systemd keeps.
        journal = sh("journalctl", "-u", "cl-tokend.service", "--no-pager").stdout
        self.assertRegex(journal, r"upstream budget: [1-9][0-9]* request\(s\) of the last minute taken back from "
                                  r"/run/cl-tokend/upstream.budget")
        self.assertEqual(os.stat("/run/cl-tokend/upstream.budget").st_uid, pwd.getpwnam("cl-tokend").pw_uid)
        st = os.stat(SOCKET)
        self.assertEqual(st.st_gid, grp.getgrnam("cl-tokens").gr_gid)

    def watchdog(self) -> None:
        step("watchdog: the heartbeat reaches systemd; a frozen daemon is restarted")
        with open(os.path.join(DROPIN, "watchdog.conf"), "w") as f:
            f.write("[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n")
        sh("systemctl", "daemon-reload")
        sh("systemctl", "restart", "cl-tokend.service")
        seen = set()
        wait_for(lambda: seen.add(show("WatchdogTimestampMonotonic")) or len(seen) >= 4, 15,
                 "three watchdog pings recorded by systemd")
        pid = show("MainPID")
        sh("kill", "-STOP", pid)
        wait_for(lambda: show("MainPID") not in (pid, "0") and show("ActiveState") == "active", 30,
                 "systemd to restart the frozen daemon")
        self.assertIn("Watchdog timeout", sh("journalctl", "-u", "cl-tokend.service", "--no-pager").stdout)
        os.unlink(os.path.join(DROPIN, "watchdog.conf"))
        sh("systemctl", "daemon-reload")

    def stop(self) -> None:
        step("systemctl stop: exit 0, socket removed")
        sh("systemctl", "stop", "cl-tokend.socket", "cl-tokend.service")
        self.assertEqual(show("ActiveState"), "inactive")
        self.assertEqual(show("Result"), "success")
        self.assertEqual(show("ExecMainStatus"), "0")
        self.assertFalse(os.path.exists(SOCKET))
        self.assertEqual(show("ActiveState", "cl-tokend.socket"), "inactive")

    def purge(self) -> None:
        step("dpkg --purge: units gone, the operator's files and the user stay")
        sh("systemctl", "start", "cl-tokend.service")  # running: the prerm must stop it
        sh("dpkg", "--purge", "cl-tokend")
        self.assertEqual(sh("systemctl", "is-active", "cl-tokend.service", check=False).stdout.strip(), "inactive")
        self.assertNotEqual(sh("systemctl", "cat", "cl-tokend.service", check=False).returncode, 0)
        self.assertTrue(os.path.exists(CONFIG))
        pwd.getpwnam("cl-tokend")


if __name__ == "__main__":
    unittest.main(verbosity=2)

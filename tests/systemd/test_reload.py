#!/usr/bin/python3
"""Reload (systemctl reload = SIGHUP, cl-tokenctl reload = POST /v1/reload): the new config
applies as a whole or not at all. Unchanged credentials keep their token without an
upstream request, removed ones are dropped (nothing revoked), new ones are fetched; a bad
config leaves the running one in place and says why."""
# ctest-timeout: 120

import re
import signal
import unittest

from sd_harness import CHANGED_CREDENTIALS, ERP_CLIENT_ID, ERP_SECRET, DaemonTestCase, fake_harness, wait_for

IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID

class Reload(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.fake.add_client(ERP_CLIENT_ID, "integration", ERP_SECRET)

    def names(self, d) -> set[str]:
        return {c["name"] for c in d.get("/v1/status").json()["credentials"]}

    def token(self, d, name: str) -> str:
        r = d.get(f"/v1/tokens/{name}")
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def check_changed_config_applied(self, d, kept: str, before: dict) -> None:
        self.assertEqual(self.names(d), {"backoffice", "erp"})
        self.assertEqual(self.token(d, "backoffice"), kept)
        stats = self.fake.stats()
        self.assertEqual(stats["token_requests"].get(IT, 0), before[IT], "an unchanged credential went upstream")
        self.assertEqual(stats["token_requests"].get(SC, 0), before[SC])
        self.assertEqual(stats["revoke_requests_total"], 0, "a removed credential was revoked")
        gone = d.get("/v1/tokens/storefront-eu")
        self.assertEqual((gone.status, gone.json()["error"]["code"]), (404, "unknown_credential"))
        self.assertEqual(self.fake.check(self.token(d, "erp"))[0], 200)

    def test_cl_tokenctl_reload_applies_a_changed_config(self):
        d = self.daemon(env={"ERP_SECRET": ERP_SECRET})
        d.wait_ready()
        kept = self.token(d, "backoffice")
        before = self.fake.stats()["token_requests"]
        d.write_config(credentials=CHANGED_CREDENTIALS)
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_changed_config_applied(d, kept, before)

    def test_sighup_applies_a_changed_config(self):
        d = self.daemon(env={"ERP_SECRET": ERP_SECRET})
        d.wait_ready()
        kept = self.token(d, "backoffice")
        before = self.fake.stats()["token_requests"]
        d.write_config(credentials=CHANGED_CREDENTIALS)
        d.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in d.read_log(), 10, "the reload")
        self.check_changed_config_applied(d, kept, before)

    def test_a_bad_config_is_refused_whole_and_the_running_one_stays(self):
        d = self.daemon(env={"ERP_SECRET": ERP_SECRET})
        d.wait_ready()
        kept = self.token(d, "backoffice")
        requests = self.fake.stats()["token_requests_total"]
        # Valid credentials, one bad value further down: nothing of it may apply.
        d.write_config(credentials=CHANGED_CREDENTIALS, refresh={"at": 1.5})

        r = d.post("/v1/reload")
        self.assertEqual(r.status, 400, r)
        message = r.json()["error"]["message"]
        self.assertRegex(message, re.escape(d.config_path) + r":\d+: .*refresh\.at")
        ctl = d.ctl("reload")
        self.assertEqual(ctl.returncode, 3, ctl)
        self.assertRegex(ctl.stderr, r"^cl-tokenctl: .*" + re.escape(d.config_path) + r":\d+:")

        d.signal(signal.SIGHUP)
        wait_for(lambda: d.read_log().count("config reload refused") >= 3, 10, "the refusal in the log")
        self.assertEqual(self.names(d), {"backoffice", "storefront-eu"})
        self.assertEqual(self.token(d, "backoffice"), kept)
        self.assertEqual(self.fake.stats()["token_requests_total"], requests)

    def test_reload_is_for_admins_only(self):
        d = self.daemon(env={"ERP_SECRET": ERP_SECRET})
        d.wait_ready()
        d.write_config(credentials=CHANGED_CREDENTIALS)
        r = d.ctl("reload", user=65534)
        self.assertEqual(r.returncode, 3, r)
        self.assertEqual(self.names(d), {"backoffice", "storefront-eu"})

    def test_log_level_from_the_command_line_survives_a_reload(self):
        d = self.daemon(log_level="debug", env={"ERP_SECRET": ERP_SECRET})  # the config says nothing: info
        d.wait_ready()
        d.write_config(credentials=CHANGED_CREDENTIALS)
        self.assertEqual(d.ctl("reload").returncode, 0)
        self.token(d, "erp")
        after = d.read_log().split("config reloaded", 1)[1]
        self.assertIn("credential erp: requesting a token", after)  # a debug line


if __name__ == "__main__":
    unittest.main()

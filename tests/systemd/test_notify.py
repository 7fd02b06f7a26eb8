#!/usr/bin/python3
"""sd_notify as systemd's manager sees it: a NOTIFY_SOCKET of our own receives READY,
STATUS, RELOADING (with MONOTONIC_USEC), READY again and STOPPING, in that order, all from
the daemon's own pid; STATUS follows the token states; WATCHDOG=1 beats when asked."""
# ctest-timeout: 120

import os
import signal
import time
import unittest

from sd_harness import CHANGED_CREDENTIALS, ERP_CLIENT_ID, ERP_SECRET, DaemonTestCase, NotifySocket

class Notifications(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.notify = NotifySocket(os.path.join(self.workdir, "notify.sock"))
        self.addCleanup(self.notify.close)

    def start(self, **kw):
        env = {"NOTIFY_SOCKET": self.notify.path}
        env.update(kw.pop("env", {}))
        return self.daemon(env=env, **kw)

    def test_ready_status_reloading_ready_stopping_in_order(self):
        # The auth server holds every request: READY=1 must not wait for it.
        self.fake.control(mode="hang")
        d = self.start(upstream={"request_timeout_ms": 1500})
        ready = self.notify.wait(self.notify.has("READY"), 10, "READY=1")
        self.assertEqual(ready.pid, d.proc.pid)
        self.assertIn(ready.fields.get("STATUS"), ("2/2 credentials fetching", "2/2 credentials empty"))
        self.assertEqual(self.fake.stats()["by_status"].get("200", 0), 0, "READY=1 waited for a token")
        self.assertEqual(d.get("/v1/health").status, 503)

        self.fake.control(mode="normal")
        fresh = self.notify.wait(lambda n: n.fields.get("STATUS") == "2/2 credentials fresh", 15,
                                     "STATUS=2/2 credentials fresh")

        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.signal(signal.SIGHUP)
        reloading = self.notify.wait(self.notify.has("RELOADING"), 10, "RELOADING=1")
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.assertEqual(reloading.fields["RELOADING"], "1")
        self.assertTrue(before <= int(reloading.fields["MONOTONIC_USEC"]) <= after,
                        f"MONOTONIC_USEC {reloading.fields['MONOTONIC_USEC']} not in [{before}, {after}]")
        reloaded = self.notify.wait(
            lambda n: "READY" in n.fields and self.notify.received.index(n) > self.notify.received.index(reloading),
            10, "READY=1 after RELOADING=1")
        self.assertEqual(reloaded.fields.get("STATUS"), "2/2 credentials fresh")

        d.signal(signal.SIGTERM)
        stopping = self.notify.wait(self.notify.has("STOPPING"), 10, "STOPPING=1")
        self.assertEqual(d.proc.wait(10), 0)

        order = [self.notify.received.index(n) for n in (ready, fresh, reloading, reloaded, stopping)]
        self.assertEqual(order, sorted(order), self.notify.received)
        self.assertEqual({n.pid for n in self.notify.received}, {d.proc.pid})

    def test_status_names_a_credential_the_auth_server_rejects(self):
        d = self.start()
        self.notify.wait(lambda n: n.fields.get("STATUS") == "2/2 credentials fresh", 15, "2/2 fresh")
        with open(d.secret_file, "w") as f:
            f.write("not-the-secret\n")
        d.signal(signal.SIGHUP)  # a new secret is a new identity: fetched again, and refused
        n = self.notify.wait(lambda n: n.fields.get("STATUS", "").startswith("1 failing"), 15,
                                 "STATUS with the failing credential")
        self.assertEqual(n.fields["STATUS"], "1 failing: backoffice rejected; 1 fresh")

    def test_status_follows_the_tokens_after_a_reload(self):
        # storefront-eu replaced by erp: "2/2 credentials fresh" before and after, with a
        # different line in between that the heartbeat must not lose track of.
        self.fake.add_client(ERP_CLIENT_ID, "integration", ERP_SECRET)
        d = self.start(env={"ERP_SECRET": ERP_SECRET})
        self.notify.wait(lambda n: n.fields.get("STATUS") == "2/2 credentials fresh", 15, "2/2 fresh")
        d.write_config(credentials=CHANGED_CREDENTIALS)
        d.signal(signal.SIGHUP)
        reloaded = self.notify.wait(lambda n: "READY" in n.fields and n.fields.get("STATUS", "").startswith("1 "),
                                        10, "READY=1 with erp not fresh yet")
        self.assertRegex(reloaded.fields["STATUS"], r"^1 (empty|fetching); 1 fresh$")
        after = self.notify.wait(lambda n: n.fields.get("STATUS") == "2/2 credentials fresh"
                                     and self.notify.received.index(n) > self.notify.received.index(reloaded),
                                     15, "2/2 fresh again after the reload")
        self.assertIsNotNone(after)

    def test_watchdog_beats_at_half_the_interval(self):
        d = self.start(env={"WATCHDOG_USEC": "600000"})
        self.notify.wait(self.notify.has("READY"), 10, "READY=1")
        first = time.monotonic()
        pings = self.notify.wait_count("WATCHDOG", 4, 10)
        self.assertTrue(all(n.fields["WATCHDOG"] == "1" and n.pid == d.proc.pid for n in pings), pings)
        # Four pings at 300 ms take about a second; far slower would miss a 600 ms watchdog.
        self.assertLess(time.monotonic() - first, 5)

    def test_no_watchdog_pings_unless_systemd_asks(self):
        d = self.start()
        self.notify.wait(lambda n: n.fields.get("STATUS") == "2/2 credentials fresh", 15, "2/2 fresh")
        d.signal(signal.SIGTERM)
        self.notify.wait(self.notify.has("STOPPING"), 10, "STOPPING=1")
        self.assertFalse([n for n in self.notify.received if "WATCHDOG" in n.fields])


if __name__ == "__main__":
    unittest.main()

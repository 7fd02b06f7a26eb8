#!/usr/bin/python3
"""The host's upstream budget is shared fairly between peers.

Another uid spends the whole budget by reporting every new token of a credential anyone
may use as invalid (its per-peer report limit raised, so that only the budget holds it),
and queues one more report. Root then reports its own credential's token: it caused no
upstream request, so when the next slot frees it goes first, ahead of the attacker's work
that was queued before it (and that sorts first by every other rule: both credentials have
a client waiting and no token, and the attacker's comes first by name).
"""
# ctest-timeout: 240

import json
import subprocess
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for
from test_security_access import CLIENT, NOBODY, OTHER_USER_PYTHON, run_as

ATTACKER_CREDENTIAL = """
[credentials.anyone]
kind = "sales_channel"
client_id = "{sc_id}"
scope = "{sc_scope}"
allow = ["*"]
"""

ROOT_CREDENTIAL = """
[credentials.root-only]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
scope = "{it_scope}"
allow = ["uid:0"]
"""

BUDGET = 4
# The queued report waits for a budget slot, up to a minute: the usual client gives up
# after 20 s.
PATIENT_CLIENT = CLIENT.replace("s.settimeout(20)", "s.settimeout(150)")
assert PATIENT_CLIENT != CLIENT


class UpstreamFairness(DaemonTestCase):
    def test_a_peer_that_spent_the_budget_waits_behind_one_that_caused_nothing(self):
        server = {"invalidate_burst": 1000, "request_timeout_ms": 120000}
        upstream = {"max_requests_per_minute": BUDGET}
        d = self.daemon(credentials=ATTACKER_CREDENTIAL, server=server, upstream=upstream)
        d.wait_ready()
        # Root's credential arrives with a reload, after the cold start: the budget's slots
        # then free one at a time, the cold start's first.
        d.write_config(credentials=ATTACKER_CREDENTIAL + ROOT_CREDENTIAL, server=server, upstream=upstream)
        r = d.post("/v1/reload")
        self.assertEqual(r.status, 200, r.body)
        wait_for(lambda: d.get("/v1/health").status == 200, 15, "root's credential to hold a token")

        # The attacker (nobody) reports each new token: two more requests fill the budget.
        for _ in range(BUDGET - 2):
            r = self.report_as_attacker(d)
            self.assertEqual(r["status"], 200, r)
        self.assertEqual(self.token_requests(), BUDGET)
        # One more report, over the budget: it waits in the daemon for its turn.
        token = self.current_as_attacker(d)
        self.reject(token)
        waiting = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", OTHER_USER_PYTHON, "-c", PATIENT_CLIENT,
             d.socket, "POST", "/v1/tokens/anyone/invalidate", json.dumps({"access_token": token})],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        try:
            wait_for(lambda: "waiting for the upstream budget" in d.read_log(), 10, "the attacker's report to queue")
            # Root reports its own token after it, and is answered with a new one.
            root_token = d.get("/v1/tokens/root-only").json()["access_token"]
            self.reject(root_token)
            c = d.client(timeout=150)
            try:
                r = c.request("POST", "/v1/tokens/root-only/invalidate", {"access_token": root_token})
            finally:
                c.close()
            self.assertEqual(r.status, 200, r.body)
            self.assertNotEqual(r.json()["access_token"], root_token)
            out, err = waiting.communicate(timeout=120)
            self.assertEqual(json.loads(out)["status"], 200, err)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()
        # The auth server saw root's request first, at the first slot that freed, although
        # the attacker's was queued before it; the budget held throughout.
        requests = [q for q in self.fake.stats()["requests"] if q["grant_type"] == "client_credentials"]
        self.assertEqual(len(requests), BUDGET + 2, requests)
        self.assertEqual([q["client_id"] for q in requests[BUDGET:]],
                         [fake_harness.INTEGRATION_CLIENT_ID, fake_harness.SALES_CHANNEL_CLIENT_ID])
        times = [q["t"] for q in requests]
        for i in range(len(times)):
            in_window = [t for t in times[: i + 1] if t > times[i] - 60]
            self.assertLessEqual(len(in_window), BUDGET)

    def current_as_attacker(self, d) -> str:
        r = run_as(d.socket, NOBODY, NOBODY, None, "GET", "/v1/tokens/anyone")
        self.assertEqual(r["status"], 200, r)
        return json.loads(r["body"])["access_token"]

    def report_as_attacker(self, d) -> dict:
        token = self.current_as_attacker(d)
        self.reject(token)
        return run_as(d.socket, NOBODY, NOBODY, None, "POST", "/v1/tokens/anyone/invalidate",
                      json.dumps({"access_token": token}))


if __name__ == "__main__":
    unittest.main()

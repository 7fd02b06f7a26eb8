#!/usr/bin/python3
"""The global upstream budget and 429s, end to end. The fake's request log (its own
clock) is the witness: what the auth server saw, not what the daemon believes it sent."""
# ctest-timeout: 300

import calendar
import email.utils
import threading
import time
import unittest

from cltoken_harness import DaemonTestCase, Response, fake_harness, wait_for
from resilience import credential_status, error_of, jwt_claims, metric, timed, token_request_times

SECRET = fake_harness.INTEGRATION_CLIENT_SECRET
IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID


def numbered_credentials(n: int) -> str:
    return "".join(f'[credentials.c{i}]\nkind = "integration"\nclient_id = "it-{i}"\n'
                   f'client_secret_file = "{{secret_file}}"\nallow = ["*"]\n' for i in range(n))


class ColdStartOverBudget(DaemonTestCase):
    """Five credentials, a budget of two a minute: the auth server never sees more than two
    in any 60 s, and a credential a client is waiting for goes before the cold ones."""
    fake_rate_limit = 0  # only the daemon's own budget limits here
    fake_clients = [fake_harness.client(f"it-{i}", "integration", SECRET, 3600) for i in range(5)]

    def test_budget_holds_and_a_waiting_client_goes_first(self):
        d = self.daemon(credentials=numbered_credentials(5), upstream={"max_requests_per_minute": 2},
                        server={"request_timeout_ms": 2000})
        first = self.fake.wait_stats(lambda s: s["token_requests_total"] >= 2, timeout=10)
        self.assertEqual(sorted(r["client_id"] for r in first["requests"]), ["it-0", "it-1"])
        wait_for(lambda: d.get("/v1/tokens/c1").status == 200, 10, "c1's token")

        status = d.get("/v1/status").json()
        self.assertEqual(status["upstream"]["budget_per_minute"], 2)
        self.assertEqual(status["upstream"]["requests_last_minute"], 2)
        # Each queued credential's turn, not "now": c2 and c3 when the first two answers
        # leave the window, c4 a window later (nobody is waiting for it yet).
        turns = {c["name"]: (c["state"], c["next_refresh_in"]) for c in status["credentials"]}
        for name, low, high in (("c2", 50, 60), ("c3", 50, 60), ("c4", 110, 120)):
            self.assertEqual(turns[name][0], "empty")
            self.assertGreater(turns[name][1], low, turns)
            self.assertLessEqual(turns[name][1], high, turns)

        # A client for c4 gets a 503 within its deadline that says why and when.
        r, took = timed(lambda: d.get("/v1/tokens/c4"))
        self.assertEqual(r.status, 503, r)
        self.assertLess(took, 3.0)
        self.assertEqual(error_of(r)["code"], "upstream_unavailable")
        self.assertIn("upstream request budget", error_of(r)["message"])
        # While it waited it went ahead of c2 and c3: its turn is the next window.
        self.assertGreater(int(r.headers["retry-after"]), 45)
        self.assertLessEqual(int(r.headers["retry-after"]), 60)

        # Clients keep asking for c4, each request held up to the 2 s deadline. Two of
        # them, a second apart, so that one is always waiting when the window frees two
        # slots: c4 must take one of them before c2 and c3, which nobody waits for.
        served: list = []
        done = threading.Event()

        def poll_c4() -> None:
            while not done.is_set():
                r = d.get("/v1/tokens/c4")
                if r.status == 200:
                    served.append(r)
                    done.set()

        pollers = [threading.Thread(target=poll_c4), threading.Timer(1.0, poll_c4)]  # the clients' own pace
        for t in pollers:
            t.start()
        try:
            wait_for(lambda: served, 75, "c4 to get a token once the budget allowed", interval=0.2)
        finally:
            done.set()
            for t in pollers:
                t.join(10)
        r = served[0]
        self.assertEqual(jwt_claims(r.json()["access_token"])["application"]["client_id"], "it-4")
        stats = self.fake.wait_stats(lambda s: s["token_requests_total"] >= 4, timeout=5)
        second = sorted(r["client_id"] for r in stats["requests"][2:])
        self.assertEqual(second, ["it-2", "it-4"])
        times = token_request_times(stats)
        self.assertGreaterEqual(min(times[2:]) - max(times[:2]), 60.0)
        self.assertLessEqual(fake_harness.max_requests_in_window(stats["requests"]), 2)
        self.assertEqual(d.get("/v1/status").json()["upstream"]["requests_last_minute"], 2)
        self.assertNotEqual(credential_status(d, "c3")["state"], "fresh")  # its turn is a window later
        self.assertIn("waiting for the upstream budget", d.read_log())


class BudgetAcrossRestarts(DaemonTestCase):
    """A daemon killed and restarted within the minute spends only what its last life left
    of the budget: the auth server's count does not restart with the daemon."""
    fake_rate_limit = 0  # only the daemon's own budget limits here
    fake_clients = [fake_harness.client(f"it-{i}", "integration", SECRET, 3600) for i in range(3)]

    def restart(self, d):
        d.proc.kill()  # a crash: nothing is written on the way out
        d.proc.wait()
        d.log.close()
        d.start()

    def test_a_crash_loop_does_not_start_each_life_with_a_full_budget(self):
        path = f"{self.workdir}/upstream.budget"
        d = self.daemon(credentials=numbered_credentials(3), server={"request_timeout_ms": 1000},
                        upstream={"max_requests_per_minute": 3, "budget_path": path})
        self.fake.wait_stats(lambda s: s["token_requests_total"] == 3, timeout=10)
        wait_for(lambda: d.get("/v1/status").json()["upstream"]["requests_last_minute"] == 3, 10, "3 answers")
        for _ in range(3):
            self.restart(d)
            # Every credential is cold and wants a token; the budget has none left.
            r = d.get("/v1/tokens/c0")
            self.assertEqual(r.status, 503, r)
            self.assertGreater(int(r.headers["retry-after"]), 30)
            status = d.get("/v1/status").json()
            self.assertEqual(status["upstream"]["requests_last_minute"], 3)
            self.assertEqual(self.fake.stats()["token_requests_total"], 3)
        self.assertRegex(d.read_log(), r"upstream budget: 3 request\(s\) of the last minute taken back from ")

        # The same crash without the record: each life spends a whole budget at once.
        d.write_config(credentials=numbered_credentials(3), server={"request_timeout_ms": 1000},
                       upstream={"max_requests_per_minute": 3, "budget_path": ""})
        self.restart(d)
        self.fake.wait_stats(lambda s: s["token_requests_total"] == 6, timeout=10)
        self.assertIn("upstream.budget_path is not set", d.read_log())

    def test_a_record_that_is_not_one_is_ignored_with_a_warning(self):
        path = f"{self.workdir}/upstream.budget"
        with open(path, "w") as f:
            f.write("answered tomorrow\n")
        d = self.daemon(credentials=numbered_credentials(3),
                        upstream={"max_requests_per_minute": 3, "budget_path": path})
        self.fake.wait_stats(lambda s: s["token_requests_total"] == 3, timeout=10)
        self.assertIn("upstream budget record " + path + " not used: not an upstream budget record", d.read_log())
        with open(path) as f:
            self.assertTrue(f.read().startswith("cl-tokend upstream budget 1\n"))


class RateLimited(DaemonTestCase):
    fake_rate_limit = 0

    def setUp(self):
        super().setUp()
        self.d = self.daemon(refresh={"backoff_initial_ms": 200, "backoff_max_ms": 2000},
                             server={"request_timeout_ms": 3000})
        self.d.wait_ready()
        self.fake.reset()

    def invalidate(self, name: str) -> Response:
        token = self.d.get(f"/v1/tokens/{name}").json()["access_token"]
        self.reject(token)
        return self.d.post(f"/v1/tokens/{name}/invalidate", {"access_token": token})

    def test_retry_after_4_stops_every_request_for_4_s(self):
        d = self.d
        self.fake.control(mode="429", retry_after="4", count=1)
        r = self.invalidate("backoffice")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(error_of(r)["code"], "upstream_unavailable")
        self.assertIn("rate limit", error_of(r)["message"])
        self.assertIn(r.headers["retry-after"], ("3", "4"))
        status = d.get("/v1/status").json()
        until = calendar.timegm(time.strptime(status["upstream"]["rate_limited_until"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertGreaterEqual(until - time.time(), 2.0)  # about 4 s from now, in whole seconds
        self.assertLessEqual(until - time.time(), 4.5)
        bo = credential_status(d, "backoffice")
        self.assertEqual(bo["last_error"], "auth server rate limit reached (429, Retry-After 4 s)")
        self.assertIn(bo["state"], ("empty", "failing"))

        # During the pause: a valid token is served at once, a dropped one is not fetched.
        for _ in range(5):
            r, took = timed(lambda: d.get("/v1/tokens/storefront-eu"))
            self.assertEqual(r.status, 200, r)
            self.assertLess(took, 0.5)
        r = self.invalidate("storefront-eu")
        self.assertEqual(r.status, 503, r)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertLessEqual(int(r.headers["retry-after"]), 4)

        wait_for(lambda: d.get("/v1/health").status == 200, 15, "both credentials back after the pause")
        stats = self.fake.stats()
        requests = stats["requests"]
        self.assertEqual(requests[0]["status"], 429)
        later = [r["t"] for r in requests[1:]]
        self.assertEqual(len(later), 2, requests)  # one each, nothing during the pause
        self.assertGreaterEqual(min(later) - requests[0]["t"], 4.0)
        self.assertIsNone(d.get("/v1/status").json()["upstream"]["rate_limited_until"])
        self.assertEqual(metric(d, "upstream_requests_total", credential="backoffice", outcome="rate_limited"), 1)
        self.assertIn("all upstream requests paused for 4000 ms", d.read_log())

    def test_retry_after_as_an_http_date(self):
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        self.fake.control(mode="429", retry_after=when, count=1)
        r = self.invalidate("backoffice")
        self.assertEqual(r.status, 503, r)
        wait_for(lambda: self.d.get("/v1/tokens/backoffice").status == 200, 10, "the token after the pause")
        requests = self.fake.stats()["requests"]
        self.assertEqual([r["status"] for r in requests], [429, 200])
        # Whole seconds: the date names a second, not an instant within it.
        self.assertGreaterEqual(requests[1]["t"] - requests[0]["t"], 2.0)

    def test_without_retry_after_requests_back_off_exponentially(self):
        self.fake.control(mode="429", count=4)  # no Retry-After header at all
        r = self.invalidate("backoffice")
        self.assertEqual(r.status, 503, r)
        self.assertIn("no Retry-After", error_of(r)["message"])
        wait_for(lambda: self.d.get("/v1/tokens/backoffice").status == 200, 15, "the token after four 429s")
        requests = self.fake.stats()["requests"]
        self.assertEqual([r["status"] for r in requests], [429, 429, 429, 429, 200])
        gaps = [b["t"] - a["t"] for a, b in zip(requests, requests[1:])]
        # backoff_initial 200 ms, doubling, "equal jitter": at least half of each step.
        for gap, step in zip(gaps, (0.2, 0.4, 0.8, 1.6)):
            self.assertGreaterEqual(gap, step / 2, gaps)
            self.assertLessEqual(gap, step + 0.5, gaps)


class FakeServersOwnLimit(DaemonTestCase):
    """The auth server's own limiter (shared with other processes on the host) answers
    429 with Retry-After until its window frees a slot: honoured, and nothing is lost."""
    fake_rate_limit = 3

    def test_the_servers_limiter_is_honoured(self):
        d = self.daemon(refresh={"backoff_initial_ms": 100, "backoff_max_ms": 500})
        d.wait_ready()  # two requests
        self.fake.token(grant_type="client_credentials", client_id=SC)  # another process on the host
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.reject(token)
        r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": token})
        self.assertEqual(r.status, 503, r)
        retry = int(r.headers["retry-after"])
        self.assertGreater(retry, 50)  # the limiter's window: about a minute
        status = d.get("/v1/status").json()
        self.assertIsNotNone(status["upstream"]["rate_limited_until"])
        # Only one request met the limiter: the daemon stopped right there.
        stats = self.fake.stats()
        self.assertEqual(stats["rejected_429"], 1)
        self.assertEqual(d.get("/v1/tokens/storefront-eu").status, 200)
        self.assertEqual(self.fake.stats()["rejected_429"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""GET /metrics of a live daemon: promtool accepts it, values move as the daemon works, the
alert rules only name metrics the daemon exposes, and nothing secret is in it."""
# ctest-timeout: 180

import glob
import os
import re
import subprocess
import sys
import time
import unittest

from cltoken_harness import SOURCE_DIR, DaemonTestCase, fake_harness, wait_for

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "observability"))
from promtool import find_promtool  # noqa: E402

IT = fake_harness.INTEGRATION_CLIENT_ID
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse(text: str) -> dict[str, float]:
    """'name{labels}' -> value, for every sample line (comments skipped)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def runs(samples: list) -> str:
    """(overdue, valid, state) samples as runs: "stale overdue=1 valid=1 x49, ..."."""
    out: list[list] = []
    for s in samples:
        if out and out[-1][0] == s:
            out[-1][1] += 1
        else:
            out.append([s, 1])
    return ", ".join(f"{st} overdue={o:g} valid={v:g} x{n}" for (o, v, st), n in out)


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


class Metrics(DaemonTestCase):
    def scrape(self, d) -> str:
        r = d.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return r.body.decode()

    def metrics(self, d) -> dict[str, float]:
        return parse(self.scrape(d))

    def promtool_check(self, text: str) -> None:
        r = subprocess.run([find_promtool(), "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=60)
        # promtool prints lint problems and exits 1 (3 for a parse error); silence is success.
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), text)

    def test_scrape_passes_promtool_and_counters_move(self):
        d = self.daemon()
        d.wait_ready()
        before = self.metrics(d)
        self.promtool_check(self.scrape(d))
        served = 'cl_tokend_tokens_served_total{credential="backoffice"}'
        ok = 'cl_tokend_upstream_requests_total{credential="backoffice",outcome="ok"}'
        err = 'cl_tokend_upstream_requests_total{credential="backoffice",outcome="server_error"}'
        self.assertEqual(before[ok], 1)
        self.assertEqual(before[err], 0)

        # Served counter: one per token handed out.
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        d.get("/v1/tokens/backoffice")
        after = self.metrics(d)
        self.assertEqual(after[served], before[served] + 2)
        self.assertGreaterEqual(after['cl_tokend_requests_total{route="token",code="200"}'], 2)
        self.assertGreaterEqual(after["cl_tokend_connections"], 1)  # the scrape itself

        # A 500 from the auth server: counted as server_error; the retry after backoff: ok.
        self.reject(token)
        self.fake.control(mode="500", count=1)
        r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": token})
        self.assertIn(r.status, (200, 503), r)
        m = wait_for(lambda: (lambda m: m if m[ok] == 2 else None)(self.metrics(d)), 15,
                     "the refresh after the 500 to succeed")
        self.assertEqual(m[err], 1)
        self.assertEqual(m['cl_tokend_upstream_requests_total{credential="backoffice",outcome="rejected"}'], 0)
        # Every token request was timed: two at start, the 500 and the retry.
        self.assertEqual(m["cl_tokend_upstream_request_duration_seconds_count"], 4)
        self.assertEqual(m['cl_tokend_upstream_request_duration_seconds_bucket{le="+Inf"}'], 4)
        self.assertEqual(m['cl_tokend_token_valid{credential="backoffice"}'], 1)
        self.promtool_check(self.scrape(d))

    def test_expiry_gauge_falls_and_refresh_age_grows(self):
        d = self.daemon()
        d.wait_ready()
        key = 'cl_tokend_token_expiry_seconds{credential="backoffice"}'
        age = 'cl_tokend_last_refresh_age_seconds{credential="backoffice"}'
        first = self.metrics(d)
        self.assertGreater(first[key], 7000)
        self.assertLessEqual(first[key], 7200)
        # Values are rounded to the millisecond: wait for a fall well past that.
        later = wait_for(lambda: (lambda m: m if m[key] < first[key] - 0.05 else None)(self.metrics(d)), 10,
                         "the expiry gauge to fall")
        self.assertGreater(later[age], first[age])
        self.assertAlmostEqual(later[key] + later[age], first[key] + first[age], delta=0.5)
        self.assertGreater(later["cl_tokend_uptime_seconds"], first["cl_tokend_uptime_seconds"])

    def test_a_429_shows_in_the_outcome_counter_and_the_pause_gauge(self):
        d = self.daemon()
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.reject(token)
        self.fake.control(mode="429", retry_after="3", count=1)
        d.post("/v1/tokens/backoffice/invalidate", {"access_token": token})
        m = wait_for(lambda: (lambda m: m if m["cl_tokend_upstream_rate_limited"] == 1 else None)(self.metrics(d)), 10,
                     "the rate-limit pause to show")
        self.assertEqual(m['cl_tokend_upstream_requests_total{credential="backoffice",outcome="rate_limited"}'], 1)
        status = d.ctl("status")
        self.assertIn("rate limited until", status.stdout.splitlines()[0])
        # After Retry-After the daemon fetches again and the pause ends.
        wait_for(lambda: self.metrics(d)["cl_tokend_upstream_rate_limited"] == 0, 15, "the pause to end")
        wait_for(lambda: self.metrics(d)['cl_tokend_token_valid{credential="backoffice"}'] == 1, 15,
                 "a new token after the pause")

    def test_alert_rules_and_their_tests_name_only_metrics_the_daemon_exposes(self):
        d = self.daemon()
        d.wait_ready()
        text = self.scrape(d)
        exposed = families(text)
        # The sample names of a histogram family are its _bucket, _sum and _count.
        names = set(exposed) | {f + s for f in exposed for s in ("_bucket", "_sum", "_count")}
        files = [os.path.join(SOURCE_DIR, "docs", "prometheus", "cl-tokend-alerts.yml")]
        files += glob.glob(os.path.join(SOURCE_DIR, "tests", "observability", "*.test.yml"))
        used = set()
        for path in files:
            with open(path) as f:
                used |= set(re.findall(r"\bcl_tokend_[a-z_]+", f.read()))
        self.assertGreater(len(used), 8)
        self.assertEqual(sorted(used - names), [], "names in the rules or their tests that /metrics lacks")
        # And the contract's names are all there.
        for name in ("cl_tokend_tokens_served_total", "cl_tokend_upstream_requests_total",
                     "cl_tokend_token_expiry_seconds", "cl_tokend_refresh_overdue",
                     "cl_tokend_upstream_budget_remaining", "cl_tokend_connections", "cl_tokend_requests_total",
                     "cl_tokend_request_duration_seconds"):
            self.assertIn(name, exposed)
        # Label names in the test inputs are the daemon's too.
        labels = set(re.findall(r'([a-z_]+)="', text))
        for path in files[1:]:
            with open(path) as f:
                for series in re.findall(r"series: '(cl_tokend_[^']+)'", f.read()):
                    for label in re.findall(r'([a-z_]+)="', series):
                        if label not in ("instance", "job"):  # added by Prometheus at scrape
                            self.assertIn(label, labels, series)

    def test_no_token_or_secret_in_the_metrics(self):
        d = self.daemon()
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        text = self.scrape(d)
        self.assertNotIn(token, text)
        self.assertNotIn(token[:20], text)
        self.assertNotIn(fake_harness.INTEGRATION_CLIENT_SECRET, text)
        self.assertNotIn(IT, text)  # not even the client_id


class RefreshOverdue(DaemonTestCase):
    # 6 s tokens refreshed at half-life: the refresh is due 3 s after each fetch.
    fake_clients = fake_harness.default_clients(integration_lifetime=6, sales_channel_lifetime=600)

    def test_overdue_holds_through_failing_retries_then_the_token_expires(self):
        # The auth server holds every refresh until the 500 ms request timeout: each retry
        # is in flight (state refreshing) long enough for scrapes to see it.
        d = self.daemon(refresh={"at": 0.5, "jitter": 0.0, "min_ttl": 0, "backoff_initial_ms": 200,
                                 "backoff_max_ms": 400},
                        upstream={"request_timeout_ms": 500})
        d.wait_ready()
        overdue = 'cl_tokend_refresh_overdue{credential="backoffice"}'
        valid = 'cl_tokend_token_valid{credential="backoffice"}'
        self.fake.control(mode="hang", clients=[IT])
        # From the first failure until the token expires, every scrape must say overdue:
        # retries in flight must not blink it to 0 (an alert's `for:` would restart at
        # every blink).
        samples = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = self.metrics(d)
            samples.append((m[overdue], m[valid], self._state(m)))
            if m[valid] == 0:
                break
        self.assertEqual(samples[-1][1], 0, "the token never expired")
        states = [s for _, _, s in samples]
        # The first attempt at refresh time is on time, not overdue; from its failure on
        # (the first "stale" after a "refreshing") the refresh is overdue.
        first = next((i for i in range(1, len(samples))
                      if states[i] == "stale" and "refreshing" in states[:i]), None)
        self.assertIsNotNone(first, f"the first refresh never failed: {runs(samples)}")
        while_valid = [s for s in samples[first:] if s[1] == 1]
        self.assertTrue(while_valid)
        self.assertTrue(all(o == 1 for o, _, _ in while_valid), runs(samples[first:]))
        self.assertIn("refreshing", [s for _, v, s in samples[first:] if v == 1],
                      "no scrape caught a retry in flight; the test proves nothing")
        # Expired: not overdue any more (nothing valid to be late with), and failing.
        m = self.metrics(d)
        self.assertEqual(m[overdue], 0)
        self.assertIn(self._state(m), ("failing", "fetching"))
        self.assertGreater(m['cl_tokend_upstream_requests_total{credential="backoffice",outcome="network_error"}'], 1)
        self.promtool_check(self.scrape(d))

    def _state(self, m: dict[str, float]) -> str:
        on = [k for k, v in m.items()
              if k.startswith('cl_tokend_credential_state{credential="backoffice"') and v == 1]
        self.assertEqual(len(on), 1, on)
        return re.search(r'state="([a-z]+)"', on[0]).group(1)

    scrape = Metrics.scrape
    metrics = Metrics.metrics
    promtool_check = Metrics.promtool_check


NOBODY = 65534
SCRAPE_AS_OTHER = ("import http.client, socket, sys\n"
                   "c = http.client.HTTPConnection('localhost')\n"
                   "c.sock = socket.socket(socket.AF_UNIX); c.sock.connect(sys.argv[1])\n"
                   "c.request('GET', '/metrics')\n"
                   "r = c.getresponse(); sys.stdout.write(r.read().decode()) if r.status == 200 else sys.exit(r.status)\n")


class MetricsForOtherPeers(DaemonTestCase):
    """Per-credential counters say how often each service works and refreshes: another uid
    sees states and daemon-wide totals, as in /v1/status; admins and server.metrics_allow see
    everything. Scraped as uid 65534, the way a non-admin scraper or an attacker would."""

    scrape = Metrics.scrape
    metrics = Metrics.metrics
    promtool_check = Metrics.promtool_check

    def scrape_as_nobody(self, d) -> str:
        out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                              "/usr/bin/python3", "-c", SCRAPE_AS_OTHER, d.socket],
                             capture_output=True, text=True, timeout=30, cwd="/")
        self.assertEqual(out.returncode, 0, out)
        return out.stdout

    def test_another_uid_sees_totals_not_per_credential_counters(self):
        d = self.daemon()
        d.wait_ready()
        for _ in range(3):
            self.assertEqual(d.get("/v1/tokens/backoffice").status, 200)
        self.assertEqual(d.get("/v1/tokens/storefront-eu").status, 200)
        text = self.scrape_as_nobody(d)
        self.promtool_check(text)
        m = parse(text)
        self.assertEqual(m["cl_tokend_tokens_served_total"], 4)
        self.assertEqual(m['cl_tokend_upstream_requests_total{outcome="ok"}'], 2)
        for hidden in ("cl_tokend_tokens_served_total{", 'cl_tokend_upstream_requests_total{credential=',
                       "cl_tokend_last_refresh_age_seconds"):
            self.assertNotIn(hidden, text)
        # States stay per credential (the alerts on them work for any scraper).
        self.assertEqual(m['cl_tokend_token_valid{credential="backoffice"}'], 1)
        self.assertIn('cl_tokend_refresh_overdue{credential="storefront-eu"}', text)
        # Root (an admin) still gets every counter.
        full = self.metrics(d)
        self.assertEqual(full['cl_tokend_tokens_served_total{credential="backoffice"}'], 3)

        # Named in server.metrics_allow (a reload is enough): the whole exposition.
        d.write_config(server={"metrics_allow": [f"uid:{NOBODY}"]})
        r = d.post("/v1/reload")
        self.assertEqual(r.status, 200, r)
        m = parse(self.scrape_as_nobody(d))
        self.assertEqual(m['cl_tokend_tokens_served_total{credential="backoffice"}'], 3)
        self.assertIn('cl_tokend_last_refresh_age_seconds{credential="storefront-eu"}', m)


if __name__ == "__main__":
    unittest.main()

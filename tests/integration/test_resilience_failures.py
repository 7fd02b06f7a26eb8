#!/usr/bin/python3
"""The upstream failing in every way the fake can, end to end: what clients get,
what status, metrics and the log say, and that the daemon recovers by itself."""
# ctest-timeout: 240

import http.server
import json
import shutil
import socket
import threading
import time
import unittest

from cltoken_harness import DaemonTestCase, Daemon, FakeAuth, fake_harness, make_workdir, wait_for
from resilience import credential_status, error_of, jwt_claims, metric, timed

IT = fake_harness.INTEGRATION_CLIENT_ID

FAST_BACKOFF = {"at": 0.5, "jitter": 0.0, "min_ttl": 0, "backoff_initial_ms": 200, "backoff_max_ms": 1000}


class Storm(DaemonTestCase):
    """A 500 storm that outlasts the token: served while valid, then 503 with Retry-After,
    then back by itself when the upstream is."""
    fake_clients = fake_harness.default_clients(integration_lifetime=4, sales_channel_lifetime=3600)
    fake_rate_limit = 0

    def test_500_storm_until_expiry_then_recovery(self):
        d = self.daemon(refresh=FAST_BACKOFF, server={"request_timeout_ms": 2000})
        d.wait_ready()
        first = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.fake.control(mode="500", clients=[IT])  # until changed: the refresh at 2 s fails
        exp = jwt_claims(first)["exp"]
        c = d.client()
        seen_503 = None
        while True:
            now = time.time()
            r = c.get("/v1/tokens/backoffice")
            if r.status == 200:
                token = r.json()["access_token"]
                self.assertGreater(jwt_claims(token)["exp"], now, "an expired token was served")
                self.assertEqual(token, first, "a token appeared while the upstream was failing")
            else:
                self.assertEqual(r.status, 503, r)
                self.assertGreaterEqual(time.time(), exp - 1)  # not before the token ran out
                seen_503 = r
                break
            self.assertLess(time.time(), exp + 5, "no 503 after expiry")
            time.sleep(0.05)  # the client's own pace
        c.close()
        err = error_of(seen_503)
        self.assertEqual(err["code"], "upstream_unavailable")
        self.assertIn("auth server error (500)", err["message"])
        self.assertIn(seen_503.headers["retry-after"], ("1", "2"))  # ceil of a backoff capped at 1 s
        st = credential_status(d, "backoffice")
        self.assertIn(st["state"], ("failing", "fetching"))
        self.assertEqual(st["last_error"], "auth server error (500)")
        self.assertGreater(st["upstream_failures"], 0)
        self.assertEqual(d.get("/v1/health").status, 503)
        self.assertEqual(d.get("/v1/tokens/storefront-eu").status, 200)  # the other credential is fine
        failures = metric(d, "upstream_requests_total", credential="backoffice", outcome="server_error")
        self.assertGreaterEqual(failures, 2)
        # Retries are backed off: at most about one per 100 ms (half the first step).
        stats = self.fake.stats()
        storm = [r["t"] for r in stats["requests"] if r["mode"] == "500"]
        self.assertLessEqual(len(storm), (storm[-1] - storm[0]) / 0.1 + 1)

        self.fake.control(mode="normal")
        wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 5, "recovery once the upstream is back")
        t = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.assertEqual(self.fake.check(t)[0], 200)
        st = credential_status(d, "backoffice")
        self.assertEqual(st["state"], "fresh")
        self.assertIsNone(st["last_error"])
        self.assertIn("refresh failed", d.read_log())


class TransientModes(DaemonTestCase):
    """Each way an answer can go wrong: the reporting client hears what the upstream did,
    the credential recovers on the next try, and nothing is retried behind the budget."""
    fake_rate_limit = 0

    def test_each_transient_failure_is_named_and_recovers(self):
        d = self.daemon(refresh=FAST_BACKOFF, server={"request_timeout_ms": 3000})
        d.wait_ready()
        cases = [
            ({"mode": "500", "status": 502}, "auth server error (502)", "server_error"),
            ({"mode": "reset"}, "reset the connection", "network_error"),
            ({"mode": "garbage"}, "a body that is not JSON", "server_error"),
            ({"mode": "truncated"}, "broke off its answer", "network_error"),
        ]
        for control, message, outcome in cases:
            with self.subTest(mode=control["mode"]):
                before = metric(d, "upstream_requests_total", credential="backoffice", outcome=outcome)
                requests_before = self.token_requests(IT)
                self.fake.control(count=1, clients=[IT], **control)
                token = d.get("/v1/tokens/backoffice").json()["access_token"]
                self.reject(token)
                r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": token})
                self.assertEqual(r.status, 503, r)
                self.assertEqual(error_of(r)["code"], "upstream_unavailable")
                self.assertIn(message, error_of(r)["message"])
                self.assertIn("next attempt in", error_of(r)["message"])
                self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
                wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 5, f"recovery after {control}")
                # One failed request, one good one: the failure was not retried in secret.
                self.assertEqual(self.token_requests(IT) - requests_before, 2)
                self.assertEqual(metric(d, "upstream_requests_total", credential="backoffice", outcome=outcome), before + 1)
        log = d.read_log()
        for _, message, _ in cases:
            self.assertIn(message, log)

    def test_connection_refused_then_the_server_comes_back(self):
        # The fake makes a new signing key when it starts again, as a key rotation would: a
        # 1 s key-set interval lets the daemon fetch the new key at once.
        d = self.daemon(refresh=FAST_BACKOFF, server={"request_timeout_ms": 3000}, upstream={"jwks_min_interval_s": 1})
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        self.fake.stop()
        # Valid tokens keep being served while nothing listens upstream.
        for _ in range(3):
            r, took = timed(lambda: d.get("/v1/tokens/storefront-eu"))
            self.assertEqual(r.status, 200)
            self.assertLess(took, 0.5)
        r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": token})
        self.assertEqual(r.status, 503, r)
        self.assertIn("refused the connection", error_of(r)["message"])
        self.assertIn("refused the connection", credential_status(d, "backoffice")["last_error"])
        self.fake.start()  # same port
        wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 5, "recovery once the server listens again")


class Hanging(DaemonTestCase):
    """An upstream that takes the request and never answers."""
    fake_clients = fake_harness.default_clients(integration_lifetime=6, sales_channel_lifetime=3600)
    fake_rate_limit = 0

    def test_a_hanging_upstream_delays_nobody_with_a_valid_token(self):
        d = self.daemon(refresh=FAST_BACKOFF, upstream={"request_timeout_ms": 4000, "connect_timeout_ms": 1000},
                        server={"request_timeout_ms": 1500})
        d.wait_ready()
        self.fake.control(mode="hang")
        # The backoffice refresh (due at 3 s) goes out and hangs.
        self.fake.wait_stats(lambda s: any(r["mode"] == "hang" for r in s["requests"]), timeout=10)
        self.assertEqual(credential_status(d, "backoffice")["state"], "refreshing")
        c = d.client()
        for _ in range(10):
            r, took = timed(lambda: c.get("/v1/tokens/backoffice"))
            self.assertEqual(r.status, 200, r)
            self.assertLess(took, 0.3)
        c.close()
        # A client with nothing valid waits for the hanging fetch only up to its deadline.
        sc = d.get("/v1/tokens/storefront-eu").json()["access_token"]
        self.reject(sc)  # the hang holds token requests only
        r, took = timed(lambda: d.post("/v1/tokens/storefront-eu/invalidate", {"access_token": sc}))
        self.assertEqual(r.status, 503, r)
        self.assertGreaterEqual(took, 1.3)
        self.assertLess(took, 2.5)
        self.assertIn("has not answered within the request deadline", error_of(r)["message"])
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertLessEqual(int(r.headers["retry-after"]), 4)  # when the hanging request gives up
        # The request deadline (4 s) ends the hang; the reason is named.
        wait_for(lambda: "no answer in time" in (credential_status(d, "backoffice")["last_error"] or ""), 8,
                 "the hanging refresh to time out")
        self.fake.control(mode="normal")
        wait_for(lambda: d.get("/v1/health").status == 200, 10, "recovery after the hang")

    def test_the_tls_handshake_has_a_deadline(self):
        # A TCP server that accepts and never speaks TLS.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        held: list = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    continue

        t = threading.Thread(target=accept)
        t.start()
        try:
            port = listener.getsockname()[1]
            d = self.daemon(refresh=FAST_BACKOFF, server={"request_timeout_ms": 3000},
                            upstream={"auth_url": f"https://127.0.0.1:{port}", "connect_timeout_ms": 700,
                                      "request_timeout_ms": 5000})
            r, took = timed(lambda: d.get("/v1/tokens/backoffice"))
            self.assertEqual(r.status, 503, r)
            self.assertLess(took, 3.2)
            self.assertIn("no answer in time (TLS handshake)", error_of(r)["message"])
            self.assertIn("no answer in time (TLS handshake)", credential_status(d, "backoffice")["last_error"])
        finally:
            stop.set()
            t.join(5)
            for s in held:
                s.close()
            listener.close()


class PlainLoopbackIPv6(DaemonTestCase):
    """http:// is allowed to a loopback host; an IPv6 literal needs its brackets back in the
    Host header (RFC 7230 5.4), or a strict server answers 400."""

    def test_an_ipv6_literal_auth_url_sends_a_valid_host_header(self):
        seen: list = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append(self.headers.get("Host"))
                body = json.dumps({"access_token": "tok-ipv6-aaaaaaaaaaaa", "token_type": "bearer", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server = Server(("::1", 0), Handler)
        t = threading.Thread(target=server.serve_forever)
        t.start()
        try:
            port = server.server_address[1]
            # Not a JWT: this checks the Host header, not token verification.
            d = self.daemon(upstream={"auth_url": f"http://[::1]:{port}", "ca_file": "", "verify": "off"})
            wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 10, "a token over IPv6")
            self.assertEqual(seen[0], f"[::1]:{port}")
        finally:
            server.shutdown()
            server.server_close()
            t.join(5)


class WrongCertificate(unittest.TestCase):
    """The fake presents a certificate for wrong.example, signed by the trusted test CA."""

    def setUp(self):
        self.workdir = make_workdir()
        self.fake = FakeAuth(self.workdir, cert="wronghost").start()
        self.d = Daemon(self.workdir, self.fake, refresh=FAST_BACKOFF, server={"request_timeout_ms": 3000})

    def tearDown(self):
        self.d.stop()
        self.fake.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def test_a_wrong_host_certificate_is_refused_with_a_clear_reason(self):
        self.d.start()
        r = self.d.get("/v1/tokens/backoffice")
        self.assertEqual(r.status, 503, r)
        reason = "certificate verify failed (hostname mismatch)"
        self.assertIn(reason, error_of(r)["message"])
        st = credential_status(self.d, "backoffice")
        self.assertIn(reason, st["last_error"])
        self.assertIn("upstream.ca_file", st["last_error"])
        self.assertIn(reason, self.d.read_log())
        # TLS refused before any HTTP: the client secret never left the daemon. (The fake's
        # stats cannot be asked here: the harness checks the host name too.)
        self.assertNotIn("/oauth/token", self.fake.log_text())


class Rejected(DaemonTestCase):
    """The auth server refuses the credential itself: failing, a last_error a human can act
    on, upstream_rejected to clients, and retries only at backoff_max."""
    fake_rate_limit = 0
    fake_clients = fake_harness.default_clients() + [fake_harness.client("it-bad-scope", "integration", "s3cr3t-backoffice-value")]

    CREDENTIALS = """
[credentials.backoffice]
kind = "integration"
client_id = "{it_id}"
client_secret_file = "{secret_file}"
allow = ["*"]

[credentials.unknown]
kind = "integration"
client_id = "no-such-client"
client_secret_file = "{secret_file}"
allow = ["*"]

[credentials.mars]
kind = "integration"
client_id = "it-bad-scope"
client_secret_file = "{secret_file}"
scope = "market:code:mars"
allow = ["*"]
"""

    def test_rejected_credentials_fail_clearly_and_retry_slowly(self):
        d = self.daemon(credentials=self.CREDENTIALS,
                        refresh={"backoff_initial_ms": 200, "backoff_max_ms": 5000},
                        server={"request_timeout_ms": 2000})
        wait_for(lambda: credential_status(d, "unknown")["state"] == "failing"
                 and credential_status(d, "mars")["state"] == "failing", 10, "both bad credentials to fail")
        r = d.get("/v1/tokens/unknown")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(error_of(r)["code"], "upstream_rejected")
        self.assertIn("client_id or client_secret rejected by the auth server (401 invalid_client)", error_of(r)["message"])
        self.assertGreaterEqual(int(r.headers["retry-after"]), 3)  # the slow retry, not 1 s
        self.assertEqual(credential_status(d, "unknown")["last_error"],
                         "client_id or client_secret rejected by the auth server (401 invalid_client)")
        r = d.get("/v1/tokens/mars")
        self.assertEqual(error_of(r)["code"], "upstream_rejected")
        self.assertIn("scope rejected by the auth server (400 invalid_scope)", error_of(r)["message"])
        self.assertEqual(metric(d, "upstream_requests_total", credential="unknown", outcome="rejected"), 1)
        # Asking again does not cost upstream requests: one each so far, the next at backoff_max.
        for _ in range(5):
            self.assertEqual(d.get("/v1/tokens/unknown").status, 503)
        self.assertEqual(self.token_requests("no-such-client"), 1)
        self.assertEqual(self.token_requests("it-bad-scope"), 1)
        stats = self.fake.wait_stats(lambda s: s["token_requests"].get("no-such-client", 0) >= 2, timeout=10)
        times = [r["t"] for r in stats["requests"] if r["client_id"] == "no-such-client"]
        self.assertGreaterEqual(times[1] - times[0], 5.0)
        self.assertEqual(d.get("/v1/tokens/backoffice").status, 200)  # the good one is unaffected



class RejectedWhileValid(DaemonTestCase):
    fake_clients = fake_harness.default_clients(integration_lifetime=4)
    fake_rate_limit = 0

    def test_a_rejected_refresh_keeps_serving_the_valid_token(self):
        d = self.daemon(refresh={"at": 0.5, "jitter": 0.0, "backoff_initial_ms": 200, "backoff_max_ms": 3000})
        d.wait_ready()
        token = d.get("/v1/tokens/backoffice").json()["access_token"]
        # 401 with `errors` as a single object, as upstream sometimes sends it.
        self.fake.control(mode="errors_object", clients=[IT])
        wait_for(lambda: credential_status(d, "backoffice")["state"] == "failing", 5, "the refresh at 2 s to be refused")
        r = d.get("/v1/tokens/backoffice")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["access_token"], token)
        self.assertEqual(credential_status(d, "backoffice")["last_error"],
                         "client_id or client_secret rejected by the auth server (401 invalid_client)")
        r = wait_for(lambda: (lambda r: r if r.status == 503 else None)(d.get("/v1/tokens/backoffice")), 5,
                     "the token to run out")
        self.assertEqual(error_of(r)["code"], "upstream_rejected")
        self.fake.control(mode="normal")
        wait_for(lambda: d.get("/v1/tokens/backoffice").status == 200, 8, "the slow retry to succeed")


if __name__ == "__main__":
    unittest.main(verbosity=2)

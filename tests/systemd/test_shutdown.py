#!/usr/bin/python3
"""SIGTERM (systemctl stop): stop accepting, finish in-flight requests within 5 s, exit 0.
Idle keep-alive connections do not hold the stop up; a client that has just connected
still gets its answer; a client waiting on a dead auth server gets a 503, not silence."""
# ctest-timeout: 120

import signal
import socket
import threading
import time
import unittest

from sd_harness import DaemonTestCase, wait_for

GRACE_S = 5.0


class GracefulStop(DaemonTestCase):
    def fetch_in_background(self, d, name: str = "backoffice") -> dict:
        out: dict = {}

        def run() -> None:
            c = d.client(timeout=30)
            try:
                out["response"] = c.get(f"/v1/tokens/{name}")
            except Exception as e:  # the connection closing without an answer
                out["error"] = e
            finally:
                c.close()

        t = threading.Thread(target=run)
        t.start()
        out["thread"] = t
        return out

    def sigterm_and_wait(self, d) -> tuple[int, float]:
        start = time.monotonic()
        d.signal(signal.SIGTERM)
        code = d.proc.wait(GRACE_S + 5)
        return code, time.monotonic() - start

    def test_a_request_in_flight_is_answered_before_the_daemon_exits_0(self):
        self.fake.control(mode="slow", delay_ms=1500)
        d = self.daemon()
        pending = self.fetch_in_background(d)
        self.fake.wait_stats(lambda s: s["token_requests_total"] >= 2, timeout=10)  # both fetches under way
        code, took = self.sigterm_and_wait(d)
        pending["thread"].join(10)
        self.assertEqual(code, 0)
        self.assertNotIn("error", pending)
        r = pending["response"]
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.fake.check(r.json()["access_token"])[0], 200)
        self.assertLess(took, GRACE_S)

    def test_a_dead_auth_server_does_not_hold_the_stop_past_the_grace(self):
        self.fake.control(mode="hang")
        d = self.daemon(upstream={"request_timeout_ms": 60000}, server={"request_timeout_ms": 60000})
        pending = self.fetch_in_background(d)
        self.fake.wait_stats(lambda s: s["token_requests_total"] >= 1, timeout=10)
        code, took = self.sigterm_and_wait(d)
        pending["thread"].join(10)
        self.assertEqual(code, 0)
        self.assertLessEqual(took, GRACE_S + 1.0)  # the grace, plus a loaded machine's slack
        # In the grace's last moments the waiting client is told, not cut off.
        self.assertNotIn("error", pending)
        r = pending["response"]
        self.assertEqual((r.status, r.json()["error"]["code"]), (503, "upstream_unavailable"), r)
        self.assertIn("retry-after", r.headers)

    def test_idle_keep_alive_connections_are_closed_at_once(self):
        d = self.daemon()
        d.wait_ready()
        idle = [d.client() for _ in range(5)]
        for c in idle:
            self.assertEqual(c.get("/v1/health").status, 200)  # then left open, idle
        code, took = self.sigterm_and_wait(d)
        self.assertEqual(code, 0)
        self.assertLess(took, 2.0, "idle connections held the stop up")
        for c in idle:
            c.close()

    def test_a_client_that_just_connected_still_gets_its_answer(self):
        d = self.daemon()
        d.wait_ready()
        early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        early.settimeout(10)
        early.connect(d.socket)  # accepted, but its request is still on its way
        probe = d.client()
        wait_for(lambda: "cl_tokend_connections 2" in probe.get("/metrics").body.decode(), 10,
                 "the daemon to hold both connections")
        d.signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in d.read_log(), 10, "the daemon to begin stopping")
        early.sendall(b"GET /v1/tokens/backoffice HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = early.recv(65536)
            if not chunk:
                break
            answer += chunk
        early.close()
        probe.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:200])
        self.assertIn(b"Connection: close", answer)
        self.assertEqual(d.proc.wait(GRACE_S + 5), 0)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""store.backend = "redis": a fleet of daemons shares one token per credential through a
real redis-server (one per test, in the test's folder), survives Redis dying, and never
lets Redis hold a usable token. TLS and requirepass with Debian's redis-server 7."""
# ctest-timeout: 600

import os
import sys
import threading
import time
import unittest

from cltoken_harness import DaemonTestCase, fake_harness, wait_for
from store_harness import RedisServer, store_section

IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID
STORE_KEY = b"fleet-store-key-0123456789abcdef-xyz"


class RedisCase(DaemonTestCase):
    redis_kw: dict = {}

    def setUp(self) -> None:
        super().setUp()
        self.key_file = os.path.join(self.workdir, "store.key")
        with open(self.key_file, "wb") as f:
            f.write(STORE_KEY)
        os.chmod(self.key_file, 0o600)
        self.redis = self.make_redis()
        self.addCleanup(self.redis.stop)
        self.redis.start()

    def make_redis(self) -> RedisServer:
        return RedisServer(self.workdir, **self.redis_kw)

    def store(self, **overrides) -> str:
        values = {"backend": "redis", "url": self.redis.url, "key_file": self.key_file, "poll_ms": 50,
                  "timeout_ms": 1000, "reconnect_max_ms": 500}
        values.update(overrides)
        return store_section(**values)

    def token(self, d, name: str) -> str:
        r = d.get(f"/v1/tokens/{name}")
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def token_keys(self) -> list:
        return [k for k in self.redis.keys() if k.endswith(":token")]

    def assert_two_daemons_share(self, first: dict, second: dict | None = None) -> list:
        """Starts a daemon with store settings `first`, then one with `second`: the second
        takes the first's tokens from Redis, so the pair costs one request per credential."""
        d0 = self.daemon(extra=self.store(**first))
        d0.wait_ready()
        wait_for(lambda: len(self.token_keys()) == 2, 10, "both tokens in redis")
        d1 = self.daemon(extra=self.store(**(first if second is None else second)))
        d1.wait_ready()
        for name in ("backoffice", "storefront-eu"):
            self.assertEqual(self.token(d1, name), self.token(d0, name))
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        return [d0, d1]


class ColdFleet(RedisCase):
    def test_three_daemons_with_100_clients_each_cost_one_request_per_credential(self):
        # The fake answers slowly, so every daemon and every client arrive while the one
        # fetch per credential is in flight.
        self.fake.control(mode="slow", delay_ms=1500)
        daemons = [self.daemon(extra=self.store()) for _ in range(3)]
        results: list = []
        lock = threading.Lock()
        barrier = threading.Barrier(300)

        def one(d, i: int) -> None:
            name = "backoffice" if i % 2 == 0 else "storefront-eu"
            c = d.client(timeout=30)
            try:
                barrier.wait()
                r = c.get(f"/v1/tokens/{name}")
                with lock:
                    results.append((d.name, name, r))
            finally:
                c.close()

        threads = [threading.Thread(target=one, args=(d, i)) for d in daemons for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 300)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        tokens: dict = {}
        for daemon, name, r in results:
            self.assertEqual(r.status, 200, (daemon, r))
            tokens.setdefault(name, set()).add(r.json()["access_token"])
        self.assertEqual({k: len(v) for k, v in tokens.items()}, {"backoffice": 1, "storefront-eu": 1})
        for token_set in tokens.values():
            self.assertEqual(self.fake.check(next(iter(token_set)))[0], 200)
        took = sum("took the token another daemon obtained" in d.read_log() for d in daemons)
        self.assertGreaterEqual(took, 2)

    def test_a_restarted_daemon_loads_from_redis_and_redis_holds_nothing_usable(self):
        d0 = self.daemon(extra=self.store())
        d0.wait_ready()
        served = {n: self.token(d0, n) for n in ("backoffice", "storefront-eu")}
        wait_for(lambda: len(self.token_keys()) == 2, 10, "both tokens in redis")
        self.assertEqual(d0.stop(), 0)
        d0.start()
        d0.wait_ready()
        self.assertEqual({n: self.token(d0, n) for n in served}, served)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.assertIn("stored token loaded", d0.read_log())
        # The key set came from Redis too: tokens verify with no key-set request since the restart.
        self.assertEqual(self.fake.stats()["jwks_requests"], 1)
        for token in served.values():
            r = d0.post("/v1/verify", {"access_token": token})
            self.assertTrue(r.json()["valid"], r)
        self.assertEqual(self.fake.stats()["jwks_requests"], 1)
        self.assertIn("auth server key set loaded from the store", d0.read_log())

        # What Redis holds: sealed records, keyed by name and a keyed hash, nothing usable.
        values = self.redis.dump_values()
        self.assertGreater(len(values), 200)
        for token in served.values():
            self.assertNotIn(token.encode(), values)
            self.assertNotIn(token.split(".")[2][:16].encode(), values)
        self.assertNotIn(b"eyJ", values)
        for key in self.redis.keys():
            self.assertNotIn(IT, key)
            self.assertNotIn(SC, key)
        # Each token key expires with its token.
        for key in self.token_keys():
            ttl = int(self.redis.cli("PTTL", key))
            self.assertTrue(0 < ttl <= 14400 * 1000, (key, ttl))

    def test_a_tampered_record_in_redis_is_refused_and_replaced(self):
        d0 = self.daemon(extra=self.store())
        d0.wait_ready()
        first = self.token(d0, "backoffice")
        wait_for(lambda: len(self.token_keys()) == 2, 10, "both tokens in redis")
        self.assertEqual(d0.stop(), 0)
        key = next(k for k in self.token_keys() if "{backoffice:" in k)
        self.redis.cli("HSET", key, "blob", "CLTK\x01" + "x" * 120)
        d0.start()
        d0.wait_ready()
        # Fetched afresh (the second request); the auth server hands back the token it
        # already issued, which has far more than its reissue window left.
        self.assertEqual(self.token(d0, "backoffice"), first)
        self.assertEqual(self.token_requests(IT), 2)
        self.assertIn("credential backoffice: token in redis", d0.read_log())
        self.assertIn("refused: token record failed authentication", d0.read_log())


class Outage(RedisCase):
    """Redis dies mid-run and comes back empty: no client sees an error, each daemon
    carries on alone, and sharing resumes without an extra upstream request."""

    LIFETIME = 8  # s; refreshed at half: one refresh per credential every PERIOD
    PERIOD = LIFETIME / 2
    fake_clients = fake_harness.default_clients(integration_lifetime=LIFETIME, sales_channel_lifetime=LIFETIME)
    fake_rate_limit = 0  # three daemons alone exceed 30/min; this test is about sharing

    def window(self, requests: int, timeout: float) -> float:
        """Seconds until the fake has answered `requests` more token requests for IT."""
        start_count = self.token_requests(IT)
        start = time.monotonic()
        wait_for(lambda: self.token_requests(IT) >= start_count + requests, timeout,
                 f"{requests} more upstream requests")
        return time.monotonic() - start

    def test_redis_killed_then_restarted(self):
        refresh = {"at": 0.5, "jitter": 0.0, "min_ttl": 0, "backoff_initial_ms": 200, "backoff_max_ms": 1000}
        upstream = {"max_requests_per_minute": 1000}
        daemons = [self.daemon(extra=self.store(), refresh=refresh, upstream=upstream) for _ in range(3)]
        for d in daemons:
            d.wait_ready()

        errors: list = []
        stop = threading.Event()
        polls = [0]

        def poll(d) -> None:
            c = d.client(timeout=15)
            try:
                while not stop.is_set():
                    for name in ("backoffice", "storefront-eu"):
                        r = c.get(f"/v1/tokens/{name}")
                        polls[0] += 1
                        if r.status != 200 or r.json()["expires_in"] <= 0:
                            errors.append((d.name, name, r))
                    stop.wait(0.05)  # a client's pace, not a wait for time to pass
            finally:
                c.close()

        pollers = [threading.Thread(target=poll, args=(d,)) for d in daemons]
        for t in pollers:
            t.start()
        try:
            # Shared: three requests (one per refresh) take about three periods.
            shared = self.window(3, 60)
            self.assertGreater(shared, 2 * self.PERIOD, "three daemons sharing refresh once per period")

            self.redis.kill()
            # Alone: each daemon refreshes for itself, about three requests per period.
            alone = self.window(6, 60)
            self.assertLess(alone, 3 * self.PERIOD, "each daemon refreshing alone while Redis is down")

            self.redis.start()  # empty: persistence is off
            wait_for(lambda: len(self.token_keys()) == 2, 20, "the daemons to put their tokens back into redis")
            self.window(1, 30)  # the first refresh after the outage aligns the fleet on one token
            resumed = self.window(3, 60)
            self.assertGreater(resumed, 2 * self.PERIOD, "sharing resumed after Redis came back")
        finally:
            stop.set()
            for t in pollers:
                t.join(30)
        sys.stderr.write(f"\nupstream requests for one credential, {self.PERIOD:.0f} s refresh period, 3 daemons: "
                         f"3 took {shared:.1f} s shared, 6 took {alone:.1f} s with Redis down, "
                         f"3 took {resumed:.1f} s after it came back\n")
        self.assertEqual(errors, [])
        self.assertGreater(polls[0], 100)
        logs = "".join(d.read_log() for d in daemons)
        self.assertIn("carrying on alone and reconnecting", logs)
        self.assertIn("held tokens put back", logs)


class DownAtStart(RedisCase):
    def test_a_daemon_whose_redis_is_down_starts_alone_and_joins_later(self):
        self.redis.stop()
        d0 = self.daemon(extra=self.store())
        d0.wait_ready()
        self.token(d0, "backoffice")
        self.assertIn("carrying on alone and reconnecting", d0.read_log())
        self.redis.start()
        wait_for(lambda: len(self.token_keys()) == 2, 20, "the daemon to publish its tokens once redis is up")
        d1 = self.daemon(extra=self.store())
        d1.wait_ready()
        self.assertEqual(self.token(d1, "backoffice"), self.token(d0, "backoffice"))
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))


class Password(RedisCase):
    redis_kw = {"unix": False, "password": "correct-horse-battery-staple"}

    def test_requirepass_with_a_password_file(self):
        pw = os.path.join(self.workdir, "redis.password")
        with open(pw, "w") as f:
            f.write("correct-horse-battery-staple\n")
        os.chmod(pw, 0o600)
        url = f"redis://:correct-horse-battery-staple@127.0.0.1:{self.redis.port}/0"
        d0, d1 = self.assert_two_daemons_share({"password_file": pw}, {"url": url})
        for d in (d0, d1):
            self.assertNotIn("correct-horse-battery-staple", d.read_log())

    def test_an_acl_user_with_only_what_docs_store_md_lists(self):
        # The ACL line docs/store.md recommends; scripts' inner commands count too.
        self.redis.cli("ACL", "SETUSER", "cl-tokend", "on", ">fleet-user-password", "~cl-tokend:*",
                       "+eval", "+hget", "+hset", "+get", "+set", "+del", "+pttl", "+pexpireat", "+ping", "+select")
        url = f"redis://cl-tokend:fleet-user-password@127.0.0.1:{self.redis.port}/0"
        d0, d1 = self.assert_two_daemons_share({"url": url})
        self.assertNotIn("NOPERM", d0.read_log() + d1.read_log())

    def test_a_wrong_password_is_logged_and_the_daemon_serves_alone(self):
        pw = os.path.join(self.workdir, "wrong.password")
        with open(pw, "w") as f:
            f.write("not-the-password\n")
        os.chmod(pw, 0o600)
        d0 = self.daemon(extra=self.store(password_file=pw))
        d0.wait_ready()
        self.token(d0, "backoffice")
        log = d0.read_log()
        self.assertIn("authentication refused", log)
        self.assertNotIn("not-the-password", log)
        self.assertEqual(self.token_keys(), [])


class Tls(RedisCase):
    def make_redis(self) -> RedisServer:
        # The fake's test CA (made when it started) signs Redis' certificate too.
        return RedisServer(self.workdir, unix=False, tls_dir=self.fake.tls_dir)

    def test_rediss_with_the_test_ca(self):
        self.assert_two_daemons_share({"ca_file": self.fake.ca_file})

    def test_an_untrusted_certificate_is_refused_and_the_daemon_serves_alone(self):
        d0 = self.daemon(extra=self.store())  # the system trust store does not know the test CA
        d0.wait_ready()
        self.token(d0, "backoffice")
        self.assertIn("TLS handshake failed", d0.read_log())
        self.assertIn("certificate verify failed", d0.read_log())
        self.assertEqual(self.token_keys(), [])


class KeySetInRedis(RedisCase):
    def test_a_fleet_shares_the_key_set_and_refuses_one_a_writer_replaced(self):
        d0 = self.daemon(extra=self.store())
        d0.wait_ready()
        served = {n: self.token(d0, n) for n in ("backoffice", "storefront-eu")}
        keys = wait_for(lambda: [k for k in self.redis.keys() if ":keyset:" in k], 10, "the key set in redis")
        self.assertEqual(len(keys), 1)
        self.assertTrue(keys[0].startswith("cl-tokend:keyset:"))
        self.assertEqual(self.fake.stats()["jwks_requests"], 1)

        # A second daemon of the fleet verifies with the set the first one fetched.
        d1 = self.daemon(extra=self.store())
        d1.wait_ready()
        for token in served.values():
            self.assertTrue(d1.post("/v1/verify", {"access_token": token}).json()["valid"])
        self.assertEqual(self.fake.stats()["jwks_requests"], 1)

        # A Redis client without the store key writes its own "key set": refused, fetched again.
        self.redis.cli("SET", keys[0], "CLKS\x01 a key set chosen by whoever can write to redis")
        self.assertEqual(d1.stop(), 0)
        d1.start()
        d1.wait_ready()
        for token in served.values():
            self.assertTrue(d1.post("/v1/verify", {"access_token": token}).json()["valid"])
        self.assertEqual(self.fake.stats()["jwks_requests"], 2)
        self.assertIn("key set in redis", d1.read_log())
        self.assertIn("refused: key set record", d1.read_log())
        # ...and the fetched set replaced it.
        wait_for(lambda: self.redis.cli("GET", keys[0]).startswith("CLKS\x01") and
                 "chosen" not in self.redis.cli("GET", keys[0]), 10, "a sealed key set back in redis")


if __name__ == "__main__":
    unittest.main()

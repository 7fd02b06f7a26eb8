#!/usr/bin/python3
"""store.backend = "file": restarts cost no upstream request (neither a token nor a key-set
request), the state file is sealed as docs/store.md says, and a tampered, foreign or stale
file or key set is refused, logged and replaced."""
# ctest-timeout: 300

import base64
import json
import os
import stat
import time
import unittest

from cltoken_harness import DEFAULT_CREDENTIALS, DaemonTestCase, fake_harness, wait_for
from store_harness import (identity_fingerprint, key_set_identity, seal_key_set, store_section, unseal,
                           unseal_key_set)

IT = fake_harness.INTEGRATION_CLIENT_ID
SC = fake_harness.SALES_CHANNEL_CLIENT_ID
STORE_KEY = b"store-key-for-tests-0123456789abcdef"


class FileStoreCase(DaemonTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.state = os.path.join(self.workdir, "state", "cl-tokend.state")
        os.makedirs(os.path.dirname(self.state), mode=0o700)
        self.key_file = os.path.join(self.workdir, "store.key")
        with open(self.key_file, "wb") as f:
            f.write(STORE_KEY + b"\n")
        os.chmod(self.key_file, 0o600)
        self.store = store_section(backend="file", path=self.state, key_file=self.key_file)

    def started(self, **kw):
        d = self.daemon(extra=self.store, **kw)
        d.wait_ready()
        return d

    def tokens(self, d) -> dict:
        out = {}
        for name in ("backoffice", "storefront-eu"):
            r = d.get(f"/v1/tokens/{name}")
            self.assertEqual(r.status, 200, r)
            out[name] = r.json()["access_token"]
        return out

    def restart(self, d):
        self.assertEqual(d.stop(), 0)
        d.start()
        d.wait_ready()
        return d

    def status_requests(self, d) -> dict:
        return {c["name"]: c["upstream_requests"] for c in d.get("/v1/status").json()["credentials"]}

    def wait_saved(self) -> None:
        wait_for(lambda: os.path.exists(self.state) and len(self.read_state()["records"]) == 2, 10,
                 "both tokens in the state file")

    def read_state(self) -> dict:
        with open(self.state) as f:
            return json.load(f)

    def write_state(self, doc: dict) -> None:
        with open(self.state, "w") as f:
            json.dump(doc, f)


class Restart(FileStoreCase):
    def test_a_restart_while_tokens_are_valid_costs_no_upstream_request(self):
        d = self.started()
        before = self.tokens(d)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.wait_saved()

        self.restart(d)
        # Ready with the loaded tokens, and the scheduler's first pass started no fetch.
        self.assertEqual(self.status_requests(d), {"backoffice": 0, "storefront-eu": 0})
        self.assertEqual(self.tokens(d), before)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.assertIn("backoffice: stored token loaded", d.read_log())
        for token in before.values():
            status, body = self.fake.check(token)
            self.assertEqual(status, 200, body)

    def test_the_state_file_is_private_and_sealed_as_documented(self):
        d = self.started()
        served = self.tokens(d)
        self.wait_saved()
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o600)
        with open(self.state, "rb") as f:
            raw = f.read()
        for token in served.values():
            self.assertNotIn(token.encode(), raw)
            self.assertNotIn(token[-20:].encode(), raw)
        self.assertNotIn(IT.encode(), raw)  # the identity is a keyed hash, not the client_id
        # No temporary file left behind by the atomic replacement; beside the state file, the
        # customer sessions' journal, private too.
        folder = os.path.dirname(self.state)
        self.assertEqual(sorted(os.listdir(folder)), ["cl-tokend.state", "sessions"])
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(folder, "sessions")).st_mode), 0o600)

        doc = self.read_state()
        self.assertEqual((doc["format"], doc["version"]), ("cl-tokend state", 1))
        records = {r["credential"]: r for r in doc["records"]}
        materials = {"backoffice": fake_harness.INTEGRATION_CLIENT_SECRET.encode(), "storefront-eu": STORE_KEY}
        identities = {
            "backoffice": identity_fingerprint(materials["backoffice"], "integration", IT,
                                               fake_harness.INTEGRATION_SCOPE, self.fake.url),
            "storefront-eu": identity_fingerprint(STORE_KEY, "sales_channel", SC,
                                                  fake_harness.SALES_CHANNEL_SCOPE, self.fake.url),
        }
        for name, r in records.items():
            with self.subTest(credential=name):
                self.assertEqual(r["identity"], identities[name])
                record = unseal(base64.b64decode(r["sealed"]), materials[name], name, r["identity"])
                self.assertEqual(record["access_token"], served[name])
                self.assertEqual(record["credential"], name)
                self.assertEqual(record["expires_at_ms"], r["expires_at_ms"])
                claims = json.loads(base64.urlsafe_b64decode(served[name].split(".")[1] + "=="))
                # Expiry is counted from when the request was sent: at most a few seconds early.
                self.assertLessEqual(abs(record["expires_at_ms"] / 1000 - claims["exp"]), 5)


class Refused(FileStoreCase):
    def test_a_tampered_record_is_refused_logged_and_replaced(self):
        d = self.started()
        first = self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        doc = self.read_state()
        for r in doc["records"]:
            if r["credential"] == "backoffice":
                blob = bytearray(base64.b64decode(r["sealed"]))
                blob[60] ^= 0x01
                r["sealed"] = base64.b64encode(bytes(blob)).decode()
        self.write_state(doc)

        d.start()
        d.wait_ready()
        second = self.tokens(d)
        # Fetched afresh (the request counted below); the auth server hands back the token it
        # already issued, which has far more than its reissue window left.
        self.assertEqual(second["backoffice"], first["backoffice"])
        self.assertEqual(second["storefront-eu"], first["storefront-eu"])  # the intact record loads
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 1))
        log = d.read_log()
        self.assertIn("credential backoffice: stored token in", log)
        self.assertIn("refused: token record failed authentication", log)
        # The next save replaced the bad record with one that opens.
        wait_for(lambda: any(r["credential"] == "backoffice" and
                             unseal(base64.b64decode(r["sealed"]), fake_harness.INTEGRATION_CLIENT_SECRET.encode(),
                                    "backoffice", r["identity"])["access_token"] == second["backoffice"]
                             for r in self.read_state()["records"]), 10, "the new token in the state file")

    def test_a_file_that_is_not_a_state_file_is_ignored(self):
        with open(self.state, "wb") as f:
            f.write(b"\x00\x01 this is not the state file you are looking for")
        os.chmod(self.state, 0o600)
        d = self.started()
        self.tokens(d)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (1, 1))
        self.assertIn(f"state file {self.state} refused, starting without stored tokens", d.read_log())
        wait_for(lambda: len(self.read_state()["records"]) == 2, 10, "a valid state file")

    def test_a_record_moved_to_another_credential_does_not_open(self):
        d = self.started()
        self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        doc = self.read_state()
        records = {r["credential"]: r for r in doc["records"]}
        # The sales channel's sealed record, relabelled as the integration's: the label
        # and identity say backoffice, the associated data inside does not.
        records["backoffice"]["sealed"] = records["storefront-eu"]["sealed"]
        self.write_state(doc)
        d.start()
        d.wait_ready()
        self.tokens(d)
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 1))
        self.assertIn("refused: token record failed authentication", d.read_log())

    def test_a_changed_identity_never_loads_the_old_token(self):
        d = self.started()
        first = self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        d.write_config(extra=self.store, credentials=DEFAULT_CREDENTIALS.replace(
            'scope = "{it_scope}"', 'scope = "market:code:europe"'))
        d.start()
        d.wait_ready()
        second = self.tokens(d)
        self.assertNotEqual(second["backoffice"], first["backoffice"])
        self.assertEqual(second["storefront-eu"], first["storefront-eu"])
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 1))
        self.assertIn("credential backoffice: the stored token was obtained for another identity", d.read_log())

    def test_a_revoked_token_does_not_come_back_after_a_restart(self):
        d = self.started()
        first = self.tokens(d)
        r = d.post("/v1/tokens/backoffice/revoke")
        self.assertEqual(r.status, 200, r)
        wait_for(lambda: [x["credential"] for x in self.read_state()["records"]] == ["storefront-eu"], 10,
                 "the revoked token gone from the state file")
        self.restart(d)
        second = self.tokens(d)
        self.assertNotEqual(second["backoffice"], first["backoffice"])
        self.assertEqual(self.fake.check(first["backoffice"])[0], 401)
        self.assertEqual(self.fake.check(second["backoffice"])[0], 200)

    def test_an_invalidated_token_is_gone_from_the_state_file_at_once(self):
        d = self.started()
        first = self.tokens(d)
        self.wait_saved()
        # The auth server fails from here on: no new token will replace the reported one.
        self.fake.control(mode="500", clients=[IT])
        r = d.post("/v1/tokens/backoffice/invalidate", {"access_token": first["backoffice"]})
        self.assertNotEqual(r.status, 200, r)
        wait_for(lambda: [x["credential"] for x in self.read_state()["records"]] == ["storefront-eu"], 10,
                 "the invalidated token gone from the state file")
        # After a restart, still failing upstream: the reported token is not served again.
        self.assertEqual(d.stop(), 0)
        d.start()  # accepting; not ready, since backoffice cannot get a token
        r = d.get("/v1/tokens/backoffice")
        self.assertEqual(r.status, 503, r)
        self.assertNotIn(first["backoffice"].encode(), r.body)

    def test_a_state_file_others_could_replace_is_neither_read_nor_written(self):
        d = self.started()
        self.tokens(d)
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        folder = os.path.dirname(self.state)
        # A folder another user can write: they could roll the file back to a revoked token.
        os.chmod(folder, 0o777)
        d.start()
        d.wait_ready()
        self.tokens(d)
        self.assertIn(f"state file folder {folder} can be written by group or others (mode 0777)", d.read_log())
        self.assertEqual((self.token_requests(IT), self.token_requests(SC)), (2, 2))  # nothing loaded
        self.assertEqual(d.stop(), 0)
        os.chmod(folder, 0o700)
        # A symbolic link in the file's place is refused, not followed.
        moved = self.state + ".real"
        os.rename(self.state, moved)
        os.symlink(moved, self.state)
        d.start()
        d.wait_ready()
        self.tokens(d)
        self.assertIn(f"state file {self.state} is a symbolic link", d.read_log())
        self.assertTrue(os.path.islink(self.state))


class RolledBack(FileStoreCase):
    """An older copy of the state file put back (a backup restore, a snapshot, someone with
    the daemon's uid) must not bring back a token that was revoked or reported since."""

    def setUp(self) -> None:
        super().setUp()
        self.run_dir = os.path.join(self.workdir, "run")
        os.makedirs(self.run_dir, mode=0o700)
        self.anchor = os.path.join(self.run_dir, "state.generation")

    def roll_back_after_revoke(self, store: str):
        d = self.daemon(extra=store)
        d.wait_ready()
        first = self.tokens(d)
        self.wait_saved()
        with open(self.state, "rb") as f:
            old_copy = f.read()
        self.assertEqual(d.post("/v1/tokens/backoffice/revoke").status, 200)
        second = self.tokens(d)
        self.assertNotEqual(second["backoffice"], first["backoffice"])
        def saved_again() -> bool:
            with open(self.state, "rb") as f:
                return f.read() != old_copy and len(self.read_state()["records"]) == 2
        wait_for(saved_again, 10, "the new token saved")
        self.assertEqual(d.stop(), 0)
        with open(self.state, "wb") as f:
            f.write(old_copy)
        # The auth server fails from here on: the revoked token is the only one to be had.
        self.fake.control(mode="500", clients=[IT])
        d.start()
        return d, first

    def test_a_state_file_put_back_from_before_a_revoke_is_refused(self):
        store = store_section(backend="file", path=self.state, key_file=self.key_file, generation_path=self.anchor)
        d, first = self.roll_back_after_revoke(store)
        r = d.get("/v1/tokens/backoffice")
        self.assertEqual(r.status, 503, r)
        self.assertNotIn(first["backoffice"].encode(), r.body)
        self.assertIn("credential backoffice: stored token in", d.read_log())
        self.assertIn("the state file was put back from an older copy", d.read_log())
        # The other credential's record was not changed since the copy: it still loads.
        self.assertEqual(d.get("/v1/tokens/storefront-eu").json()["access_token"], first["storefront-eu"])
        with open(self.anchor) as f:
            anchored = json.load(f)["generations"]
        self.assertEqual(anchored["backoffice"], 3)  # saved 1, removed 2, saved 3
        self.assertEqual(stat.S_IMODE(os.stat(self.anchor).st_mode), 0o600)

    def test_without_an_anchor_the_old_copy_is_taken(self):
        """The same rollback with no store.generation_path: what the anchor protects against."""
        d, first = self.roll_back_after_revoke(self.store)
        r = d.get("/v1/tokens/backoffice")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["access_token"], first["backoffice"])
        self.assertIn("store.generation_path is not set", d.read_log())


class KeySet(FileStoreCase):
    """The auth server's key set kept in the state file: a restart verifies without asking."""

    def wait_key_set(self) -> dict:
        return wait_for(lambda: os.path.exists(self.state) and (self.read_state().get("key_sets") or [None])[0], 10,
                        "the key set in the state file")

    def verified(self, d, tokens: dict) -> None:
        for name, token in tokens.items():
            r = d.post("/v1/verify", {"access_token": token})
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.json()["valid"], f"{name}: {r.json()}")

    def test_a_restart_with_a_warm_store_fetches_no_key_set_and_still_verifies(self):
        d = self.started()
        served = self.tokens(d)
        self.assertEqual(self.fake.stats()["jwks_requests"], 1)
        entry = self.wait_key_set()
        self.wait_saved()

        # The record is what docs/store.md describes, read by an independent implementation.
        material = STORE_KEY  # the store key, when there is one
        self.assertEqual(entry["identity"], key_set_identity(material, self.fake.url, self.fake.url))
        record = unseal_key_set(base64.b64decode(entry["sealed"]), material, entry["identity"])
        self.assertEqual((record["auth_url"], record["issuer"]), (self.fake.url, self.fake.url))
        self.assertEqual(record["fetched_at_ms"], entry["fetched_at_ms"])
        published = {k["kid"] for k in self.fake._json("GET", "/.well-known/jwks.json")[1]["keys"]}
        self.assertEqual({k["kid"] for k in json.loads(record["jwks"])["keys"]}, published)
        before = self.fake.stats()["jwks_requests"]  # the daemon's one, and this test's own

        self.restart(d)
        self.verified(d, served)
        self.assertEqual(self.fake.stats()["jwks_requests"], before)  # none since the restart
        self.assertEqual(self.status_requests(d), {"backoffice": 0, "storefront-eu": 0})
        self.assertIn("auth server key set loaded from the store: 1 key(s)", d.read_log())

    def test_an_altered_key_set_is_refused_and_fetched_again(self):
        d = self.started()
        served = self.tokens(d)
        self.wait_key_set()
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        doc = self.read_state()
        blob = bytearray(base64.b64decode(doc["key_sets"][0]["sealed"]))
        blob[-20] ^= 0x01
        doc["key_sets"][0]["sealed"] = base64.b64encode(bytes(blob)).decode()
        self.write_state(doc)

        d.start()
        d.wait_ready()
        self.verified(d, served)
        self.assertEqual(self.fake.stats()["jwks_requests"], 2)
        self.assertIn("refused: key set record failed authentication", d.read_log())
        # The fetched set replaced the altered one.
        wait_for(lambda: unseal_key_set(base64.b64decode(self.read_state()["key_sets"][0]["sealed"]), STORE_KEY,
                                        self.read_state()["key_sets"][0]["identity"]), 10, "a key set that opens")

    def test_a_planted_key_does_not_make_a_forged_token_verify(self):
        """Someone who can write the file but holds no secret plants their own key: the record
        does not open, the real set is fetched, and their token is refused."""
        from cryptography.hazmat.primitives.asymmetric import rsa
        d = self.started()
        self.tokens(d)
        self.wait_key_set()
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        nums = key.public_key().public_numbers()

        def b64n(n: int) -> str:
            return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
        jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "planted", "alg": "RS512", "use": "sig",
                                     "n": b64n(nums.n), "e": b64n(nums.e)}]})
        doc = self.read_state()
        identity = doc["key_sets"][0]["identity"]
        record = {"auth_url": self.fake.url, "issuer": self.fake.url, "fetched_at_ms": int(time.time() * 1000),
                  "jwks": jwks}
        doc["key_sets"][0]["sealed"] = base64.b64encode(seal_key_set(record, b"not-the-store-key", identity)).decode()
        self.write_state(doc)

        d.start()
        d.wait_ready()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        header = b64(json.dumps({"alg": "RS512", "typ": "JWT", "kid": "planted"}).encode())
        payload = b64(json.dumps({"iss": self.fake.url, "exp": int(time.time()) + 3600}).encode())
        sig = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA512())
        r = d.post("/v1/verify", {"access_token": f"{header}.{payload}.{b64(sig)}"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["valid"], r.json()["reason"]), (False, "unknown_kid"))
        self.assertIn("refused: key set record failed authentication", d.read_log())

    def test_a_stale_key_set_is_not_used(self):
        d = self.started()
        served = self.tokens(d)
        entry = self.wait_key_set()
        self.wait_saved()
        self.assertEqual(d.stop(), 0)
        # Re-sealed with the store key (as the daemon would have) but fetched two days ago.
        record = unseal_key_set(base64.b64decode(entry["sealed"]), STORE_KEY, entry["identity"])
        record["fetched_at_ms"] -= 2 * 86400 * 1000
        doc = self.read_state()
        doc["key_sets"][0]["sealed"] = base64.b64encode(seal_key_set(record, STORE_KEY, entry["identity"])).decode()
        self.write_state(doc)

        d.start()
        d.wait_ready()
        self.verified(d, served)
        self.assertEqual(self.fake.stats()["jwks_requests"], 2)
        self.assertIn("stored key set not used: it was fetched 1728", d.read_log())


if __name__ == "__main__":
    unittest.main()

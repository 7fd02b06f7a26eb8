#!/usr/bin/python3
# ctest-timeout: 600
"""The official @commercelayer/js-auth, unchanged, with the cl-tokend storage
(clients/js-auth-storage): 20 service processes started at once share one token per
credential, and one upstream request replaces a token they all report rejected.

npm installs the newest 8.x and 7.x of @commercelayer/js-auth at test time, and the
storage from the tarball `npm pack` makes of clients/js-auth-storage. The test is skipped,
with the reason printed, only when npm cannot reach its registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
from cltoken_harness import SOURCE_DIR, Daemon, FakeAuth, fake_harness, make_workdir, revoke_at_the_auth_server  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER_DIR = os.path.join(SOURCE_DIR, "clients", "js-auth-storage")
BUILD_DIR = os.environ.get("CLTOKEN_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
NODE_DIR = os.path.join(BUILD_DIR, "js-auth-storage-test")
LIBRARIES = {"8": "js-auth-8", "7": "js-auth-7"}
PROCESSES = 20
DOC_SOCKET = "/run/cl-tokend/cl-tokend.sock"
NPM_TIMEOUT_S = 300
WORKER_TIMEOUT_S = 120
# npm's words for "the registry cannot be reached" (not for a package that is missing).
OFFLINE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH",
           "EHOSTUNREACH", "network request", "request to https://registry")


def offline_reason(stderr: str) -> str | None:
    """npm's line saying the registry is out of reach, or None for any other failure."""
    for line in stderr.splitlines():
        if any(word in line for word in OFFLINE):
            return "npm cannot reach its registry: " + line.strip()
    return None


def npm(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args, "--no-audit", "--no-fund"], cwd=cwd, capture_output=True,
                          text=True, timeout=NPM_TIMEOUT_S, stdin=subprocess.DEVNULL)


def install() -> dict[str, str]:
    """Installs the storage's tarball and the newest js-auth 8.x and 7.x into NODE_DIR;
    answers {major: version}. Raises SkipTest when the registry is out of reach."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise AssertionError("node and npm are required (scripts/deps.sh installs Node.js)")
    # A short probe first: npm's own retries would take minutes to say the registry is gone.
    probe = subprocess.run(["npm", "view", "@commercelayer/js-auth@8", "version", "--fetch-retries=1",
                            "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=3000",
                            "--fetch-timeout=20000"], capture_output=True,
                           text=True, timeout=NPM_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        if reason := offline_reason(probe.stderr):
            raise unittest.SkipTest(reason)
        raise AssertionError(f"npm view failed:\n{probe.stderr}")
    shutil.rmtree(NODE_DIR, ignore_errors=True)
    os.makedirs(NODE_DIR)
    packed = npm("pack", "--json", "--pack-destination", NODE_DIR, cwd=ADAPTER_DIR)
    if packed.returncode != 0:
        raise AssertionError(f"npm pack failed:\n{packed.stderr}")
    tarball = os.path.join(NODE_DIR, json.loads(packed.stdout)[0]["filename"])
    with open(os.path.join(NODE_DIR, "package.json"), "w") as f:
        json.dump({"name": "js-auth-storage-test", "private": True, "type": "module"}, f)
    for name in ("worker.mjs", "edges.mjs", "loopback.mjs"):
        shutil.copyfile(os.path.join(HERE, "js_auth_storage", name), os.path.join(NODE_DIR, name))
    # undici: the dispatcher that sends *.localhost to the fake (the version Node 20 bundles).
    # The README example imports @commercelayer/js-auth by its own name: the newest 8.x too.
    added = npm("install", tarball, "undici@6.24.1", "@commercelayer/js-auth@^8",
                "js-auth-8@npm:@commercelayer/js-auth@^8",
                "js-auth-7@npm:@commercelayer/js-auth@^7", cwd=NODE_DIR)
    if added.returncode != 0:
        if reason := offline_reason(added.stderr):
            raise unittest.SkipTest(reason)
        raise AssertionError(f"npm install failed:\n{added.stderr}")
    versions = {}
    for major, alias in LIBRARIES.items():
        with open(os.path.join(NODE_DIR, "node_modules", alias, "package.json")) as f:
            versions[major] = json.load(f)["version"]
    return versions


class Workers:
    """PROCESSES worker.mjs processes started at once, read line by line with a deadline."""

    def __init__(self, env: dict[str, str], params: dict, n: int = PROCESSES, script: str = "worker.mjs"):
        self.procs = []
        for _ in range(n):
            self.procs.append(subprocess.Popen(
                ["node", os.path.join(NODE_DIR, script)], cwd=NODE_DIR,
                env=dict(env, WORKER=json.dumps(params)), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    def results(self) -> list[dict]:
        """The next RESULT line of every process."""
        out: list[dict | None] = [None] * len(self.procs)

        def read(i: int) -> None:
            for line in self.procs[i].stdout:
                if line.startswith("RESULT "):
                    out[i] = json.loads(line[len("RESULT "):])
                    return

        threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(self.procs))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for i, r in enumerate(out):
            if r is None:
                self.stop()
                raise AssertionError(f"worker {i} gave no result:\n{self.procs[i].stderr.read()[-3000:]}")
        return out  # type: ignore[return-value]

    def go(self) -> None:
        for p in self.procs:
            p.stdin.write("go\n")
            p.stdin.flush()

    def finish(self) -> list[str]:
        """Waits for every process to exit; answers their stderr."""
        errs = []
        for p in self.procs:
            p.stdin.close()
            p.wait(WORKER_TIMEOUT_S)
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
            if p.returncode != 0:
                raise AssertionError(f"worker exited with {p.returncode}:\n{err[-3000:]}")
            errs.append(err)
        return errs

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for stream in (p.stdin, p.stdout, p.stderr):
                if not stream.closed:
                    stream.close()


def fingerprint(value) -> str:
    """What a failure may show of tokens: never a whole one (test output is kept as a log)."""
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(fingerprint(v) for v in value) + ")"
    text = str(value)
    return text if len(text) <= 12 else f"{text[:4]}...{text[-4:]}"


class JsAuthStorage(unittest.TestCase):
    versions: dict[str, str] = {}

    def assert_same(self, a, b, what: str) -> None:
        if a != b:
            self.fail(f"{what}: {fingerprint(a)} != {fingerprint(b)}")

    @classmethod
    def setUpClass(cls) -> None:
        cls.versions = install()
        print("@commercelayer/js-auth versions: " +
              ", ".join(f"{m}.x -> {v}" for m, v in sorted(cls.versions.items(), reverse=True)), flush=True)

    def setUp(self) -> None:
        self.workdir = make_workdir()
        # js-auth calls https://auth.{domain}: the fake names itself auth.localhost.
        self.fake = FakeAuth(self.workdir, rate_limit_per_minute=1000, issuer="https://auth.localhost:{port}")
        self.fake.start()
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.addCleanup(self.fake.stop)
        # The issuer js-auth needs is not auth_url's host: tell the daemon which to expect.
        self.d = Daemon(self.workdir, self.fake, upstream={"issuer": f"https://auth.localhost:{self.fake.port}"})
        self.d.start()
        self.addCleanup(self.d.stop)
        self.d.wait_ready()
        self.env = dict(os.environ, NODE_EXTRA_CA_CERTS=self.fake.ca_file)
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NODE_TLS_REJECT_UNAUTHORIZED"):
            self.env.pop(var, None)

    def params(self, major: str, mode: str, reject: bool = False) -> dict:
        return {"lib": LIBRARIES[major], "mode": mode, "reject": reject, "socket": self.d.socket,
                "port": self.fake.port,
                "integration": {"clientId": fake_harness.INTEGRATION_CLIENT_ID,
                                "clientSecret": fake_harness.INTEGRATION_CLIENT_SECRET},
                "salesChannel": {"clientId": fake_harness.SALES_CHANNEL_CLIENT_ID,
                                 "scope": fake_harness.SALES_CHANNEL_SCOPE}}

    def counts(self) -> tuple[int, int]:
        s = self.fake.stats()["token_requests"]
        return (s.get(fake_harness.INTEGRATION_CLIENT_ID, 0), s.get(fake_harness.SALES_CHANNEL_CLIENT_ID, 0))

    def daemon_tokens(self) -> tuple[str, str]:
        return (self.d.get("/v1/tokens/backoffice").json()["access_token"],
                self.d.get("/v1/tokens/storefront-eu").json()["access_token"])

    def shared_token_run(self, major: str, mode: str) -> None:
        """20 processes get the daemon's tokens without an upstream request; a token the
        API rejects, reported by all of them, costs one upstream request per credential and
        gives them all the same new token."""
        before = self.counts()
        workers = Workers(self.env, self.params(major, mode, reject=True))
        try:
            first = workers.results()
            self.assertEqual(self.counts(), before, "no process may call the auth server itself")
            old = self.daemon_tokens()
            for r in first:
                self.assert_same((r["integration"], r["salesChannel"]), old, "a process's tokens, the daemon's")
                self.assertEqual(r["ownerType"], "guest")
                self.assertGreaterEqual(r["expiresIn"], 600)
            # What makes the Core API refuse a live token: it was revoked. The auth server
            # never hands a revoked token back, so the report gets a new one.
            for token in old:
                revoke_at_the_auth_server(self.fake, token)
            self.assertEqual((self.fake.check(old[0])[0], self.fake.check(old[1])[0]), (401, 401))
            workers.go()
            second = workers.results()
            workers.finish()
        finally:
            workers.stop()
        new = self.daemon_tokens()
        self.assertTrue(new[0] != old[0] and new[1] != old[1], "the daemon replaced both rejected tokens")
        for r in second:
            self.assert_same((r["integration"], r["salesChannel"]), new, "a process's new tokens, the daemon's")
        self.assertEqual(self.counts(), (before[0] + 1, before[1] + 1),
                         f"{PROCESSES} processes reporting one token must cost one request per credential")
        print(f"js-auth {self.versions[major]}, {mode}: {PROCESSES} processes, upstream token requests "
              f"{before[0] + before[1]} -> {sum(self.counts())} (one per credential for the rejection)", flush=True)

    def per_process_run(self, major: str) -> None:
        """The same processes without the storage: each fetches its own tokens."""
        before = self.counts()
        workers = Workers(self.env, self.params(major, "memory"))
        try:
            workers.results()
            workers.finish()
        finally:
            workers.stop()
        after = self.counts()
        self.assertEqual((after[0] - before[0], after[1] - before[1]), (PROCESSES, PROCESSES))
        print(f"js-auth {self.versions[major]}, memory storage: {PROCESSES} processes, upstream token "
              f"requests +{after[0] - before[0]} integration, +{after[1] - before[1]} sales channel", flush=True)

    def run_version(self, major: str) -> None:
        # The daemon fetched one token per credential at start; nothing else has asked yet.
        self.assertEqual(self.counts(), (1, 1))
        self.shared_token_run(major, "adapter")
        self.shared_token_run(major, "composite")
        self.per_process_run(major)

    def edge_run(self, major: str) -> None:
        """One process where the daemon does not hold the token."""
        other_id, other_secret = "it-not-in-the-daemon", "it-not-in-the-daemon-secret"
        self.fake.add_client(other_id, kind="integration", client_secret=other_secret)
        status, customer = self.fake.token(grant_type="password", client_id=fake_harness.SALES_CHANNEL_CLIENT_ID,
                                           scope=fake_harness.SALES_CHANNEL_SCOPE,
                                           username=fake_harness.CUSTOMER_USERNAME,
                                           password=fake_harness.CUSTOMER_PASSWORD)
        self.assertEqual(status, 200, customer)
        stats = self.fake.stats()["token_requests"]
        params = dict(self.params(major, "adapter"), other={"clientId": other_id, "clientSecret": other_secret},
                      customerToken=customer["access_token"])
        workers = Workers(self.env, params, n=1, script="edges.mjs")
        try:
            (r,) = workers.results()
            workers.finish()
        finally:
            workers.stop()
        after = self.fake.stats()["token_requests"]
        it_id = fake_harness.INTEGRATION_CLIENT_ID
        # A key no credential matches: js-auth's own request, once, kept; one warning.
        self.assertEqual(after.get(other_id, 0) - stats.get(other_id, 0), 1)
        self.assertTrue(r["unknown"]["same"])
        self.assertEqual(len(r["unknown"]["warnings"]), 1, r["unknown"]["warnings"])
        self.assertIn(f"cl_guest-{other_id}-market:all", r["unknown"]["warnings"][0])
        # No daemon: js-auth's own request, once; one warning, no hang.
        self.assertEqual(after.get(it_id, 0) - stats.get(it_id, 0), 1)
        self.assertTrue(r["down"]["same"])
        self.assertEqual(self.fake.check(r["down"]["token"])[0], 200)
        self.assertEqual(len(r["down"]["warnings"]), 1, r["down"]["warnings"])
        self.assertIn("ENOENT", r["down"]["warnings"][0])
        # The storage alone for a sales channel: guest from the daemon, customers refused.
        self.assert_same(r["customer"]["guest"], self.daemon_tokens()[1], "the guest token, the daemon's")
        self.assertEqual(r["customer"]["refused"]["code"], "ECUSTOMER", r["customer"])
        self.assert_same(r["customer"]["after"], self.daemon_tokens()[1], "the guest token after, the daemon's")
        self.assertEqual(r["customer"]["ownerType"], "guest")
        print(f"js-auth {self.versions[major]}, storage alone: getAuthorization() takes "
              f"{r['timing']['microsecondsEach']:.0f} us ({r['timing']['calls']} calls, one process)", flush=True)
        for warning in r["unknown"]["warnings"] + r["down"]["warnings"] + [r["customer"]["refused"]["message"]]:
            self.assertNotIn(other_secret, warning)
            self.assertNotIn(customer["access_token"], warning)

    def test_js_auth_8(self) -> None:
        self.run_version("8")
        self.edge_run("8")

    def test_js_auth_7(self) -> None:
        self.run_version("7")
        self.edge_run("7")

    def test_a_socket_the_process_may_not_open_is_an_error(self) -> None:
        """Permission denied is a deployment error (the service's user is not in the socket's
        group): thrown, not hidden behind js-auth's own requests. Run as nobody, since root
        opens any socket."""
        locked = os.path.join(self.workdir, "locked")
        os.mkdir(locked, 0o700)
        path = os.path.join(locked, "s.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(path)
        listener.listen()
        script = ("import { createClTokendStorage } from 'cl-tokend-js-auth-storage'\n"
                  "const storage = createClTokendStorage({ socketPath: process.argv[1], logger: null })\n"
                  "try { await storage.getItem('cl_guest-it-market:all'); console.log('RESULT null') }\n"
                  "catch (e) { console.log('RESULT ' + JSON.stringify({ name: e.name, code: e.code, message: e.message })) }\n"
                  "await storage.dispose()\n")
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "node", "--input-type=module", "-e", script, path],
                           cwd=NODE_DIR, env=self.env, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        result = json.loads(r.stdout.split("RESULT ", 1)[1])
        self.assertEqual((result["name"], result["code"]), ("ClTokendError", "EACCES"), result)
        self.assertIn("permission denied", result["message"])

    def test_the_storage_readme_example_runs_as_shown(self) -> None:
        """clients/js-auth-storage/README.md's example, installed from the npm pack tarball,
        with the daemon's socket and the credential's id and secret in the environment."""
        with open(os.path.join(ADAPTER_DIR, "README.md")) as f:
            (code,) = re.findall(r"<!-- readme-test: js-auth-storage -->\n```js\n(.*?)```", f.read(), re.S)
        self.assertIn(DOC_SOCKET, code)
        before = self.counts()
        example = os.path.join(NODE_DIR, "readme-example.mjs")
        with open(example, "w") as f:
            f.write(code.replace(DOC_SOCKET, self.d.socket))
        env = dict(self.env, CL_CLIENT_ID=fake_harness.INTEGRATION_CLIENT_ID,
                   CL_CLIENT_SECRET=fake_harness.INTEGRATION_CLIENT_SECRET)
        r = subprocess.run(["node", "--import", "./loopback.mjs", example], cwd=NODE_DIR, env=env,
                           capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_same(r.stdout.strip(), "Authorization: Bearer " + self.daemon_tokens()[0], "the example's output")
        self.assertEqual(self.counts(), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)

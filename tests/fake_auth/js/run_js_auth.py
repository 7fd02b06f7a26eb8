#!/usr/bin/python3
"""ctest fake_auth.js_auth: the official @commercelayer/js-auth library against the fake.

    run_js_auth.py [--build-dir DIR]

Copies package.json, package-lock.json and js_auth_test.mjs into DIR (default: this
folder; node_modules is git-ignored), runs `npm ci` there when node_modules is missing or
was installed from another lock file, starts the fake auth server with the issuer
https://auth.localhost:PORT (the library only follows issuers that start with
"https://auth."), and runs the Node test with the test CA in NODE_EXTRA_CA_CERTS.

A missing node or npm is a failure, not a skip: scripts/test installs them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True           # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(HERE))

import harness  # noqa: E402

NODE_MAJOR_MIN = 20                      # @commercelayer/js-auth 8 declares node >= 20
FILES = ("package.json", "package-lock.json", "js_auth_test.mjs")
STAMP = ".cltoken-lock.sha256"           # which lock file node_modules came from
NPM_TIMEOUT_S = 300
NODE_TIMEOUT_S = 120

CONFIDENTIAL_ID = "sc-confidential-js"
CONFIDENTIAL_SECRET = "sc-confidential-js-secret"


def fail(msg: str) -> int:
    print(f"fake_auth.js_auth: FAIL: {msg}", file=sys.stderr, flush=True)
    return 1


def sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def ensure_node_modules(build_dir: str, npm: str) -> None:
    lock_hash = sha256(os.path.join(build_dir, "package-lock.json"))
    stamp = os.path.join(build_dir, "node_modules", STAMP)
    try:
        with open(stamp, encoding="ascii") as fh:
            if fh.read().strip() == lock_hash:
                return
    except FileNotFoundError:
        pass
    print(f"fake_auth.js_auth: npm ci in {build_dir}", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=build_dir, check=True,
                   timeout=NPM_TIMEOUT_S, stdin=subprocess.DEVNULL)
    with open(stamp, "w", encoding="ascii") as fh:
        fh.write(lock_hash + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=HERE,
                    help="where to copy the package and install node_modules")
    args = ap.parse_args()

    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return fail("node and npm are required (scripts/test installs Node.js); "
                    f"found node={node} npm={npm}")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        return fail(f"cannot read the node version from {version!r}")
    if major < NODE_MAJOR_MIN:
        return fail(f"node {version} is too old, @commercelayer/js-auth needs >= "
                    f"{NODE_MAJOR_MIN}")

    build_dir = os.path.abspath(args.build_dir)
    os.makedirs(build_dir, exist_ok=True)
    if build_dir != HERE:
        for name in FILES:
            shutil.copyfile(os.path.join(HERE, name), os.path.join(build_dir, name))
    try:
        ensure_node_modules(build_dir, npm)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return fail(f"npm ci failed: {exc}")

    clients = harness.default_clients() + [
        harness.client(CONFIDENTIAL_ID, "sales_channel", CONFIDENTIAL_SECRET,
                       scope=harness.SALES_CHANNEL_SCOPE)]
    params = {
        "integration": {"client_id": harness.INTEGRATION_CLIENT_ID,
                        "client_secret": harness.INTEGRATION_CLIENT_SECRET},
        "sales_channel": {"client_id": harness.SALES_CHANNEL_CLIENT_ID,
                          "scope": harness.SALES_CHANNEL_SCOPE},
        "confidential": {"client_id": CONFIDENTIAL_ID, "client_secret": CONFIDENTIAL_SECRET},
        "customer": {"username": harness.CUSTOMER_USERNAME,
                     "password": harness.CUSTOMER_PASSWORD,
                     "customer_id": harness.CUSTOMER_ID},
        "organization_slug": harness.ORGANIZATION_SLUG,
    }
    workdir = tempfile.mkdtemp(prefix="fake_auth_js.")
    fake = harness.FakeAuth(workdir, clients=clients, rate_limit_per_minute=1000,
                            issuer="https://auth.localhost:{port}")
    ok = False
    try:
        fake.start()
        params["port"] = fake.port
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=fake.ca_file,
                   FAKE_AUTH_PARAMS=json.dumps(params))
        # No proxy may get between the library and the fake.
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                    "NODE_TLS_REJECT_UNAUTHORIZED"):
            env.pop(var, None)
        try:
            proc = subprocess.run([node, "--test", "--test-reporter=spec",
                                   os.path.join(build_dir, "js_auth_test.mjs")],
                                  cwd=build_dir, env=env, timeout=NODE_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return fail(f"node test did not finish within {NODE_TIMEOUT_S}s")
        ok = proc.returncode == 0
        if not ok:
            print("---- fake auth server log ----", file=sys.stderr)
            print(fake.log_text()[-6000:], file=sys.stderr)
            return fail(f"node test exited with {proc.returncode}")
        return 0
    finally:
        fake.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"fake_auth.js_auth: kept {workdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

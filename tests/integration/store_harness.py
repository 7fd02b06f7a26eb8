"""A private redis-server per test, for the token store's integration tests.

Each RedisServer runs Debian's redis-server (package redis-server) in the test's own
folder: a Unix socket there, or a free loopback port, with persistence off
(--save '' --appendonly no) so that a restart comes back empty, like a Redis that lost its
data. The system's redis-server service, if apt started one, is never touched. Everything
is stopped by pid. Commands to inspect it go through redis-cli (package redis-tools).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


def free_port() -> int:
    """A loopback port nobody listens on right now (the caller binds it at once)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class RedisServer:
    """One redis-server. `unix=True`: a socket in `workdir` only; else a loopback port
    (plain, or TLS with the test CA when `tls_dir` is given). `password` sets requirepass."""

    def __init__(self, workdir: str, name: str = "redis", *, unix: bool = True, password: str | None = None,
                 tls_dir: str | None = None):
        self.workdir = workdir
        self.name = name
        self.unix = unix and tls_dir is None
        self.password = password
        self.tls_dir = tls_dir
        self.socket = os.path.join(workdir, f"{name}.sock")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.port = 0
        self.proc: subprocess.Popen | None = None

    # -- what the daemon's [store] needs --------------------------------------------------
    @property
    def url(self) -> str:
        if self.unix:
            return f"unix://{self.socket}"
        if self.tls_dir:
            return f"rediss://localhost:{self.port}/0"
        return f"redis://127.0.0.1:{self.port}/0"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 15) -> "RedisServer":
        if not self.unix and self.port == 0:
            self.port = free_port()  # kept across restarts: daemons reconnect to the same address
        args = [REDIS_SERVER, "--save", "", "--appendonly", "no", "--dir", self.workdir,
                "--logfile", self.log_path, "--daemonize", "no", "--bind", "127.0.0.1"]
        if self.unix:
            args += ["--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700"]
        elif self.tls_dir:
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", os.path.join(self.tls_dir, "server.pem"),
                     "--tls-key-file", os.path.join(self.tls_dir, "server.key"),
                     "--tls-ca-cert-file", os.path.join(self.tls_dir, "ca.pem"),
                     "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except (subprocess.SubprocessError, OSError):
                pass
            time.sleep(0.02)  # polling for the server to listen, bounded by the deadline
        self.stop()
        raise RuntimeError(f"redis-server not answering after {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: Redis vanishes mid-run, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- inspection --------------------------------------------------------------------------
    def cli(self, *args: str) -> str:
        cmd = [REDIS_CLI, "--raw"]
        if self.unix:
            cmd += ["-s", self.socket]
        else:
            cmd += ["-h", "127.0.0.1", "-p", str(self.port)]
        if self.tls_dir:
            cmd += ["--tls", "--cacert", os.path.join(self.tls_dir, "ca.pem"), "--sni", "localhost"]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password  # not on the command line, where ps shows it
        r = subprocess.run(cmd + list(args), capture_output=True, timeout=10, env=env)
        if r.returncode != 0:
            raise subprocess.SubprocessError(r.stderr.decode(errors="replace"))
        return r.stdout.decode(errors="replace")

    def keys(self, pattern: str = "*") -> list[str]:
        return sorted(k for k in self.cli("--scan", "--pattern", pattern).splitlines() if k)

    def dump_values(self) -> bytes:
        """Every value of every key, raw, to look for tokens in clear."""
        out = b""
        for key in self.keys():
            kind = self.cli("TYPE", key).strip()
            if kind == "hash":
                out += self.cli("HGETALL", key).encode(errors="replace")
            elif kind == "string":
                out += self.cli("GET", key).encode(errors="replace")
        return out


def store_section(**values) -> str:
    """A [store] table for Daemon(extra=...)."""
    import json
    lines = ["[store]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


# -- an independent reading of the sealed format (docs/store.md), with python3-cryptography --

def identity_fingerprint(material: bytes, kind: str, client_id: str, scope: str, auth_url: str) -> str:
    import struct
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    key = HKDF(hashes.SHA256(), 32, None, b"cl-tokend identity v1").derive(material)
    h = hmac.HMAC(key, hashes.SHA256())
    for field in (kind, client_id, scope, auth_url):
        data = field.encode()
        h.update(struct.pack(">I", len(data)) + data)
    return h.finalize().hex()


def unseal(blob: bytes, material: bytes, credential: str, identity: str) -> dict:
    """The record inside a sealed blob; raises cryptography's InvalidTag when it does not open."""
    import json
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    if blob[:5] != b"CLTK\x01":
        raise ValueError("not a version 1 cl-tokend record")
    header, salt, nonce = blob[:33], blob[5:21], blob[21:33]
    key = HKDF(hashes.SHA256(), 32, salt, b"cl-tokend token record v1").derive(material)
    aad = header + credential.encode() + b"\0" + identity.encode()
    return json.loads(AESGCM(key).decrypt(nonce, blob[33:], aad))


def key_set_identity(material: bytes, auth_url: str, issuer: str) -> str:
    import struct
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    key = HKDF(hashes.SHA256(), 32, None, b"cl-tokend key set identity v1").derive(material)
    h = hmac.HMAC(key, hashes.SHA256())
    for field in (auth_url, issuer):
        data = field.encode()
        h.update(struct.pack(">I", len(data)) + data)
    return h.finalize().hex()


def unseal_key_set(blob: bytes, material: bytes, identity: str) -> dict:
    """The key set record inside a sealed blob (docs/store.md, "The key set")."""
    import json
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    if blob[:5] != b"CLKS\x01":
        raise ValueError("not a version 1 cl-tokend key set record")
    header, salt, nonce = blob[:33], blob[5:21], blob[21:33]
    key = HKDF(hashes.SHA256(), 32, salt, b"cl-tokend key set record v1").derive(material)
    return json.loads(AESGCM(key).decrypt(nonce, blob[33:], header + identity.encode()))


def seal_key_set(record: dict, material: bytes, identity: str) -> bytes:
    """What someone holding the key material could write: the inverse of unseal_key_set."""
    import json
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    salt, nonce = os.urandom(16), os.urandom(12)
    header = b"CLKS\x01" + salt + nonce
    key = HKDF(hashes.SHA256(), 32, salt, b"cl-tokend key set record v1").derive(material)
    return header + AESGCM(key).encrypt(nonce, json.dumps(record).encode(), header + identity.encode())

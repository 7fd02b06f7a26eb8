#!/usr/bin/python3
"""One hostile local peer of a chaos run, started by the runner under another uid:

    hostile.py MODE SECONDS SEED SOCKET [SOCKET ...]

It attacks the daemons' sockets until SECONDS have passed and prints JSON lines on stdout:
events the runner must know about as they happen (a report of a token that the daemon took
as current, which legitimately makes it drop that token) and one summary line at the end.
Standard library only, so that any uid can run it with /usr/bin/python3.

Modes of a uid the credentials allow: min_ttl_storm, invalidate_storm, session_flood,
slow_reader. Modes of a uid they do not allow: garbage, big_header, flood, forbidden.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import resource
import select
import socket
import sys
import time

CREDENTIALS = ("backoffice", "storefront-eu")
SESSION_CREDENTIAL = "storefront-eu"


def fingerprint(token: str) -> str:
    """What the runner and this process exchange instead of a token: never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def emit(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


class Peer:
    """Raw HTTP/1.1 over one Unix socket, so that the attacks can also send what a proper
    client never would."""

    def __init__(self, path: str, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def connect(self) -> bool:
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            return False
        self.sock, self.buf = s, b""
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body); status 0 when the connection failed or closed without an answer."""
        if self.sock is None and not self.connect():
            return 0, b""
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            assert self.sock is not None
            self.sock.sendall(head.encode() + b"\r\n" + (body or b""))
            return self._read_answer()
        except (OSError, ValueError):
            self.close()
            return 0, b""

    def _read_answer(self) -> tuple[int, bytes]:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError("closed")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
            if k.strip().lower() == "connection" and v.strip().lower() == "close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError("closed mid-body")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body


def token_of(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc.get("access_token") if isinstance(doc, dict) else None


def lifetime_of(token: str) -> int:
    """exp - iat of a JWT, read without checking it (the attacker asks for all of it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return max(1, int(claims["exp"]) - int(claims["iat"]))
    except (IndexError, KeyError, ValueError, TypeError):
        return 3600


def run(mode: str, seconds: float, seed: int, sockets: list[str]) -> dict:
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    seen: dict = {"mode": mode, "uid": os.getuid(), "requests": 0, "statuses": {}, "token_bodies": 0,
                  "connections": 0, "refused_connects": 0}

    def count(status: int, body: bytes = b"") -> None:
        seen["requests"] += 1
        key = str(status)
        seen["statuses"][key] = seen["statuses"].get(key, 0) + 1
        if status == 200 and b"access_token" in body:
            seen["token_bodies"] += 1

    peers = [Peer(p) for p in sockets]

    if mode == "min_ttl_storm":
        # Asks for more time left than any token can have, and for just less than a
        # whole lifetime: each a refresh the daemon must weigh against the budget.
        while time.monotonic() < deadline:
            p = rng.choice(peers)
            name = rng.choice(CREDENTIALS)
            status, body = p.request("GET", f"/v1/tokens/{name}")
            count(status, body)
            tok = token_of(body) if status == 200 else None
            life = lifetime_of(tok) if tok else 60
            for min_ttl in (life - 1, life + 100, rng.randint(1, life)):
                status, body = p.request("GET", f"/v1/tokens/{name}?min_ttl={min_ttl}")
                count(status, body)
            time.sleep(rng.uniform(0.01, 0.05))  # pacing: an attacker's own request rate
    elif mode == "invalidate_storm":
        # Reports garbage, tokens seen long ago, and the token just served: the last is
        # what a hostile peer can do to take a good token away (the runner is told).
        old: dict[str, list[str]] = {name: [] for name in CREDENTIALS}
        while time.monotonic() < deadline:
            idx = rng.randrange(len(peers))
            p = peers[idx]
            name = rng.choice(CREDENTIALS)
            status, body = p.request("GET", f"/v1/tokens/{name}")
            count(status, body)
            current = token_of(body) if status == 200 else None
            if current and current not in old[name]:
                old[name] = (old[name] + [current])[-8:]
            choice = rng.random()
            owner = name
            if choice < 0.3:
                reported = "eyJ" + "".join(rng.choice("abcXYZ019-_.") for _ in range(rng.randint(1, 900)))
            elif choice < 0.4:
                # Another credential's token, reported as this one's.
                owner = next(n for n in CREDENTIALS if n != name)
                if not old[owner]:
                    continue
                reported = rng.choice(old[owner])
            elif choice < 0.6 and old[name]:
                reported = rng.choice(old[name])
            elif current:
                reported = current
            else:
                continue
            t_send = time.time()
            status, body = p.request("POST", f"/v1/tokens/{name}/invalidate",
                                     json.dumps({"access_token": reported}).encode())
            t_recv = time.time()
            count(status, body)
            got = token_of(body) if status == 200 else None
            if reported in old[owner]:  # a real token: the daemon may have taken it as current
                emit({"event": "invalidate", "socket": sockets[idx], "credential": name, "token_of": owner,
                      "was_current": reported == current,
                      "status": status, "t_send": t_send, "t_recv": t_recv, "reported": fingerprint(reported),
                      "got": fingerprint(got) if got else None})
            time.sleep(rng.uniform(0.02, 0.2))  # pacing
    elif mode == "session_flood":
        # Logins with a wrong password, with the right one (then abandoned), adopted
        # forged tokens, and reads of sessions that are not ours.
        while time.monotonic() < deadline:
            p = rng.choice(peers)
            kind = rng.random()
            if kind < 0.4:
                body = {"username": "ada@example.com", "password": "wrong " + str(rng.random())}
            elif kind < 0.7:
                body = {"username": "ada@example.com", "password": "correct horse"}
            else:
                body = {"access_token": "eyJhbGciOiJSUzUxMiJ9." + "x" * rng.randint(10, 2000) + ".sig"}
            status, answer = p.request("POST", f"/v1/customers/{SESSION_CREDENTIAL}/sessions",
                                       json.dumps(body).encode())
            count(status, answer)
            status, answer = p.request("GET", f"/v1/customers/{SESSION_CREDENTIAL}/sessions/cs_"
                                       + "A" * 43)
            count(status, answer)
            time.sleep(rng.uniform(0.02, 0.1))  # pacing
    elif mode == "slow_reader":
        # Requests sent a byte at a time and answers never read: each connection holds a
        # slot until the daemon's deadlines free it.
        held: list[socket.socket] = []
        request = b"GET /v1/tokens/backoffice HTTP/1.1\r\nHost: x\r\nX-Slow: "
        while time.monotonic() < deadline:
            while len(held) < 24:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(0.5)
                try:
                    s.connect(rng.choice(sockets))
                    seen["connections"] += 1
                    if rng.random() < 0.5:
                        # A whole request, its answer never read, and more pipelined behind.
                        s.sendall(b"GET /v1/tokens/backoffice HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
                    held.append(s)
                except OSError:
                    seen["refused_connects"] += 1
                    s.close()
                    break
            for s in list(held):
                readable, _, _ = select.select([s], [], [], 0)
                try:
                    if readable and not s.recv(1, socket.MSG_PEEK):
                        raise OSError("closed by the daemon")
                    s.send(bytes([request[rng.randrange(len(request))]]))
                except OSError:
                    held.remove(s)
                    s.close()
            time.sleep(0.2)  # pacing: a slowloris trickles bytes
        for s in held:
            s.close()
    elif mode == "garbage":
        while time.monotonic() < deadline:
            p = rng.choice(peers)
            if not p.connect():
                seen["refused_connects"] += 1
                continue
            seen["connections"] += 1
            try:
                assert p.sock is not None
                p.sock.sendall(os.urandom(rng.randint(1, 4096)))
                count(*p._read_answer())
            except (OSError, ValueError, IndexError):
                count(0)
            p.close()
            time.sleep(rng.uniform(0.005, 0.03))  # pacing
    elif mode == "big_header":
        while time.monotonic() < deadline:
            p = rng.choice(peers)
            if not p.connect():
                seen["refused_connects"] += 1
                continue
            seen["connections"] += 1
            try:
                assert p.sock is not None
                size = rng.choice([9000, 70000, 1 << 20])
                p.sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
                count(*p._read_answer())
            except (OSError, ValueError, IndexError):
                count(0)
            p.close()
            time.sleep(rng.uniform(0.01, 0.05))  # pacing
    elif mode == "flood":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        held = []
        while time.monotonic() < deadline:
            for s in held:
                s.close()
            held = []
            for _ in range(rng.randint(200, 600)):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(0.5)
                try:
                    s.connect(rng.choice(sockets))
                    seen["connections"] += 1
                    held.append(s)
                except OSError:
                    seen["refused_connects"] += 1
                    s.close()
            time.sleep(rng.uniform(0.3, 1.0))  # pacing: hold the connections a moment
        for s in held:
            s.close()
    elif mode == "forbidden":
        while time.monotonic() < deadline:
            p = rng.choice(peers)
            name = rng.choice(CREDENTIALS)
            status, body = p.request("GET", f"/v1/tokens/{name}?min_ttl={rng.randint(0, 100000)}")
            count(status, body)
            status, body = p.request("POST", f"/v1/tokens/{name}/invalidate", b'{"access_token":"eyJ.a.b"}')
            count(status, body)
            status, body = p.request("POST", f"/v1/tokens/{name}/revoke", b"")
            count(status, body)
            status, body = p.request("POST", "/v1/reload", b"")
            count(status, body)
            time.sleep(rng.uniform(0.01, 0.05))  # pacing
    else:
        raise SystemExit(f"hostile.py: unknown mode {mode}")
    for p in peers:
        p.close()
    return seen


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    summary = run(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    emit({"event": "summary", **summary})

"""The runner's copy of what the fake auth server issued and revoked (GET /_fake/ledger),
and the few things read from a token without trusting it."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any


def fingerprint(token: str) -> str:
    """How a token appears in the runner's records and report: never the token itself.
    hostile.py computes the same."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def claims(token: str) -> dict:
    """The JWT's payload, unverified (the runner only needs its jti to find the fake's
    record, which is the authority)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Ledger:
    """jti -> {"client_id","owner_id","expires_real","t","revoked_t"} mirrored from the fake.
    The fake writes a token into its ledger before it sends the answer, so a token the
    daemon serves is always found after one more sync."""

    def __init__(self, fake: Any):
        self.fake = fake
        self.entries: dict[str, dict] = {}
        self.next = 0
        self.lock = threading.Lock()
        self.issued = 0
        self.revoked = 0

    def sync(self) -> None:
        with self.lock:
            doc = self.fake.ledger(self.next)
            for e in doc["events"]:
                if e["event"] == "issued":
                    self.entries[e["jti"]] = dict(e, revoked_t=None)
                    self.issued += 1
                elif e["event"] == "revoked" and e["jti"] in self.entries:
                    self.entries[e["jti"]]["revoked_t"] = e["t"]
                    self.revoked += 1
            self.next = doc["next"]

    def lookup(self, jti: str) -> dict | None:
        with self.lock:
            entry = self.entries.get(jti)
        if entry is None:
            self.sync()
            with self.lock:
                entry = self.entries.get(jti)
        return entry

    def revoked_by_others(self, exclude: set[str]) -> list[tuple[str, float]]:
        """(jti, time) of every revocation the runner did not make itself."""
        with self.lock:
            return [(j, e["revoked_t"]) for j, e in self.entries.items()
                    if e["revoked_t"] is not None and j not in exclude]

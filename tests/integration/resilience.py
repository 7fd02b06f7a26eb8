"""Helpers shared by the test_resilience_*.py suites: reading the daemon's status
and metrics, the fake's request log, and tokens' own claims."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from typing import Any, Callable

from cltoken_harness import Daemon, Response


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def credential_status(d: Daemon, name: str) -> dict:
    doc = d.get("/v1/status").json()
    return next(c for c in doc["credentials"] if c["name"] == name)


def metric(d: Daemon, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    text = d.get("/metrics").body.decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^cl_tokend_{re.escape(name)}{re.escape('{' + want + '}') if want else ''} (\S+)$"
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def token_request_times(stats: dict, client_id: str | None = None) -> list[float]:
    """When the fake received each token request (its own clock), oldest first."""
    return sorted(r["t"] for r in stats["requests"] if client_id is None or r["client_id"] == client_id)


def in_parallel(n: int, fn: Callable[[int], Any], timeout: float = 60) -> list[Any]:
    """Runs fn(0..n-1) on n threads released together; returns their results in order."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as e:  # reported by the caller's assertion
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    return results


def timed(fn: Callable[[], Response]) -> tuple[Response, float]:
    """(response, seconds it took)."""
    start = time.monotonic()
    r = fn()
    return r, time.monotonic() - start


def error_of(r: Response) -> dict:
    """The {"code","message"} of an error answer."""
    return r.json()["error"]

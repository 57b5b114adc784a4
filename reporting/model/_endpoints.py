"""Several model servers: least outstanding requests first, a failing one rested a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class _Endpoint:
    url: str
    outstanding: int = 0
    failures: int = 0
    resting_until: float = 0.0
    served: int = 0


class EndpointPool:
    """Thread-safe choice among `model.base_urls`.

    `pick()` returns the endpoint with the fewest requests in flight among those not
    resting (ties go round-robin); when all rest, the one that rests shortest is tried, so
    a study is delayed, never refused, while every GPU node is down.
    """

    def __init__(self, urls: list[str], *, cooldown_s: float) -> None:
        if not urls:
            raise ValueError("no model endpoint configured (model.base_urls is empty)")
        self._endpoints = [_Endpoint(u.rstrip("/")) for u in urls]
        self._cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._turn = 0

    def _choose(self, exclude: set[str]) -> _Endpoint:
        now = time.monotonic()
        candidates = [e for e in self._endpoints if e.url not in exclude] or self._endpoints
        awake = [e for e in candidates if e.resting_until <= now]
        if not awake:
            return min(candidates, key=lambda e: e.resting_until)
        self._turn += 1
        order = {id(e): (e.outstanding, (i - self._turn) % len(self._endpoints))
                 for i, e in enumerate(self._endpoints)}
        return min(awake, key=lambda e: order[id(e)])

    @contextmanager
    def use(self, exclude: set[str] | None = None) -> Iterator[_Lease]:
        with self._lock:
            endpoint = self._choose(exclude or set())
            endpoint.outstanding += 1
        lease = _Lease(endpoint.url)
        try:
            yield lease
        finally:
            with self._lock:
                endpoint.outstanding -= 1
                if lease.failed:
                    endpoint.failures += 1
                    endpoint.resting_until = time.monotonic() + self._cooldown_s
                else:
                    endpoint.failures = 0
                    endpoint.resting_until = 0.0
                    endpoint.served += 1

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Per endpoint: in flight, consecutive failures, seconds left resting, served."""
        now = time.monotonic()
        with self._lock:
            return {e.url: {"outstanding": e.outstanding, "failures": e.failures,
                            "resting_s": max(0.0, e.resting_until - now), "served": e.served}
                    for e in self._endpoints}


@dataclass
class _Lease:
    url: str
    failed: bool = False

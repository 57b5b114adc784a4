"""Waiting for a condition, with a failure that says what was awaited (and the logs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for(
    what: str, check: Callable[[], object], logs: Path | None = None, *,
    timeout: float = 180, interval: float = 0.2,
) -> None:
    """Poll `check` until it returns something true; fail after `timeout` seconds (generous:
    the test machines are loaded) naming `what`, with the tail of every *.log in `logs`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            tails = "" if logs is None else "\n" + "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                for p in sorted(logs.glob("*.log")))
            raise AssertionError(f"{what}: not within {timeout} s{tails}")
        time.sleep(interval)

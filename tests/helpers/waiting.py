"""Waiting for a condition, with a failure that says what was awaited (and the logs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for(
    check: Callable[[], object], *, what: str = "condition", timeout: float = 60,
    interval: float = 0.1, logs: Path | None = None,
) -> None:
    """Poll `check` until it returns something true; fail after `timeout` seconds naming
    `what`, with the tail of every *.log in `logs` when given."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            tails = "" if logs is None else "\n" + "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                for p in sorted(logs.glob("*.log")))
            raise AssertionError(f"{what}: not within {timeout} s{tails}")
        time.sleep(interval)

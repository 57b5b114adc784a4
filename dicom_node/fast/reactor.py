"""The association reactor's 1 ms poll sleep, skipped on accelerated associations.

pynetdicom 3.0.4's `Association._run_reactor` sleeps `time.sleep(0.001)` before every look
at the DIMSE queue. On an accelerated association `WaitingMessageQueue.get` does the
waiting instead, so that one sleep is skipped; every other sleep is a real one.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

REACTOR_SLEEP_S = 0.001  # pynetdicom 3.0.4, Association._run_reactor


class TimeWithoutReactorSleep:
    """Stands in for the `time` module inside pynetdicom.association (not a clock: every
    attribute is the real module's, only the reactor's poll sleep is dropped)."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        if seconds == REACTOR_SLEEP_S and getattr(threading.current_thread(), "_accelerated",
                                                  False):
            return  # WaitingMessageQueue.get waits for the message instead
        self._real.sleep(seconds)

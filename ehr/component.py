"""The HL7 listener as a `radraft serve` component (its own thread and event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from sqlalchemy.orm import Session, sessionmaker

from radraft.core.errors import ConfigError
from radraft.core.settings import Settings
from radraft.ehr.listener import OnOrderChange, run_listener


class Hl7Listener:
    name = "hl7-listener"

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], *,
        on_order_change: OnOrderChange | None = None,
    ) -> None:
        self._settings, self._sessions, self._hook = settings, sessions, on_order_change
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(run_listener(
            self._settings, self._sessions, on_order_change=self._hook, ready=self._ready))
        try:
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._task)
        except OSError as exc:  # port taken, TLS files unreadable
            self._failure = exc
        finally:
            self._loop.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        for _ in range(200):
            if self._ready.is_set():
                return
            if self._failure is not None or not self._thread.is_alive():
                break
            threading.Event().wait(0.05)
        hl7 = self._settings.hl7
        raise ConfigError(f"HL7 listener on {hl7.host}:{hl7.port} did not start: {self._failure}")

    def stop(self) -> None:
        if self._task is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(10)

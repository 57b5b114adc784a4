"""`radraft serve`: the long-running process (DICOM node, HL7 listener; the web console plugs in).

Components are started in order and stopped in reverse. To add one (the HL7 listener, the web
console), append an object with `name`, `start()` and `stop()` in `build_components`.

A stable study goes to `worker.jobs.celery_on_stable`: the rule decisions and the Jobs in
one transaction, then the wake-ups on the broker (`on_stable=` replaces it in tests).
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade
from radraft.core.settings import Settings
from radraft.core.types import StudyStable
from radraft.dicom_node.node import DicomNode
from radraft.dicom_node.rules import RulesWatcher
from radraft.ehr.component import Hl7Listener
from radraft.worker.console.server import console_components
from radraft.worker.jobs import celery_on_stable
from radraft.worker.serve.orders import celery_on_order_change
from radraft.worker.serve.rule_modes import mode_auditor

log = logging.getLogger(__name__)

OnStable = Callable[[StudyStable], None]


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


def rules_watcher(settings: Settings) -> RulesWatcher:
    return RulesWatcher(
        settings.rules_file, timezone=settings.site.timezone, profiles=settings.profiles.keys(),
        destinations=settings.destinations.keys(),
    )


def build_components(
    settings: Settings, sessions: sessionmaker[Session], *, on_stable: OnStable | None = None,
) -> list[Component]:
    """Everything `radraft serve` runs, in start order."""
    rules = rules_watcher(settings)
    rules.on_load = mode_auditor(sessions)  # shadow <-> live is an audited change
    on_stable = on_stable or celery_on_stable(settings, sessions, rules)
    components: list[Component] = [rules, DicomNode(settings, sessions, on_stable, rules=rules)]
    components.append(Hl7Listener(
        settings, sessions, on_order_change=celery_on_order_change(settings, sessions, rules)))
    components += console_components(settings, sessions, rules)
    return components


def serve(
    settings: Settings, *, stop: threading.Event | None = None,
    on_stable: OnStable | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set); components stop in reverse order."""
    upgrade(settings.database_url)  # zero set-up on the embedded database; a no-op when current
    # pynetdicom writes each received dataset to a temp file: keep those on the store's file
    # system (rename into place is then atomic) and where a restart cleans them up.
    (settings.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(settings.data_dir / "tmp")
    engine = make_engine(settings.database_url, pool_size=10)
    sessions = make_sessionmaker(engine)
    stop = stop or threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    started: list[Component] = []
    try:
        for component in build_components(settings, sessions, on_stable=on_stable):
            component.start()
            started.append(component)
            log.info("started %s", component.name)
        # Wake up periodically: a signal delivered to another thread only runs its Python
        # handler when the main thread executes bytecode, never inside a plain wait().
        while not stop.wait(0.2):
            pass
    finally:
        for component in reversed(started):
            component.stop()
            log.info("stopped %s", component.name)
        engine.dispose()

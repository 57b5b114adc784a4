"""Hot reload: the running node picks up an edited rules file, keeping the old rules if invalid."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from radraft.core.errors import ConfigError
from radraft.dicom_node.rules.loader import load_rules
from radraft.dicom_node.rules.model import RuleSet

log = logging.getLogger(__name__)


class RulesWatcher:
    """Holds the current RuleSet; reloads when the file's mtime or size changes.

    With no rules file every study is "unmatched" (recorded, shown to the admin).
    """

    name = "rules-watcher"

    def __init__(
        self, path: Path | None, *, timezone: str = "UTC",
        profiles: Collection[str] | None = None, destinations: Collection[str] | None = None,
        poll_interval_s: float = 2.0,
    ) -> None:
        self.path = path
        self.timezone, self.profiles, self.destinations = timezone, profiles, destinations
        self._stamp: tuple[float, int] | None = None
        self._rules = RuleSet((), timezone=timezone, source="(no rules file)")
        self._lock = threading.Lock()
        self._interval = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""
        # Called with the rules in force at start() and after each reload (the worker audits
        # rule mode changes with it); its failure never stops the rules from changing.
        self.on_load: Callable[[RuleSet], None] | None = None
        if path is not None:
            self._rules = self._load(path)
            self._stamp = self._stat()

    def _load(self, path: Path) -> RuleSet:
        return load_rules(
            path, timezone=self.timezone, profiles=self.profiles, destinations=self.destinations
        )

    def _stat(self) -> tuple[float, int] | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def current(self) -> RuleSet:
        """The rules in force (reloading first if the file changed)."""
        self.poll()
        return self._rules

    def poll(self) -> bool:
        """Reload if the file changed; True when new rules are in force."""
        stamp = self._stat()
        if self.path is None or stamp is None or stamp == self._stamp:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                rules = self._load(self.path)
            except ConfigError as exc:
                self.last_error = str(exc)
                log.error("rules file changed but is invalid; keeping the previous rules:\n%s",
                          exc)
                return False
            self._rules, self.last_error = rules, ""
        log.info("rules reloaded from %s (%d rules)", self.path, len(rules.rules))
        self._notify(rules)
        return True

    def _notify(self, rules: RuleSet) -> None:
        if self.on_load is None:
            return
        try:
            self.on_load(rules)
        except Exception:  # the hook is the caller's (a database write): log, carry on
            log.exception("rules on_load hook failed")

    def start(self) -> None:
        self._notify(self._rules)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rules-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

"""When a study is complete without waiting for the timer: MPPS steps and `complete_when`.

- A study with an MPPS step that is not settled is held: the stability timer does not
  announce it (`held_by_mpps`, used by StabilityMonitor).
- Once every step of the study is final (COMPLETED or DISCONTINUED) and every instance the
  steps list has been received, the steps settle and the study is announced at once.
- A final step whose listed instances do not all arrive within
  `dicom.mpps_instances_timeout_s` is reported (audit `mpps.instances_missing`, the study's
  admin flag) and the study announced with what arrived; a step never set final within
  `dicom.mpps_in_progress_timeout_s` is reported and the timer decides again.
- A rule's `complete_when` (expected series) is evaluated on every new series of a pending
  study without MPPS; met and quiet for `dicom.complete_when_quiet_s`, the study is announced.

Everything is read from the database on each poll, so a restart resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Instance, MppsInstance, MppsStep, Series, Study, db_now
from radraft.core.settings import DicomSettings
from radraft.core.types import StudyStable
from radraft.dicom_node.mpps import FINAL, IN_PROGRESS
from radraft.dicom_node.rules.completion import SeriesSeen
from radraft.dicom_node.rules.facts import facts_for_study
from radraft.dicom_node.rules.watch import RulesWatcher
from radraft.dicom_node.storage.index import begin_write

log = logging.getLogger(__name__)

Announce = Callable[[int], StudyStable | None]


def held_by_mpps() -> ColumnElement[bool]:
    """SQL: the Study row has an MPPS step not settled yet (the timer must not announce it)."""
    return exists(select(MppsStep.id).where(
        MppsStep.study_uid == Study.study_uid, MppsStep.settled_at.is_(None)))


def missing_instances(session: Session, step_ids: list[int]) -> int:
    """How many instances the steps list that the node has not received."""
    received = exists(select(Instance.id).where(Instance.sop_uid == MppsInstance.sop_uid))
    return int(session.scalar(select(func.count(func.distinct(MppsInstance.sop_uid))).where(
        MppsInstance.step_id.in_(step_ids), ~received)) or 0)


def study_discontinued(session: Session, study_uid: str) -> MppsStep | None:
    """The study's DISCONTINUED step when no step of it was COMPLETED (else None)."""
    steps = session.scalars(select(MppsStep).where(MppsStep.study_uid == study_uid)
                            .order_by(MppsStep.id)).all()
    if not steps or any(s.status != "DISCONTINUED" for s in steps):
        return None
    return steps[-1]


class CompletenessMonitor:
    """Polls MPPS steps (and rules with `complete_when`) and announces complete studies."""

    def __init__(
        self, sessions: sessionmaker[Session], announce: Announce, settings: DicomSettings,
        *, rules: RulesWatcher | None = None, poll_interval_s: float = 0.25,
    ) -> None:
        self.sessions = sessions
        self.announce = announce
        self.settings = settings
        self.rules = rules
        self.poll_interval_s = poll_interval_s
        # study id -> series count last evaluated against complete_when (memory only: a
        # restart evaluates once more, which is harmless)
        self._evaluated: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> list[StudyStable]:
        announced = self._check_steps()
        if self.rules is not None:
            announced += self._check_complete_when()
        return announced

    # --- MPPS -------------------------------------------------------------------------

    def _check_steps(self) -> list[StudyStable]:
        announced = []
        for study_uid in self._due():
            study_id = self._settle(study_uid)
            if study_id is not None:
                stable = self.announce(study_id)
                if stable is not None:
                    announced.append(stable)
        return announced

    def _due(self) -> list[str]:
        """Read-only, one query for every unsettled step: the studies with something to
        settle now. Most polls find none and take no write lock (the C-STORE path shares
        it on SQLite)."""
        with self.sessions() as session:
            now = db_now(session)
            steps = session.scalars(select(MppsStep).where(MppsStep.settled_at.is_(None))).all()
            by_study: dict[str, list[MppsStep]] = {}
            for step in steps:
                by_study.setdefault(step.study_uid, []).append(step)
            in_progress_limit = now - timedelta(
                seconds=self.settings.mpps_in_progress_timeout_s)
            instances_limit = now - timedelta(seconds=self.settings.mpps_instances_timeout_s)
            due = []
            for study_uid, group in by_study.items():
                open_steps = [s for s in group if s.status == IN_PROGRESS]
                if open_steps:
                    if any(s.created_at <= in_progress_limit for s in open_steps):
                        due.append(study_uid)
                    continue
                final = [s for s in group if s.status in FINAL]
                if not final:
                    continue
                if min(_final_at(s, now) for s in final) <= instances_limit:
                    due.append(study_uid)
                    continue
                images = session.scalar(select(Study.image_count).where(
                    Study.study_uid == study_uid)) or 0
                if images > 0 and missing_instances(session, [s.id for s in final]) == 0:
                    due.append(study_uid)
            return due

    def _settle(self, study_uid: str) -> int | None:
        """Settle what can be settled; the Study row id when it is now complete."""
        with self.sessions() as session:
            begin_write(session)
            now = db_now(session)
            steps = session.scalars(select(MppsStep).where(
                MppsStep.study_uid == study_uid, MppsStep.settled_at.is_(None))).all()
            study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
            open_steps = [s for s in steps if s.status == IN_PROGRESS]
            for step in open_steps:
                if step.created_at <= now - timedelta(
                        seconds=self.settings.mpps_in_progress_timeout_s):
                    self._give_up(session, step, now, "no final N-SET in time; the timer "
                                  "decides", kind="mpps.no_final_state")
            if open_steps or not steps:
                session.commit()
                return None
            final = [s for s in steps if s.status in FINAL]
            missing = missing_instances(session, [s.id for s in final])
            complete = study is not None and study.image_count > 0
            if missing == 0 and complete:
                for step in final:
                    step.settled_at, step.settle_note = now, "complete"
                session.commit()
                log.info("study %s complete by MPPS (%d step(s))", study_uid, len(final))
                return study.id if study is not None else None
            oldest = min(_final_at(s, now) for s in final)
            if oldest > now - timedelta(seconds=self.settings.mpps_instances_timeout_s):
                session.commit()
                return None  # still waiting for listed instances (or the first image)
            note = f"{missing} listed instance(s) never received"
            for step in final:
                self._give_up(session, step, now, note, kind="mpps.instances_missing",
                              missing=missing)
            if study is not None and missing:
                study.admin_flag = f"MPPS: {note}"[:256]
            session.commit()
            return study.id if complete and study is not None else None

    @staticmethod
    def _give_up(session: Session, step: MppsStep, now: datetime, note: str, *, kind: str,
                 missing: int | None = None) -> None:
        step.settled_at, step.settle_note = now, note[:256]
        audit.record(session, kind, study_uid=step.study_uid, step=step.sop_uid,
                     status=step.status, missing=missing)
        log.warning("MPPS step %s (study %s): %s", step.sop_uid, step.study_uid, note)

    # --- complete_when ------------------------------------------------------------------

    def _check_complete_when(self) -> list[StudyStable]:
        assert self.rules is not None
        rules = self.rules.current()
        if not any(r.complete_when is not None for r in rules.rules):
            return []
        announced = []
        with self.sessions() as session:
            quiet = db_now(session) - timedelta(seconds=self.settings.complete_when_quiet_s)
            pending = session.execute(select(Study.id, Study.study_uid).where(
                Study.source == "received", Study.last_image_at <= quiet,
                (Study.announced_image_count.is_(None))
                | (Study.image_count != Study.announced_image_count),
                ~held_by_mpps(),
            )).all()
        for study_id, study_uid in pending:
            with self.sessions() as session:
                series = session.execute(select(Series.modality, Series.description).where(
                    Series.study_id == study_id,
                    exists(select(Instance.id).where(Instance.series_id == Series.id,
                                                     Instance.is_image)))).all()
                if self._evaluated.get(study_id) == len(series):
                    continue
                self._evaluated[study_id] = len(series)
                facts = facts_for_study(session, study_uid, now=db_now(session))
            seen = [SeriesSeen(m or "", d or "") for m, d in series]
            matched = {o.rule_name for o in rules.decide(facts)}
            if any(r.name in matched and r.complete_when is not None
                   and r.complete_when.met(seen) for r in rules.rules):
                stable = self.announce(study_id)
                if stable is not None:
                    log.info("study %s complete by its rule's complete_when", study_uid)
                    announced.append(stable)
        return announced

    # --- thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="completeness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.check_once()
            except Exception:
                log.exception("completeness check failed; retrying")


def _final_at(step: MppsStep, now: datetime) -> datetime:
    return step.final_at or now

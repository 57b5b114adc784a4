"""Study stability: a study with no new IMAGE for `stable_seconds` is announced once per version.

Timers live in the database (Study.last_image_at / announced_at, compared with the database
clock), so a restart simply resumes: nothing is kept in memory between polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Study, StudyAnnouncement, db_now
from radraft.core.types import StudyStable
from radraft.dicom_node.completeness import held_by_mpps
from radraft.dicom_node.storage.index import begin_write, study_version

log = logging.getLogger(__name__)

OnStable = Callable[[StudyStable], None]


class StabilityMonitor:
    """Polls the index and calls `on_stable` for each study version that became stable.

    Delivery to `on_stable` is at-least-once: it is called before the announcement is
    committed, so a crash in between announces again after restart. Callbacks must be
    idempotent (a Job is keyed by study, version and profile).
    """

    def __init__(
        self, sessions: sessionmaker[Session], on_stable: OnStable, *, stable_seconds: float,
        poll_interval_s: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.on_stable = on_stable
        self.stable_seconds = stable_seconds
        self.poll_interval_s = poll_interval_s or min(1.0, stable_seconds / 4)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The timer and announce_now (MPPS, complete_when) may pick the same study at once:
        # one at a time, the second finds the version announced.
        self._announcing = threading.Lock()

    def check_once(self) -> list[StudyStable]:
        """Announce every study that is due now; returns what was announced."""
        announced: list[StudyStable] = []
        with self.sessions() as session:
            cutoff = db_now(session) - timedelta(seconds=self.stable_seconds)
            due = session.scalars(
                select(Study.id).where(
                    Study.source == "received",
                    Study.last_image_at.is_not(None),
                    Study.last_image_at <= cutoff,
                    or_(
                        Study.announced_image_count.is_(None),
                        Study.image_count != Study.announced_image_count,
                    ),
                    ~held_by_mpps(),  # its MPPS step says when it is complete
                ).order_by(Study.last_image_at)
            ).all()
        for study_id in due:
            try:
                with self._announcing:
                    stable = self._announce(study_id)
            except Exception:
                log.exception("announcing study row %d failed; retried next poll", study_id)
                continue
            if stable is not None:
                announced.append(stable)
        return announced

    def announce_now(self, study_id: int) -> StudyStable | None:
        """Announce a study whatever its timer (its MPPS step or rule says it is complete)."""
        with self._announcing:
            return self._announce(study_id)

    def _announce(self, study_id: int) -> StudyStable | None:
        # Read a consistent snapshot, call back OUTSIDE any transaction (the callback writes
        # to the same database), then record what was announced.
        with self.sessions() as session:
            study = session.get(Study, study_id)
            if study is None:
                return None  # purged meanwhile
            version, images, instances = study_version(session, study.id)
            stable = StudyStable(
                study_uid=study.study_uid, version=version, instance_count=instances,
                image_count=images, calling_aet=study.calling_aet,
                first_received=study.first_received_at,
                last_received=study.last_received_at,
            )
            unchanged = version == study.announced_version
        if not unchanged:
            self.on_stable(stable)
        with self.sessions() as session:
            begin_write(session)
            now = db_now(session)
            # Only the images of the snapshot count as announced: any image that arrived
            # meanwhile keeps image_count ahead, so the study is due again.
            session.execute(
                update(Study).where(Study.id == study_id).values(
                    announced_version=version, announced_at=now, announced_image_count=images,
                )
            )
            if unchanged:
                session.commit()
                return None
            known = session.scalar(select(StudyAnnouncement.id).where(
                StudyAnnouncement.study_uid == stable.study_uid,
                StudyAnnouncement.version == version,
            ))
            if known is None:  # else: purged and re-sent; the version was announced before
                session.add(StudyAnnouncement(
                    study_uid=stable.study_uid, version=version, image_count=images,
                    instance_count=instances, announced_at=now,
                ))
            audit.record(
                session, "study.stable", study_uid=stable.study_uid, version=version,
                images=images, instances=instances,
            )
            session.commit()
        log.info(
            "study %s stable: version %s, %d images, %d instances",
            stable.study_uid, version[:12], images, instances,
        )
        return stable

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stability", daemon=True)
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
                log.exception("stability check failed; retrying")

"""ED escalation: an urgent or critical draft nobody acknowledged in the console within
`web.escalate_after_minutes` of being drafted raises a second alert, once.

The second alert is built again (`build_ed_alert(..., escalation_minutes=...)`, its own
control id) for every destination that got the first one, and goes through the outbox
like any delivery. A draft replaced by a newer one, or whose order the RIS closed, does
not escalate. Several escalators at once are safe: a draft is taken with a conditional
UPDATE on `escalated_at IS NULL`.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Draft, Instance, Order, Study, db_now
from radraft.core.errors import OutputBuildError
from radraft.core.settings import FolderDestination, Hl7Destination, Settings
from radraft.core.uids import control_id
from radraft.ehr.outbound import AlertBasis, build_ed_alert
from radraft.reporting.report_schema import DraftReport
from radraft.worker.draft_facts import order_from_header
from radraft.worker.draft_inputs import order_info, patient_info
from radraft.worker.enqueue import Enqueue, WakeUp
from radraft.worker.jobs import closed_order
from radraft.worker.pipeline import patient_from_header

log = logging.getLogger(__name__)

ALERTING = ("urgent", "critical")
# Folder copies of the alert are addressed to no one (as in the pipeline).
_GENERIC_ED = Hl7Destination(kind="hl7", host="localhost", port=2575, role="ed")


def _due(session: Session, cutoff: datetime) -> list[Draft]:
    newer = aliased(Draft)
    return list(session.scalars(select(Draft).where(
        Draft.triage_level.in_(ALERTING), Draft.acknowledged_at.is_(None),
        Draft.escalated_at.is_(None), Draft.created_at <= cutoff,
        Draft.alert_decision != "held",  # no first alert went out: nothing to escalate
        Draft.mode != "shadow",  # a shadow draft alerted nobody: nobody to remind
        ~exists().where(newer.study_uid == Draft.study_uid, newer.profile == Draft.profile,
                        newer.id > Draft.id),
    ).order_by(Draft.created_at).limit(100)))


def _order(session: Session, study: Study) -> Order | None:
    conditions = [Order.study_uid == study.study_uid]
    if study.accession:
        conditions.append(Order.accession == study.accession)
    return session.scalars(select(Order).where(or_(*conditions))
                           .order_by(Order.updated_at.desc())).first()


def _alert_bytes(session: Session, settings: Settings, draft: Draft, study: Study,
                 destination: Hl7Destination, minutes: float) -> bytes:
    order = _order(session, study)
    info = order_info(session, order, study)
    if info is None:
        raise OutputBuildError("no accession: no HL7 alert can be built")
    patient = patient_info(session, order, study)
    path = session.scalar(select(Instance.path).where(Instance.study_id == study.id)
                          .limit(1))
    header = None
    if path:
        try:
            header = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            header = None
    # The exam's time and procedure as the first draft's alert stated them (headers).
    info = order_from_header(info, header, settings)
    if patient is None:
        patient = patient_from_header(header, study.patient_id)
    return build_ed_alert(DraftReport.model_validate(draft.report), order=info,
                          patient=patient, settings=settings, destination=destination,
                          job_key=(draft.study_uid, draft.version, draft.profile),
                          escalation_minutes=minutes,
                          basis=AlertBasis.from_json(draft.alert_basis))


def _escalate(session: Session, settings: Settings, draft: Draft, study: Study,
              now: datetime) -> list[Delivery]:
    minutes = settings.web.escalate_after_minutes
    firsts = session.scalars(select(Delivery).where(Delivery.draft_id == draft.id,
                                                    Delivery.payload_kind == "alert"))
    rows = []
    for first in firsts:
        dest = settings.destinations.get(first.destination)
        if isinstance(dest, Hl7Destination):
            target = dest
        elif isinstance(dest, FolderDestination):
            target = _GENERIC_ED
        else:
            continue  # destination removed from the configuration since
        try:
            payload = _alert_bytes(session, settings, draft, study, target, minutes)
        except OutputBuildError as exc:
            log.error("draft %d: escalation to %s not built: %s", draft.id, first.destination,
                      exc)
            continue
        row = Delivery(
            draft_id=draft.id, destination=first.destination, kind=first.kind,
            payload_kind="escalation", payload=payload,
            message_id=control_id(draft.study_uid, draft.version, draft.profile, "escalation",
                                  first.destination),
            state="pending", attempts=0, next_attempt_at=now, created_at=now,
            expires_at=now + timedelta(hours=settings.delivery.max_age_hours),
        )
        session.add(row)
        rows.append(row)
    return rows


def escalate_due(session: Session, settings: Settings) -> list[WakeUp]:
    """Escalate every draft past its time (commits); returns the deliveries' wake-ups."""
    now = db_now(session)
    cutoff = now - timedelta(minutes=settings.web.escalate_after_minutes)
    wakes = []
    for draft in _due(session, cutoff):
        study = session.scalars(select(Study).where(Study.study_uid == draft.study_uid)).first()
        if study is None or closed_order(session, draft.study_uid, study.accession):
            continue  # purged, or the RIS has the final word: nobody needs a second alert
        taken = session.execute(update(Draft).where(
            Draft.id == draft.id, Draft.escalated_at.is_(None),
            Draft.acknowledged_at.is_(None)).values(escalated_at=now)
            .execution_options(synchronize_session=False))
        if getattr(taken, "rowcount", 0) != 1:
            continue  # acknowledged or escalated meanwhile
        draft.escalated_at = now  # the UPDATE above bypassed the loaded object
        try:
            rows = _escalate(session, settings, draft, study, now)
        except Exception as exc:  # one bad draft must not stop the others
            # escalated_at stays set: a draft that cannot be built is not retried every
            # pass; the board still shows it overdue and the audit event says why.
            log.exception("draft %d: second alert not built", draft.id)
            rows = []
            audit.record(session, "alert.escalation_failed", study_uid=draft.study_uid,
                         job_id=draft.job_id, draft=draft.id, error=type(exc).__name__)
        audit.record(session, "alert.escalated", study_uid=draft.study_uid,
                     job_id=draft.job_id, draft=draft.id, triage=draft.triage_level,
                     after_minutes=settings.web.escalate_after_minutes,
                     destinations=sorted(r.destination for r in rows))
        session.commit()
        wakes += [WakeUp("delivery", r.id, 0) for r in rows]
        log.warning("draft %d (%s): %s alert not acknowledged, escalated to %d destination(s)",
                    draft.id, draft.study_uid, draft.triage_level, len(rows))
    session.commit()
    return wakes


class Escalator:
    """A `radraft serve` component: `escalate_due` every `interval_s` seconds."""

    name = "ed-escalation"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], enqueue: Enqueue,
                 interval_s: float = 20.0) -> None:
        self._settings, self._sessions, self._enqueue = settings, sessions, enqueue
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        with self._sessions() as session:
            wakes = escalate_due(session, self._settings)
        for wake in wakes:
            self._enqueue(wake)
        return len(wakes)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except SQLAlchemyError:  # the loop outlives a database hiccup
                log.exception("escalation pass failed; retrying")

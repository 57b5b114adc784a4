"""Storage-commitment reports on a new association to the requester (the asynchronous path).

A pending CommitmentRequest whose `next_attempt_at` has passed is claimed (a conditional
UPDATE on its attempts count, so several node processes never send one report twice at
once), its report built from what is durably stored now, and sent as N-EVENT-REPORT on an
association radraft opens to the requester, proposing the SCP role (PS3.4 J.3.3, PS3.7
D.3.3.4). Failures wait `dicom.commitment_retry_s`; after `dicom.commitment_max_attempts`
the row is failed and audited for an admin.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from pynetdicom import AE, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import CommitmentRequest, db_now
from radraft.core.settings import DicomDestination, Settings
from radraft.dicom_node.commitment import PUSH_INSTANCE_UID, Report, build_report, mark_reported
from radraft.dicom_node.storage.index import begin_write

log = logging.getLogger(__name__)


class ReportFailed(Exception):
    pass


def peer_of(settings: Settings, ae_title: str) -> tuple[str, int] | None:
    """Where the AE `ae_title` listens: dicom.commitment_peers, else a dicom destination."""
    peer = settings.dicom.commitment_peers.get(ae_title)
    if peer is not None:
        return peer.host, peer.port
    for destination in settings.destinations.values():
        if isinstance(destination, DicomDestination) and destination.ae_title == ae_title:
            return destination.host, destination.port
    return None


def send_report(settings: Settings, ae_title: str, report: Report) -> None:
    """One N-EVENT-REPORT on a new association to `ae_title`; raises ReportFailed."""
    where = peer_of(settings, ae_title)
    if where is None:
        raise ReportFailed(f"no address for AE {ae_title!r} (dicom.commitment_peers)")
    ae = AE(ae_title=settings.dicom.ae_title)
    ae.add_requested_context(StorageCommitmentPushModel)
    timeout = settings.dicom.network_timeout_s
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    role = build_role(StorageCommitmentPushModel, scp_role=True)
    assoc = ae.associate(where[0], where[1], ae_title=ae_title, ext_neg=[role])
    if not assoc.is_established:
        raise ReportFailed(f"association to {ae_title} at {where[0]}:{where[1]} refused or "
                           "unreachable")
    try:
        status, _ = assoc.send_n_event_report(
            report.dataset(), report.event_type, StorageCommitmentPushModel, PUSH_INSTANCE_UID)
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code != 0x0000:
        raise ReportFailed(f"{ae_title} answered the N-EVENT-REPORT with "
                           f"{'no response' if code is None else f'0x{code:04X}'}")


class CommitmentReporter:
    """A daemon thread sending due reports on new associations."""

    name = "commitment-reporter"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 poll_interval_s: float = 0.5) -> None:
        self.settings = settings
        self.sessions = sessions
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Send every due report once; returns how many were delivered."""
        with self.sessions() as session:
            due = session.execute(select(CommitmentRequest.id, CommitmentRequest.attempts).where(
                CommitmentRequest.state == "pending",
                CommitmentRequest.next_attempt_at <= db_now(session),
            ).order_by(CommitmentRequest.next_attempt_at).limit(50)).all()
        return sum(self._one(request_id, attempts) for request_id, attempts in due)

    def _one(self, request_id: int, attempts: int) -> bool:
        dicom = self.settings.dicom
        with self.sessions() as session:
            begin_write(session)
            now = db_now(session)
            claimed = session.execute(update(CommitmentRequest).where(
                CommitmentRequest.id == request_id, CommitmentRequest.attempts == attempts,
                CommitmentRequest.state == "pending",
            ).values(attempts=attempts + 1,
                     next_attempt_at=now + timedelta(seconds=dicom.commitment_retry_s)))
            session.commit()
            if getattr(claimed, "rowcount", 0) != 1:
                return False
            request = session.get(CommitmentRequest, request_id)
            assert request is not None
            report = build_report(session, request)
            calling = request.calling_aet
        try:
            send_report(self.settings, calling, report)
        except (ReportFailed, OSError, RuntimeError, ValueError) as exc:
            self._failed(request_id, attempts + 1, str(exc))
            return False
        with self.sessions() as session:
            mark_reported(session, request_id, report, "new association")
        log.info("commitment report %d sent to %s: %d committed, %d failed", request_id,
                 calling, len(report.committed), len(report.failed))
        return True

    def _failed(self, request_id: int, attempts: int, error: str) -> None:
        log.warning("commitment report %d (attempt %d): %s", request_id, attempts, error)
        with self.sessions() as session:
            begin_write(session)
            request = session.get(CommitmentRequest, request_id)
            if request is None:
                return
            request.last_error = error[:2000]
            if attempts >= self.settings.dicom.commitment_max_attempts:
                request.state = "failed"
                audit.record(session, "commitment.failed", transaction=request.transaction_uid,
                             calling_aet=request.calling_aet, error=error[:500])
            session.commit()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.run_once()
            except SQLAlchemyError:
                log.exception("commitment reporter pass failed; retrying")

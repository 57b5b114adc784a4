"""Storage Commitment Push Model SCP (PS3.4 Annex J): N-ACTION in, N-EVENT-REPORT out.

The N-ACTION (Action Type 1) is stored as a CommitmentRequest row and answered 0x0000. The
report then goes out on the same association if the requester keeps it open (and has not
asked to release it), else `commitment_report.CommitmentReporter` opens an association to
the requester's AE (`dicom.commitment_peers`, or a `dicom` destination with that AE title)
and retries until `dicom.commitment_max_attempts`. A restart loses nothing: the row is
committed before the N-ACTION response.

An instance is committed (success) when its index row exists, its SOP class agrees and its
file is on disk (rows are committed only after the file's fsync). Otherwise it is listed
in the Failed SOP Sequence with 0x0112 (no such object instance) or 0x0119 (SOP class does
not match the stored instance). Statuses of the N-ACTION itself (PS3.7 C, PS3.4 J.3.2):
0x0123 no such action type, 0x0120 missing Transaction UID / Referenced SOP Sequence,
0x0110 processing failure (the database is unavailable: the modality asks again).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import events as evt
from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT, A_RELEASE
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import CommitmentRequest, Instance, db_now
from radraft.dicom_node.storage.index import begin_write

log = logging.getLogger(__name__)

# The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.5).
PUSH_INSTANCE_UID = "1.2.840.10008.1.20.1.1"
ACTION_REQUEST = 1
EVENT_ALL_SUCCESS, EVENT_SOME_FAILED = 1, 2
NO_SUCH_OBJECT = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
MISSING_ATTRIBUTE, NO_SUCH_ACTION, PROCESSING_FAILURE = 0x0120, 0x0123, 0x0110
# How long the requester gets to release the association after our N-ACTION response
# before we use it for the report (Orthanc and most modalities release at once).
SAME_ASSOCIATION_GRACE_S = 0.3
SAME_ASSOCIATION_TIMEOUT_S = 10.0


@dataclass
class Report:
    transaction_uid: str
    committed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def event_type(self) -> int:
        return EVENT_SOME_FAILED if self.failed else EVENT_ALL_SUCCESS

    def dataset(self) -> Dataset:
        ds = Dataset()
        ds.TransactionUID = self.transaction_uid
        if self.committed:
            ds.ReferencedSOPSequence = [_ref(c, i) for c, i in self.committed]
        if self.failed:
            items = []
            for sop_class, sop_uid, reason in self.failed:
                item = _ref(sop_class, sop_uid)
                item.FailureReason = reason
                items.append(item)
            ds.FailedSOPSequence = items
        return ds


def _ref(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def _stored(session: Session, sop_uids: list[str]) -> dict[str, tuple[str, str]]:
    """sop uid -> (sop class, path) of the index rows, in chunks (a request may list
    thousands of instances)."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(sop_uids), 500):
        chunk = sop_uids[start:start + 500]
        for sop_uid, sop_class, path in session.execute(select(
                Instance.sop_uid, Instance.sop_class_uid, Instance.path).where(
                Instance.sop_uid.in_(chunk))):
            found[sop_uid] = (sop_class, path)
    return found


def build_report(session: Session, request: CommitmentRequest) -> Report:
    """What the node holds durably of the request's instances, now."""
    report = Report(request.transaction_uid)
    stored = _stored(session, [sop_uid for _cls, sop_uid in request.items])
    for sop_class, sop_uid in request.items:
        row = stored.get(sop_uid)
        if row is None or not Path(row[1]).is_file():
            report.failed.append((sop_class, sop_uid, NO_SUCH_OBJECT))
        elif sop_class and row[0] != sop_class:
            report.failed.append((sop_class, sop_uid, CLASS_INSTANCE_CONFLICT))
        else:
            report.committed.append((sop_class or row[0], sop_uid))
    return report


def mark_reported(session: Session, request_id: int, report: Report, via: str) -> None:
    """Record a delivered report (commits)."""
    begin_write(session)
    request = session.get(CommitmentRequest, request_id)
    if request is None or request.state == "reported":
        session.commit()
        return
    request.state, request.reported_at = "reported", db_now(session)
    request.result = {"success": len(report.committed), "failure": len(report.failed),
                      "via": via}
    audit.record(session, "commitment.reported", transaction=request.transaction_uid,
                 calling_aet=request.calling_aet, success=len(report.committed),
                 failure=len(report.failed), via=via)
    session.commit()


def _parse_items(info: Dataset) -> list[list[str]]:
    items = []
    for ref in info.get("ReferencedSOPSequence", None) or []:
        sop_uid = str(ref.get("ReferencedSOPInstanceUID", "") or "")
        if sop_uid:
            items.append([str(ref.get("ReferencedSOPClassUID", "") or ""), sop_uid])
    return items


class CommitmentHandler:
    """EVT_N_ACTION: store the request, answer, then report on the same association."""

    def __init__(self, sessions: sessionmaker[Session], *, retry_s: float) -> None:
        self.sessions = sessions
        self.retry_s = retry_s

    def handlers(self) -> list[tuple[Any, Any]]:
        return [(evt.EVT_N_ACTION, self.on_action)]

    def on_action(self, event: evt.Event) -> tuple[int, Dataset | None]:
        request: Any = event.request
        calling = str(event.assoc.requestor.ae_title).strip()
        if request.ActionTypeID != ACTION_REQUEST:
            return NO_SUCH_ACTION, None
        try:
            info = event.action_information
            transaction = str(info.get("TransactionUID", "") or "")
            items = _parse_items(info)
            if not transaction or not items:
                log.warning("storage commitment from %s: no Transaction UID or no instances",
                            calling)
                return MISSING_ATTRIBUTE, None
            request_id = self._store(calling, transaction, items)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            log.error("storage commitment from %s failed: %s", calling, exc)
            return PROCESSING_FAILURE, None
        log.info("storage commitment %s from %s: %d instance(s)", transaction, calling,
                 len(items))
        threading.Thread(target=self._report_here, args=(event.assoc, request_id),
                         name="commitment-report", daemon=True).start()
        return 0x0000, None

    def _store(self, calling: str, transaction: str, items: list[list[str]]) -> int:
        with self.sessions() as session:
            begin_write(session)
            now = db_now(session)
            row = session.scalars(select(CommitmentRequest).where(
                CommitmentRequest.calling_aet == calling[:16],
                CommitmentRequest.transaction_uid == transaction)).first()
            if row is None:
                row = CommitmentRequest(transaction_uid=transaction, calling_aet=calling[:16],
                                        requested_at=now)
                session.add(row)
            # Asked again: report again (the first report may never have reached it).
            row.items, row.state, row.attempts, row.reported_at = items, "pending", 0, None
            # The same association is tried first; the reporter waits for it.
            row.next_attempt_at = now + timedelta(seconds=self.retry_s)
            session.flush()
            audit.record(session, "commitment.requested", transaction=transaction,
                         calling_aet=calling, instances=len(items))
            session.commit()
            return row.id

    def _report_here(self, assoc: Any, request_id: int) -> None:
        """Send the report on the requester's association, if it keeps it open."""
        threading.Event().wait(SAME_ASSOCIATION_GRACE_S)
        try:
            if not assoc.is_established or isinstance(
                    assoc.dul.peek_next_pdu(), A_RELEASE | A_ABORT | A_P_ABORT):
                raise RuntimeError("the requester released the association")
            with self.sessions() as session:
                request = session.get(CommitmentRequest, request_id)
                if request is None or request.state != "pending":
                    return
                report = build_report(session, request)
            timeout, assoc.dimse_timeout = assoc.dimse_timeout, SAME_ASSOCIATION_TIMEOUT_S
            try:
                status, _ = assoc.send_n_event_report(
                    report.dataset(), report.event_type, StorageCommitmentPushModel,
                    PUSH_INSTANCE_UID)
            finally:
                assoc.dimse_timeout = timeout
            if getattr(status, "Status", None) != 0x0000:
                raise RuntimeError(f"N-EVENT-REPORT answered {status}")
            with self.sessions() as session:
                mark_reported(session, request_id, report, "same association")
        except (RuntimeError, OSError, AttributeError) as exc:
            log.info("commitment report %d: not on the same association (%s); a new one",
                     request_id, exc)
            self._hand_over(request_id)
        except SQLAlchemyError as exc:
            log.error("commitment report %d: %s; the reporter retries", request_id, exc)

    def _hand_over(self, request_id: int) -> None:
        """Make the row due now for the reporter (a new association)."""
        try:
            with self.sessions() as session:
                begin_write(session)
                session.execute(update(CommitmentRequest).where(
                    CommitmentRequest.id == request_id, CommitmentRequest.state == "pending",
                ).values(next_attempt_at=db_now(session)))
                session.commit()
        except SQLAlchemyError as exc:
            log.error("commitment report %d: %s; sent when its retry time comes",
                      request_id, exc)

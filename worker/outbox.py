"""The outbox: Delivery rows hold built bytes per destination; `deliver` sends one row.

Rules: success and C-STORE warnings are delivered; transient failures retry with back-off
and jitter until `expires_at` (then "expired"); permanent ones stop at once ("failed", for an
admin). Only the failed rows are re-sent, with their stored bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import Delivery, Draft, Study, db_now
from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError
from radraft.core.settings import (
    DicomDestination,
    DicomwebDestination,
    FolderDestination,
    Hl7Destination,
    Settings,
)
from radraft.worker.backoff import next_attempt
from radraft.worker.jobs import closed_order
from radraft.worker.senders import SUFFIX, send_dicom, send_dicomweb, send_hl7, write_folder

log = logging.getLogger(__name__)

# A claimed folder row is not re-sent by the sweeper for this long (a worker killed
# mid-write); network rows for three times their destination's timeout (association, then
# the send, then the release: none can take longer than its timeout).
FOLDER_LEASE_S = 60.0


def claim_lease_s(settings: Settings, destination: str) -> float:
    dest = settings.destinations.get(destination)
    if isinstance(dest, DicomDestination | Hl7Destination | DicomwebDestination):
        return 3 * dest.timeout_s + 5
    return FOLDER_LEASE_S


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One built output: what it is, its bytes, its deterministic id (SOP UID, control id)."""

    payload_kind: str
    payload: bytes
    message_id: str
    # Built for one destination only (HL7 carries the receiver in MSH); None: for any.
    destination: str | None = None


def add_deliveries(
    session: Session, settings: Settings, draft: Draft, items: list[OutboxItem],
    destinations: list[str], now: datetime,
) -> list[Delivery]:
    """Outbox rows for `items` x `destinations`, by kind: DICOM objects to dicom peers,
    HL7 built for a peer to that peer, the generic copies of everything to folders.
    Added to `session`; the caller commits with the Draft row."""
    rows: list[Delivery] = []
    expires = now + timedelta(hours=settings.delivery.max_age_hours)
    for name in destinations:
        dest = settings.destinations[name]
        for item in items:
            if item.destination is not None and item.destination != name:
                continue
            is_dicom_peer = isinstance(dest, DicomDestination | DicomwebDestination)
            if is_dicom_peer and item.payload_kind not in ("sr", "tid1500", "kos"):
                continue
            if isinstance(dest, Hl7Destination) and item.destination != name:
                continue  # HL7 is built per receiver (MSH-5/6, result status)
            row = Delivery(
                draft=draft, destination=name, kind=dest.kind, payload_kind=item.payload_kind,
                payload=item.payload, message_id=item.message_id, state="pending",
                attempts=0, next_attempt_at=now + timedelta(
                    seconds=settings.jobs.redeliver_after_s),
                expires_at=expires, created_at=now,
            )
            session.add(row)
            rows.append(row)
    return rows


def _claim(
    session: Session, settings: Settings, delivery_id: int, attempts: int,
) -> Delivery | None:
    now = db_now(session)
    destination = session.scalar(select(Delivery.destination).where(Delivery.id == delivery_id))
    if destination is None:
        return None
    lease = claim_lease_s(settings, destination)
    result = session.execute(update(Delivery).where(
        Delivery.id == delivery_id, Delivery.attempts == attempts, Delivery.state == "pending",
    ).values(attempts=attempts + 1, next_attempt_at=now + timedelta(seconds=lease))
     .execution_options(synchronize_session=False))
    session.commit()
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get(Delivery, delivery_id, populate_existing=True)


def _send(settings: Settings, row: Delivery, study_uid: str) -> str:
    dest = settings.destinations.get(row.destination)
    if dest is None:
        raise PermanentDeliveryError(f"destination {row.destination!r} is no longer configured")
    if isinstance(dest, DicomDestination):
        return send_dicom(dest, settings, row.payload)
    if isinstance(dest, Hl7Destination):
        return send_hl7(dest, row.payload)
    if isinstance(dest, DicomwebDestination):
        # message_id is the object's SOP Instance UID (derived from the job key).
        return send_dicomweb(dest, row.payload, row.message_id)
    assert isinstance(dest, FolderDestination)
    name = f"{row.payload_kind}-{row.message_id}{SUFFIX.get(row.payload_kind, '.bin')}"
    return f"written {write_folder(dest, study_uid, name, row.payload)}"


def deliver(
    sessions: sessionmaker[Session], settings: Settings, delivery_id: int, attempts: int,
) -> str:
    """Send one outbox row for the attempt `attempts`; returns its new state."""
    with sessions() as session:
        row = _claim(session, settings, delivery_id, attempts)
        if row is None:
            return "not-due"  # a duplicate wake-up, or the row is settled
        draft = row.draft
        study = session.query(Study).filter_by(study_uid=draft.study_uid).first()
        if closed_order(session, draft.study_uid, study.accession if study else ""):
            row.state = "cancelled"
            row.last_error = "order cancelled or final at the RIS"
            audit.record(session, "delivery.cancelled", study_uid=draft.study_uid,
                         job_id=draft.job_id, delivery=row.id, destination=row.destination)
            session.commit()
            return row.state
        try:
            outcome = _send(settings, row, draft.study_uid)
        except PermanentDeliveryError as exc:
            row.state, row.last_error = "failed", str(exc)
            row.next_attempt_at = None
            audit.record(session, "delivery.failed", study_uid=draft.study_uid,
                         job_id=draft.job_id, delivery=row.id, destination=row.destination,
                         payload=row.payload_kind, error=str(exc))
            log.error("delivery %d to %s failed permanently: %s", row.id, row.destination, exc)
        except TransientDeliveryError as exc:
            now = db_now(session)
            row.last_error = str(exc)
            expires = row.expires_at
            if expires is not None and now >= expires:
                row.state, row.next_attempt_at = "expired", None
                audit.record(session, "delivery.expired", study_uid=draft.study_uid,
                             job_id=draft.job_id, delivery=row.id,
                             destination=row.destination, error=str(exc))
            else:
                row.next_attempt_at = next_attempt(
                    now, row.attempts, base_s=settings.delivery.base_backoff_s,
                    cap_s=settings.delivery.max_backoff_s,
                )
            log.warning("delivery %d to %s: %s (attempt %d)", row.id, row.destination, exc,
                        row.attempts)
        else:
            row.state, row.last_error = "delivered", ""
            row.delivered_at = db_now(session)
            row.next_attempt_at = None
            audit.record(session, "delivery.delivered", study_uid=draft.study_uid,
                         job_id=draft.job_id, delivery=row.id, destination=row.destination,
                         payload=row.payload_kind, outcome=outcome)
        session.commit()
        return row.state

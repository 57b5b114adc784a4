"""Modality Performed Procedure Step SCP (PS3.4 Annex F): N-CREATE and N-SET, stored durably.

Statuses (PS3.4 F.7.2.1.2 / F.7.2.2.2, PS3.7 C):
- 0x0000 success; the row is committed before the response goes out;
- 0x0106 invalid attribute value: an N-CREATE not IN PROGRESS, an unknown status value;
- 0x0110 processing failure, "Performed Procedure Step object may no longer be updated":
  an N-SET on a step already COMPLETED or DISCONTINUED (a second COMPLETED included);
- 0x0111 duplicate SOP instance: an N-CREATE for a step that exists;
- 0x0112 no such SOP instance: an N-SET for a step never created;
- 0x0120 missing attribute: no Study Instance UID in the Scheduled Step Attributes Sequence;
- 0x0110 also when the database is unavailable (the modality retries).

The step's own attributes are kept as DICOM JSON; N-SET replaces whole attributes (a
sequence is sent whole, PS3.4 F.7.2.2.2). Only ids and statuses are logged, never names.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import events as evt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import MppsInstance, MppsStep, db_now
from radraft.dicom_node.storage.index import begin_write

log = logging.getLogger(__name__)

SUCCESS = 0x0000
INVALID_VALUE = 0x0106
NO_LONGER_UPDATABLE = 0x0110  # also "processing failure"
DUPLICATE = 0x0111
NO_SUCH_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120

IN_PROGRESS, COMPLETED, DISCONTINUED = "IN PROGRESS", "COMPLETED", "DISCONTINUED"
STATES = frozenset({IN_PROGRESS, COMPLETED, DISCONTINUED})
FINAL = frozenset({COMPLETED, DISCONTINUED})


class StepRefused(Exception):
    """A request answered with a failure status (the message says why, for the log)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StepRef:
    series_uid: str
    sop_class_uid: str
    sop_uid: str


def listed_images(ds: Dataset) -> list[StepRef]:
    """Performed Series Sequence > Referenced Image Sequence. Non-image references (dose SRs,
    often sent elsewhere) are not waited on."""
    refs: dict[str, StepRef] = {}
    for series in ds.get("PerformedSeriesSequence", None) or []:
        series_uid = str(series.get("SeriesInstanceUID", "") or "")
        for image in series.get("ReferencedImageSequence", None) or []:
            sop_uid = str(image.get("ReferencedSOPInstanceUID", "") or "")
            if sop_uid:
                refs[sop_uid] = StepRef(
                    series_uid, str(image.get("ReferencedSOPClassUID", "") or ""), sop_uid)
    return list(refs.values())


def _study_of(ds: Dataset) -> tuple[str, str]:
    items = ds.get("ScheduledStepAttributesSequence", None) or []
    if not items:
        raise StepRefused(MISSING_ATTRIBUTE, "no Scheduled Step Attributes Sequence")
    first = items[0]
    study_uid = str(first.get("StudyInstanceUID", "") or "")
    if not study_uid:
        raise StepRefused(MISSING_ATTRIBUTE, "no Study Instance UID in the scheduled step")
    return study_uid, str(first.get("AccessionNumber", "") or "")


def _reason(ds: Dataset) -> tuple[str, str]:
    """The discontinuation reason (CID 9300) as code value and meaning, if any."""
    items = ds.get("PerformedProcedureStepDiscontinuationReasonCodeSequence", None) or []
    if not items:
        return "", ""
    code = items[0]
    value = str(code.get("CodeValue", "") or "")
    scheme = str(code.get("CodingSchemeDesignator", "") or "")
    return (f"{scheme}:{value}" if scheme else value)[:64], str(
        code.get("CodeMeaning", "") or "")[:128]


def _replace_refs(session: Session, step: MppsStep, ds: Dataset) -> int:
    session.execute(delete(MppsInstance).where(MppsInstance.step_id == step.id))
    refs = listed_images(ds)
    session.add_all(MppsInstance(step_id=step.id, series_uid=r.series_uid,
                                 sop_class_uid=r.sop_class_uid, sop_uid=r.sop_uid)
                    for r in refs)
    return len(refs)


def create_step(session: Session, sop_uid: str, ds: Dataset, calling_aet: str) -> MppsStep:
    """Store a new step from an N-CREATE (commits); raises StepRefused."""
    status = str(ds.get("PerformedProcedureStepStatus", "") or "")
    if status != IN_PROGRESS:
        raise StepRefused(INVALID_VALUE, f"N-CREATE with status {status!r}, not IN PROGRESS")
    study_uid, accession = _study_of(ds)
    begin_write(session)
    now = db_now(session)
    if session.scalar(select(MppsStep.id).where(MppsStep.sop_uid == sop_uid)) is not None:
        raise StepRefused(DUPLICATE, f"step {sop_uid} exists")
    step = MppsStep(
        sop_uid=sop_uid, study_uid=study_uid, accession=accession[:64],
        modality=str(ds.get("Modality", "") or "")[:16], status=IN_PROGRESS,
        calling_aet=calling_aet[:16], dataset=json.dumps(ds.to_json_dict()),
        created_at=now, updated_at=now,
    )
    session.add(step)
    session.flush()
    listed = _replace_refs(session, step, ds)
    audit.record(session, "mpps.created", study_uid=study_uid, step=sop_uid,
                 calling_aet=calling_aet, listed=listed)
    session.commit()
    return step


def set_step(session: Session, sop_uid: str, changes: Dataset) -> MppsStep:
    """Apply an N-SET to a stored step (commits); raises StepRefused."""
    new_status = changes.get("PerformedProcedureStepStatus", None)
    if new_status is not None and str(new_status) not in STATES:
        raise StepRefused(INVALID_VALUE, f"unknown step status {str(new_status)!r}")
    begin_write(session)
    step = session.scalars(
        select(MppsStep).where(MppsStep.sop_uid == sop_uid).with_for_update()
    ).first()
    if step is None:
        raise StepRefused(NO_SUCH_INSTANCE, f"no step {sop_uid}")
    if step.status in FINAL:
        raise StepRefused(NO_LONGER_UPDATABLE, f"step {sop_uid} is {step.status} already")
    ds = Dataset.from_json(step.dataset)
    for element in changes:
        ds[element.tag] = element
    now = db_now(session)
    step.dataset = json.dumps(ds.to_json_dict())
    step.updated_at = now
    listed = _replace_refs(session, step, ds)
    if new_status is not None:
        step.status = str(new_status)
    if step.status in FINAL:
        step.final_at = now
        if step.status == DISCONTINUED:
            step.discontinued_code, step.discontinued_meaning = _reason(ds)
    audit.record(session, f"mpps.{step.status.lower().replace(' ', '_')}",
                 study_uid=step.study_uid, step=sop_uid, listed=listed,
                 reason=step.discontinued_code or None)
    session.commit()
    return step


class MppsHandlers:
    """EVT_N_CREATE and EVT_N_SET handlers bound to one database."""

    def __init__(self, sessions: sessionmaker[Session], *, uid_root: str) -> None:
        self.sessions = sessions
        self.uid_root = uid_root

    def handlers(self) -> list[tuple[Any, Any]]:
        return [(evt.EVT_N_CREATE, self.on_create), (evt.EVT_N_SET, self.on_set)]

    def on_create(self, event: evt.Event) -> tuple[int, Dataset | None]:
        request: Any = event.request
        calling = str(event.assoc.requestor.ae_title).strip()
        given = str(request.AffectedSOPInstanceUID or "")
        # PS3.7 10.1.5.1.4: with no UID in the request the SCP chooses one and returns it.
        sop_uid = given or generate_uid(prefix=None if self.uid_root == "2.25"
                                        else self.uid_root.rstrip(".") + ".")
        try:
            ds = event.attribute_list
            with self.sessions() as session:
                step = create_step(session, sop_uid, ds, calling)
        except StepRefused as exc:
            log.warning("MPPS N-CREATE %s from %s refused 0x%04X: %s", sop_uid, calling,
                        exc.status, exc)
            return exc.status, None
        except IntegrityError:  # created concurrently by another association
            return DUPLICATE, None
        except (SQLAlchemyError, OSError, ValueError) as exc:
            log.error("MPPS N-CREATE %s from %s failed: %s", sop_uid, calling, exc)
            return NO_LONGER_UPDATABLE, None
        log.info("MPPS %s IN PROGRESS for study %s (%s)", sop_uid, step.study_uid, calling)
        if given:
            return SUCCESS, None
        reply = Dataset()
        reply.AffectedSOPInstanceUID = sop_uid
        return SUCCESS, reply

    def on_set(self, event: evt.Event) -> tuple[int, Dataset | None]:
        request: Any = event.request
        calling = str(event.assoc.requestor.ae_title).strip()
        sop_uid = str(request.RequestedSOPInstanceUID or "")
        try:
            changes = event.attribute_list
            with self.sessions() as session:
                step = set_step(session, sop_uid, changes)
        except StepRefused as exc:
            log.warning("MPPS N-SET %s from %s refused 0x%04X: %s", sop_uid, calling,
                        exc.status, exc)
            return exc.status, None
        except (SQLAlchemyError, OSError, ValueError) as exc:
            log.error("MPPS N-SET %s from %s failed: %s", sop_uid, calling, exc)
            return NO_LONGER_UPDATABLE, None
        log.info("MPPS %s %s for study %s", sop_uid, step.status, step.study_uid)
        return SUCCESS, None

"""Final radiology reports as HL7 ORU^R01 (OBR-25 F), the way a RIS sends them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from radraft.ehr.intake import intake
from radraft.ehr.store import store_batch


def final_oru(accession: str, text: str, control_id: str, *, patient_id: str = "Q1",
              status: str = "F") -> bytes:
    """An ORU^R01 whose OBX-5 TX rows carry the report, one line each."""
    segments = [
        f"MSH|^~\\&|RIS|HOSP|RADRAFT|HOSP|20261206101500||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|||{patient_id}^^^HOSP||TEST^QUALITY||19700101|F",
        f"OBR|1|P{accession}|F{accession}|CT^CT STUDY|||20261206100000|||||||||"
        f"||{accession}|||||||{status}",
    ]
    for number, line in enumerate(text.splitlines(), 1):
        segments.append(f"OBX|{number}|TX|18782-3^Study observation^LN|{number}|{line}||||||"
                        f"{status}")
    return ("\r".join(segments) + "\r").encode()


def store_message(session: Session, raw: bytes) -> bytes:
    """Store and apply one message as the listener does; returns its ACK."""
    item = intake(raw, processing_ids=frozenset({"P"}))
    [outcome] = store_batch(session, [(item, raw, "test")])
    session.commit()
    return outcome.ack

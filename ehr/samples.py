"""Small generated HL7 messages (demo and tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def demo_messages(
    *, accession: str, patient_id: str, now: datetime | None = None,
) -> list[bytes]:
    """An ORM^O01 order for `accession` and an ORU^R01 creatinine result taken an hour before
    `now` (default: the current time, so the lab falls within the profiles' recency window)."""
    now = now or datetime.now(UTC)
    sent, taken = now.strftime("%Y%m%d%H%M%S"), (now - timedelta(hours=1)).strftime(
        "%Y%m%d%H%M%S")
    pid = f"PID|1||{patient_id}^^^HOSP||DEMO^PATIENT||19600101|F"
    order = "\r".join([
        f"MSH|^~\\&|RIS|HOSP|RADRAFT|HOSP|{sent}||ORM^O01|ORM{accession}|P|2.3",
        pid, "PV1|1|E|ED^01", f"ORC|NW|P{accession}|F{accession}||SC||^^^^^S",
        f"OBR|1|P{accession}|F{accession}|CTABD^CT abdomen||||||||||||||{accession}"
        "|||||||||||||^Abdominal pain, suspected appendicitis"]) + "\r"
    lab = "\r".join([
        f"MSH|^~\\&|LAB|HOSP|RADRAFT|HOSP|{sent}||ORU^R01|LAB{accession}|P|2.5.1",
        pid, f"OBR|1||L{accession}|CHEM^Chemistry",
        f"OBX|1|NM|2160-0^Creatinine^LN||1.1|mg/dL|0.6-1.2|N|||F|||{taken}"]) + "\r"
    return [order.encode(), lab.encode()]

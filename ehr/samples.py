"""Small generated HL7 messages (demo and tests)."""

from __future__ import annotations


def demo_messages(*, accession: str, patient_id: str) -> list[bytes]:
    """An ORM^O01 order for `accession` and an ORU^R01 creatinine result."""
    pid = f"PID|1||{patient_id}^^^HOSP||DEMO^PATIENT||19600101|F"
    order = "\r".join([
        f"MSH|^~\\&|RIS|HOSP|RADRAFT|HOSP|20260101120000||ORM^O01|ORM{accession}|P|2.3",
        pid, "PV1|1|E|ED^01", f"ORC|NW|P{accession}|F{accession}||SC||^^^^^S",
        f"OBR|1|P{accession}|F{accession}|CTABD^CT abdomen||||||||||||||{accession}"
        "|||||||||||||^Abdominal pain, suspected appendicitis"]) + "\r"
    lab = "\r".join([
        f"MSH|^~\\&|LAB|HOSP|RADRAFT|HOSP|20260101110000||ORU^R01|LAB{accession}|P|2.5.1",
        pid, f"OBR|1||L{accession}|CHEM^Chemistry",
        "OBX|1|NM|2160-0^Creatinine^LN||1.1|mg/dL|0.6-1.2|N|||F|||20260101105000"]) + "\r"
    return [order.encode(), lab.encode()]

"""Clinical context for a study: indication, priority, recent labs, prior impressions.

Age and sex only: never the patient name or birth date.

Identity: the order belongs to the study when its accession AND (when the order carries one)
its Study Instance UID agree with the study, and its PID-3 (+ assigning authority) agrees with
the study's PatientID (+ Issuer of Patient ID). Any disagreement attaches no EHR context and
flags the study for an admin (`Study.admin_flag`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from radraft.core.db import LabResult, Order, Patient, PriorReport, Study
from radraft.core.settings import ProfileSettings


@dataclass
class ClinicalContext:
    indication: str = ""
    priority: str = ""
    source: str = ""  # where the context came from ("order <accession>" or "")
    department: str = ""
    age_years: int | None = None
    sex: str = ""
    labs: list[str] = field(default_factory=list)
    prior_impressions: list[str] = field(default_factory=list)
    flag: str = ""  # why no context was attached (identity mismatch)
    # The same as data, for the audit trail (codes, values, times; no names).
    lab_rows: list[dict[str, str]] = field(default_factory=list)
    prior_rows: list[dict[str, str]] = field(default_factory=list)

    def as_text(self, budget_chars: int) -> str:
        """Whole lines, most important first, within `budget_chars` (a line that does not fit
        is left out, never cut in the middle, except the first impression that is shortened)."""
        lines: list[str] = []
        if self.indication:
            lines.append(f"Indication: {self.indication}")
        if self.priority:
            ordered = f", ordered from {self.department}" if self.department else ""
            lines.append(f"Priority: {self.priority} ({self.source}{ordered})")
        if self.age_years is not None or self.sex:
            lines.append(f"Patient: {self.age_years if self.age_years is not None else '?'} "
                         f"years, sex {self.sex or 'unknown'}")
        lines += [f"Lab: {lab}" for lab in self.labs]
        lines += [f"Prior impression: {imp}" for imp in self.prior_impressions]
        kept: list[str] = []
        for line in lines:
            room = budget_chars - len("\n".join(kept)) - (1 if kept else 0)
            if len(line) <= room:
                kept.append(line)
            elif line.startswith("Prior impression:") and room > 40:
                kept.append(line[: room - 1] + "…")
        return "\n".join(kept)

    def as_audit(self) -> dict[str, Any]:
        return {"indication": self.indication, "priority": self.priority, "source": self.source,
                "department": self.department, "labs": self.lab_rows,
                "priors": self.prior_rows, "flag": self.flag}


def _age(birth_date: str, now: datetime) -> int | None:
    try:
        born = datetime.strptime(birth_date[:8], "%Y%m%d")
    except ValueError:
        return None
    return now.year - born.year - ((now.month, now.day) < (born.month, born.day))


def identity_mismatch(study: Study, order: Order, patient: Patient | None) -> str:
    """Why `order` is not `study`'s ("" when it is)."""
    if order.study_uid and order.study_uid != study.study_uid:
        return f"HL7 order {order.accession}: Study Instance UID differs from DICOM"
    if study.accession and order.accession != study.accession:
        return f"HL7 order {order.accession}: accession differs from DICOM"
    if patient is not None and study.patient_id and (
            study.patient_id != patient.patient_id or (
                study.issuer_of_patient_id and patient.issuer
                and study.issuer_of_patient_id != patient.issuer)):
        return f"HL7 order {order.accession}: patient identity differs from DICOM"
    return ""


def _survivor(session: Session, patient: Patient | None) -> Patient | None:
    """Follow A40 merges to the patient that survived (a few hops at most)."""
    for _ in range(8):
        if patient is None or patient.merged_into_id is None:
            return patient
        patient = session.get(Patient, patient.merged_into_id)
    return patient


def _wanted(lab: LabResult, tests: list[str]) -> bool:
    """A profile's test list names LOINC (or local) codes or words of the test name."""
    if not tests:
        return True
    code, name = lab.code.lower(), lab.name.lower()
    return any(t.lower() == code or t.lower() in name for t in tests)


def clinical_context(
    session: Session, study_uid: str, *, profile: ProfileSettings, now: datetime,
) -> ClinicalContext:
    """The order's context for `study_uid`; empty (and Study.admin_flag set) on mismatch."""
    study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
    conditions = [Order.study_uid == study_uid]
    if study is not None and study.accession:
        conditions.append(Order.accession == study.accession)
    order = session.scalars(select(Order).where(or_(*conditions))
                            .order_by(Order.updated_at.desc())).first()
    if order is None:
        return ClinicalContext()
    patient = session.get(Patient, order.patient_ref) if order.patient_ref else None
    reason = identity_mismatch(study, order, patient) if study is not None else ""
    if reason:
        assert study is not None
        study.admin_flag = reason
        session.commit()
        return ClinicalContext(flag=reason)
    ctx = ClinicalContext(indication=order.reason, priority=order.priority,
                          source=f"order {order.accession}",
                          department=order.department or order.location)
    patient = _survivor(session, patient)
    if patient is None:
        return ctx
    ctx.age_years, ctx.sex = _age(patient.birth_date, now), patient.sex
    merged = select(Patient.id).where(Patient.merged_into_id == patient.id)
    owners = or_(LabResult.patient_ref == patient.id, LabResult.patient_ref.in_(merged))
    since = now - timedelta(days=profile.lab_window_days)
    for lab in session.scalars(select(LabResult).where(owners).order_by(
            LabResult.observed_at.desc())):
        if _wanted(lab, profile.labs) and (lab.observed_at is None or lab.observed_at >= since):
            flag = f" [{lab.abnormal_flags}]" if lab.abnormal_flags not in ("", "N") else ""
            ranges = f" (ref {lab.reference_range})" if lab.reference_range else ""
            ctx.labs.append(f"{lab.name or lab.code} {lab.value} {lab.units}{ranges}{flag}"
                            .replace("  ", " ").strip())
            ctx.lab_rows.append({
                "code": lab.code, "system": lab.coding_system, "value": lab.value,
                "units": lab.units, "range": lab.reference_range, "flags": lab.abnormal_flags,
                "observed_at": lab.observed_at.isoformat() if lab.observed_at else ""})
    prior_owner = or_(PriorReport.patient_ref == patient.id,
                      PriorReport.patient_ref.in_(merged))
    priors = session.scalars(select(PriorReport).where(
        prior_owner, PriorReport.accession != order.accession,
    ).order_by(PriorReport.observed_at.desc()).limit(profile.max_priors))
    for prior in priors:
        ctx.prior_impressions.append(prior.impression or prior.text[:300])
        ctx.prior_rows.append({
            "accession": prior.accession, "status": prior.result_status,
            "observed_at": prior.observed_at.isoformat() if prior.observed_at else ""})
    return ctx

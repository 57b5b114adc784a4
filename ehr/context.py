"""Clinical context for a study: indication, priority, recent labs, prior impressions.

Age and sex only: never the patient name or birth date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radraft.core.db import LabResult, Order, Patient, PriorReport, Study
from radraft.core.settings import ProfileSettings


@dataclass
class ClinicalContext:
    indication: str = ""
    priority: str = ""
    source: str = ""  # where the context came from ("order <accession>" or "")
    age_years: int | None = None
    sex: str = ""
    labs: list[str] = field(default_factory=list)
    prior_impressions: list[str] = field(default_factory=list)
    flag: str = ""  # why no context was attached (identity mismatch)

    def as_text(self, budget_chars: int) -> str:
        lines: list[str] = []
        if self.indication:
            lines.append(f"Indication: {self.indication}")
        if self.priority:
            lines.append(f"Priority: {self.priority} ({self.source})")
        if self.age_years is not None or self.sex:
            lines.append(f"Patient: {self.age_years if self.age_years is not None else '?'} "
                         f"years, sex {self.sex or 'unknown'}")
        lines += [f"Lab: {lab}" for lab in self.labs]
        lines += [f"Prior impression: {imp}" for imp in self.prior_impressions]
        return "\n".join(lines)[:budget_chars]

    def as_audit(self) -> dict[str, Any]:
        return {"indication": self.indication, "priority": self.priority, "source": self.source,
                "labs": len(self.labs), "priors": len(self.prior_impressions), "flag": self.flag}


def _age(birth_date: str, now: datetime) -> int | None:
    try:
        born = datetime.strptime(birth_date[:8], "%Y%m%d")
    except ValueError:
        return None
    return now.year - born.year - ((now.month, now.day) < (born.month, born.day))


def clinical_context(
    session: Session, study_uid: str, *, profile: ProfileSettings, now: datetime,
) -> ClinicalContext:
    """The order's context for `study_uid`; empty (and Study.admin_flag set) on mismatch."""
    study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
    order = session.scalars(select(Order).where(Order.study_uid == study_uid)).first()
    if order is None and study is not None and study.accession:
        order = session.scalars(select(Order).where(Order.accession == study.accession)).first()
    if order is None:
        return ClinicalContext()
    patient = session.get(Patient, order.patient_ref) if order.patient_ref else None
    if study is not None and patient is not None and study.patient_id and (
            study.patient_id != patient.patient_id or (
                study.issuer_of_patient_id and patient.issuer
                and study.issuer_of_patient_id != patient.issuer)):
        study.admin_flag = f"HL7 order {order.accession}: patient identity differs from DICOM"
        session.commit()
        return ClinicalContext(flag=study.admin_flag)
    ctx = ClinicalContext(indication=order.reason, priority=order.priority,
                          source=f"order {order.accession}")
    if patient is None:
        return ctx
    ctx.age_years, ctx.sex = _age(patient.birth_date, now), patient.sex
    since = now - timedelta(days=profile.lab_window_days)
    for lab in session.scalars(select(LabResult).where(
            LabResult.patient_ref == patient.id).order_by(LabResult.observed_at.desc())):
        wanted = not profile.labs or lab.code in profile.labs or lab.name in profile.labs
        if wanted and (lab.observed_at is None or lab.observed_at >= since):
            flag = f" [{lab.abnormal_flags}]" if lab.abnormal_flags not in ("", "N") else ""
            ctx.labs.append(f"{lab.name or lab.code} {lab.value} {lab.units}{flag}".strip())
    priors = session.scalars(select(PriorReport).where(
        PriorReport.patient_ref == patient.id, PriorReport.accession != order.accession,
    ).order_by(PriorReport.observed_at.desc()).limit(profile.max_priors))
    ctx.prior_impressions = [p.impression or p.text[:300] for p in priors]
    return ctx


"""Outbound HL7: the draft as ORU^R01 for the RIS and the triage alert for the ED."""

from radraft.ehr.outbound.alert import AlertBasis, AlertFinding, build_ed_alert
from radraft.ehr.outbound.oru import build_oru
from radraft.ehr.outbound.report_view import ReportView
from radraft.ehr.outbound.types import (
    ExamFacts,
    OrderInfo,
    PatientInfo,
    patient_from_pn,
    patient_from_xpn,
)

__all__ = [
    "AlertBasis", "AlertFinding", "ExamFacts", "OrderInfo", "PatientInfo", "ReportView",
    "build_ed_alert", "build_oru", "patient_from_pn", "patient_from_xpn",
]

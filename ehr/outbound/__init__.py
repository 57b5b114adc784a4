"""Outbound HL7: the draft as ORU^R01 for the RIS and the triage alert for the ED."""

from radraft.ehr.outbound.alert import AlertBasis, AlertFinding, build_ed_alert
from radraft.ehr.outbound.oru import build_oru
from radraft.ehr.outbound.report_view import ReportView
from radraft.ehr.outbound.types import OrderInfo, PatientInfo

__all__ = ["AlertBasis", "AlertFinding", "OrderInfo", "PatientInfo", "ReportView",
           "build_ed_alert", "build_oru"]

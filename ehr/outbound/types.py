"""Plain inputs of the outbound builders, filled by the worker from the ehr store."""

from __future__ import annotations

from dataclasses import dataclass

from radraft.core.types import Priority


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """The imaging order a draft answers (table `imaging_order`, plus the patient's id).

    It also satisfies `radraft.reporting.sr.RequestInfo` (the SR's Referenced Request).
    """

    accession: str
    placer_order_number: str = ""
    filler_order_number: str = ""
    requested_procedure_id: str = ""
    procedure_code: str = ""
    procedure_coding_system: str = ""
    procedure_text: str = ""
    patient_id: str = ""
    patient_id_issuer: str = ""
    priority: Priority = Priority.ROUTINE
    modality: str = ""  # OBR-24 diagnostic service section: CT, MR
    visit_number: str = ""
    patient_class: str = "U"  # PV1-2, HL7 table 0004 (U: unknown)
    location: str = ""
    ordering_provider: str = ""  # XCN as ER7 components ("id^family^given")


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """PID content. PHI: goes into the message only, never into a log line."""

    patient_id: str
    assigning_authority: str = ""
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""  # YYYYMMDD
    sex: str = "U"  # HL7 table 0001: F, M, O, U, A, N

"""Plain inputs of the outbound builders, filled by the worker from the ehr store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

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
    modality: str = ""  # DICOM modality; OBR-24 maps it to HL7 table 0074 (message.py)
    visit_number: str = ""
    patient_class: str = "U"  # PV1-2, HL7 table 0004 (U: unknown)
    location: str = ""
    ordering_provider: str = ""  # XCN as ER7 components ("id^family^given")
    # When the exam was performed (the headers' Study/Series/Acquisition Date and Time):
    # OBR-7 and OBX-14. None: unknown, left empty. `observed_date_only`: the header gave a
    # date without a time (sent as YYYYMMDD, not as a made-up midnight).
    observed_at: datetime | None = None
    observed_date_only: bool = False


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """PID content. PHI: goes into the message only, never into a log line."""

    patient_id: str
    assigning_authority: str = ""
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""  # YYYYMMDD
    sex: str = "U"  # HL7 table 0001: F, M, O, U, A, N
    middle_name: str = ""
    name_suffix: str = ""
    name_prefix: str = ""

    def xpn(self) -> tuple[str, str, str, str, str]:
        """XPN components 1-5: family, given, middle, suffix, prefix."""
        return (self.family_name, self.given_name, self.middle_name, self.name_suffix,
                self.name_prefix)


def patient_from_pn(patient_id: str, pn: str, *, assigning_authority: str = "",
                    birth_date: str = "", sex: str = "") -> PatientInfo:
    """PID content from a DICOM Person Name (Family^Given^Middle^Prefix^Suffix; the first,
    alphabetic, group). Note the order: DICOM puts the prefix before the suffix, XPN after."""
    parts = (pn.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    return PatientInfo(patient_id=patient_id, assigning_authority=assigning_authority,
                       family_name=family, given_name=given, middle_name=middle,
                       name_prefix=prefix, name_suffix=suffix, birth_date=birth_date,
                       sex=sex if sex in SEXES else "U")


def patient_from_xpn(patient_id: str, xpn: str, *, assigning_authority: str = "",
                     birth_date: str = "", sex: str = "") -> PatientInfo:
    """PID content from an XPN as the EHR store keeps it (Family^Given^Middle^Suffix^Prefix)."""
    parts = (xpn.split("^") + [""] * 5)[:5]
    family, given, middle, suffix, prefix = (p.strip() for p in parts)
    return PatientInfo(patient_id=patient_id, assigning_authority=assigning_authority,
                       family_name=family, given_name=given, middle_name=middle,
                       name_prefix=prefix, name_suffix=suffix, birth_date=birth_date,
                       sex=sex if sex in SEXES else "U")


SEXES = frozenset({"F", "M", "O", "U", "A", "N"})


@dataclass(frozen=True, slots=True)
class ExamFacts:
    """What the result says about the exam besides the order: the series read (from the
    headers) and, per finding in the draft's order, where its cited images are."""

    series: Sequence[str] = ()
    finding_places: Sequence[Sequence[str]] = field(default_factory=tuple)
    priors: Sequence[str] = ()  # the prior studies compared (date, modality, series)

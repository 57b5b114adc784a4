"""Document-level attributes every radraft SR/KO object carries beyond highdicom's defaults.

Request context (Referenced Request Sequence), Issuer of Patient ID, local content times
with the Timezone Offset From UTC, equipment and series description.
"""

from __future__ import annotations

import copy
import re
from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from radraft.reporting.sr.common import MANUFACTURER, SOFTWARE_VERSION, BuildContext


class RequestInfo(Protocol):
    """The order an output answers (ehr.outbound.OrderInfo satisfies it structurally)."""

    @property
    def accession(self) -> str: ...
    @property
    def placer_order_number(self) -> str: ...
    @property
    def filler_order_number(self) -> str: ...
    @property
    def requested_procedure_id(self) -> str: ...
    @property
    def procedure_code(self) -> str: ...
    @property
    def procedure_coding_system(self) -> str: ...
    @property
    def procedure_text(self) -> str: ...
    @property
    def patient_id(self) -> str: ...
    @property
    def patient_id_issuer(self) -> str: ...


# Type 2 attributes highdicom copies from the first evidence dataset (patient and study).
_COPIED_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                 "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def header_for_copy(source: Dataset, order: RequestInfo | None) -> Dataset:
    """A copy of the first source whose patient/study Type 2 attributes all exist.

    Real sources omit some (an absent Patient ID or accession); they become empty, and the
    order fills an empty accession.
    """
    header = copy.deepcopy(source)
    _drop_invalid_codes(header)
    for keyword in _COPIED_TYPE2:
        if keyword not in header:
            setattr(header, keyword, "")
    if order is not None and not header.AccessionNumber and order.accession:
        header.AccessionNumber = order.accession[:16]
    for keyword, pattern, separators in (("StudyDate", _DA, ".-"),
                                         ("PatientBirthDate", _DA, ".-"),
                                         ("StudyTime", _TM, ":")):
        value = str(header.get(keyword) or "").strip()
        setattr(header, keyword, _conformant(value, pattern, separators))
    return header


def _valid_code(item: Dataset) -> bool:
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    return bool(value and item.get("CodingSchemeDesignator") and item.get("CodeMeaning"))


def _drop_invalid_codes(header: Dataset) -> None:
    """Code sequences (Procedure Code Sequence, Admitting Diagnoses ...) keep only complete
    code items: an empty item from the modality made every output fail dciodvfy (Type 1
    Code Value / Code Meaning missing). A sequence left empty is removed (they are Type 3
    in the patient and study modules highdicom copies)."""
    for element in list(header):
        keyword = element.keyword
        if element.VR != "SQ" or not keyword.endswith("CodeSequence"):
            continue
        kept = [item for item in element.value if _valid_code(item)]
        if kept:
            element.value = kept
        else:
            del header[element.tag]


_DA = re.compile(r"\d{8}")
_TM = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")


def _conformant(value: str, pattern: re.Pattern[str], separators: str) -> str:
    """A DA/TM value in today's form: ACR-NEMA "14:04:38" / "1997.04.24" lose their
    separators; a value that still does not match becomes empty (Type 2)."""
    value = value.translate(str.maketrans("", "", separators))
    return value if pattern.fullmatch(value) else ""


def requested_procedures(ctx: BuildContext, order: RequestInfo | None) -> list[Dataset] | None:
    """Referenced Request Sequence: the order's accession, order numbers and procedure."""
    source = ctx.sources[0]
    accession = order.accession if order is not None else str(source.get("AccessionNumber", ""))
    if order is None and not accession:
        return None
    item = Dataset()
    item.StudyInstanceUID = ctx.current_study_uid
    item.ReferencedStudySequence = DicomSequence()
    item.AccessionNumber = accession
    item.PlacerOrderNumberImagingServiceRequest = order.placer_order_number if order else ""
    item.FillerOrderNumberImagingServiceRequest = order.filler_order_number if order else ""
    item.RequestedProcedureID = (
        order.requested_procedure_id if order else str(source.get("RequestedProcedureID", ""))
    )
    # The order's procedure, else the header's (facts.procedure says which).
    procedure = ctx.facts.procedure
    item.RequestedProcedureDescription = procedure.meaning[:64]
    codes = DicomSequence()
    if procedure.code and procedure.scheme and procedure.meaning:
        code = Dataset()
        code.CodeValue = procedure.code[:16]
        code.CodingSchemeDesignator = procedure.scheme[:16]
        code.CodeMeaning = procedure.meaning[:64]
        codes.append(code)
    item.RequestedProcedureCodeSequence = codes
    return [item]


def finish_document(ds: Dataset, ctx: BuildContext, *, series_description: str,
                    order: RequestInfo | None) -> None:
    """Set what highdicom leaves out or sets to the host's clock."""
    local = ctx.local_now
    ds.ContentDate = local.strftime("%Y%m%d")
    ds.ContentTime = local.strftime("%H%M%S")
    ds.InstanceCreationDate = ds.ContentDate
    ds.InstanceCreationTime = ds.ContentTime
    ds.SeriesDate = ds.ContentDate
    ds.SeriesTime = ds.ContentTime
    ds.TimezoneOffsetFromUTC = ctx.timezone_offset
    for equipment in ds.get("ContributingEquipmentSequence", []):
        if equipment.get("ManufacturerModelName") == "highdicom":
            # highdicom stamps its own contribution with the host clock: use the build time.
            equipment.ContributionDateTime = local.strftime("%Y%m%d%H%M%S")
    ds.SeriesDescription = series_description[:64]
    if not ds.get("StudyDescription") and ctx.facts.study_description:
        # The KO IOD's study module copy leaves it out; a PACS lists studies by it.
        ds.StudyDescription = ctx.facts.study_description[:64]
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = ctx.model_name[:64]
    ds.SoftwareVersions = [SOFTWARE_VERSION, ctx.model_version[:64]]
    ds.InstitutionName = ctx.settings.site.name[:64]
    issuer = str(ctx.sources[0].get("IssuerOfPatientID", ""))
    if not issuer and order is not None and order.patient_id_issuer \
            and order.patient_id == ds.PatientID:
        issuer = order.patient_id_issuer
    if issuer:
        ds.IssuerOfPatientID = issuer[:64]
    if "ClinicalTrialSponsorName" in ds:
        # Copied from a source that may lack the module's other Type 2 attributes.
        for keyword in ("ClinicalTrialProtocolID", "ClinicalTrialProtocolName",
                        "ClinicalTrialSiteID", "ClinicalTrialSiteName"):
            if keyword not in ds:
                setattr(ds, keyword, "")

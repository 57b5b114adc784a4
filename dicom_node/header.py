"""Read only the header attributes the node indexes, and classify the instance."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from radraft.dicom_node.errors import CannotUnderstand, IdentityMismatch

# Only these tags are read (pydicom stops decoding the rest): cheap on 500 KB images.
_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "PatientID", "IssuerOfPatientID", "AccessionNumber", "StudyDate", "StudyDescription",
    "BodyPartExamined", "InstitutionName", "PatientAge", "PatientBirthDate", "PatientSex",
    "SeriesNumber", "SeriesDescription", "InstanceNumber", "Manufacturer",
]

# SOP classes that are documents or annotations, not images (they never move the version).
_NON_IMAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports (incl. dose SR) and KOS
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, SEG, fiducials
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated PDF/CDA/STL
    "1.2.840.10008.5.1.4.1.1.9.",  # waveforms
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects
    "1.2.840.10008.5.1.4.1.1.200.",  # acquisition protocols
)
_NON_IMAGE_MODALITIES = frozenset({"SR", "KO", "PR", "SEG", "REG", "DOC", "RTSTRUCT", "RTPLAN"})
_AGE = re.compile(r"^(\d{1,3})([DWMY])$")


@dataclass(frozen=True, slots=True)
class InstanceHeader:
    """What the index needs of one instance."""

    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    modality: str
    patient_id: str
    issuer_of_patient_id: str
    accession: str
    study_date: str
    study_description: str
    body_part: str
    institution: str
    patient_age_years: int | None
    patient_sex: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    manufacturer: str

    def is_image(self, uid_root: str) -> bool:
        """Whether this instance counts in the study version (DESIGN.md "Identity")."""
        if self.sop_class_uid.startswith(_NON_IMAGE_PREFIXES):
            return False
        if self.modality.upper() in _NON_IMAGE_MODALITIES:
            return False
        return not self.is_radraft_output(uid_root)

    def is_radraft_output(self, uid_root: str) -> bool:
        """radraft's own objects routed back: our UID root AND our manufacturer."""
        return (
            self.sop_uid.startswith(uid_root + ".")
            and self.manufacturer.strip().lower() == "radraft"
        )


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str:
    value = ds.get(keyword)
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).strip().strip("\x00").strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None  # IS values in the wild carry junk; the index lives without them


def _age_years(ds: Dataset) -> int | None:
    match = _AGE.match(_text(ds, "PatientAge"))
    if match:
        number, unit = int(match.group(1)), match.group(2)
        return number if unit == "Y" else 0
    birth, study = _text(ds, "PatientBirthDate"), _text(ds, "StudyDate")
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
        seen = date(int(study[:4]), int(study[4:6]), int(study[6:8]))
    except ValueError:
        return None
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    return years if years >= 0 else None


def read_header(path: Path, *, affected_class: str, affected_instance: str) -> InstanceHeader:
    """Parse the header of the file at `path` and check its identity against the command.

    Raises CannotUnderstand (0xC000) when it cannot be parsed, IdentityMismatch (0xA900)
    when a UID is missing or differs from the C-STORE command's Affected UIDs.
    """
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS, force=True)
        header = _header_of(ds)
    except Exception as exc:
        # Untrusted bytes: pydicom (and zlib for deflate) raise errors of many types on
        # malformed input; every one of them means "cannot understand" (0xC000).
        raise CannotUnderstand(f"cannot parse dataset: {type(exc).__name__}: {exc}") from exc
    missing = [
        name for name, value in (
            ("SOPInstanceUID", header.sop_uid), ("SOPClassUID", header.sop_class_uid),
            ("StudyInstanceUID", header.study_uid), ("SeriesInstanceUID", header.series_uid),
        ) if not value
    ]
    if missing:
        raise IdentityMismatch(f"dataset lacks {', '.join(missing)}")
    if header.sop_uid != affected_instance.strip():
        raise IdentityMismatch("SOPInstanceUID differs from the Affected SOP Instance UID")
    if header.sop_class_uid != affected_class.strip():
        raise IdentityMismatch("SOPClassUID differs from the Affected SOP Class UID")
    return header


def _header_of(ds: Dataset) -> InstanceHeader:
    meta: Any = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    return InstanceHeader(
        sop_class_uid=_text(ds, "SOPClassUID"),
        sop_uid=_text(ds, "SOPInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        transfer_syntax=transfer_syntax,
        modality=_text(ds, "Modality", 16),
        patient_id=_text(ds, "PatientID"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        accession=_text(ds, "AccessionNumber"),
        study_date=_text(ds, "StudyDate", 8),
        study_description=_text(ds, "StudyDescription", 128),
        body_part=_text(ds, "BodyPartExamined"),
        institution=_text(ds, "InstitutionName", 128),
        patient_age_years=_age_years(ds),
        patient_sex=_text(ds, "PatientSex", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 128),
        instance_number=_int(ds, "InstanceNumber"),
        manufacturer=_text(ds, "Manufacturer"),
    )


def read_stored_header(path: Path) -> InstanceHeader:
    """Header of a file already in the store (index repair): its own UIDs are the identity."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS, force=True)
        header = _header_of(ds)
    except Exception as exc:  # any parse failure of a stored file: see read_header
        raise CannotUnderstand(f"{path}: cannot parse: {type(exc).__name__}: {exc}") from exc
    if not (header.sop_uid and header.study_uid and header.series_uid):
        raise IdentityMismatch(f"{path}: lacks a study, series or SOP instance UID")
    return header

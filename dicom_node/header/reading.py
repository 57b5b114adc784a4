"""Read only the header attributes the node indexes, and classify the instance."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info

from radraft.core.dicom_scan import read_raw_header
from radraft.dicom_node.errors import (
    CannotUnderstand,
    IdentityMismatch,
    InvalidIdentifier,
    StoreRefused,
)
from radraft.dicom_node.header.fields import (
    STOP_TAG,
    TAG_NUMBERS,
    TAGS,
    DatasetFields,
    HeaderFields,
    RawFields,
)
from radraft.dicom_node.header.inflate import DEFLATED, InflateLimits, read_deflated_header

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
# PS3.5 9.1: digits and dots, no empty component, at most 64 characters. Leading zeros in a
# component are invalid too but occur in the wild and are harmless: accepted.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UID_MAX = 64
_IDENTIFIER_MAX = 64  # PatientID, IssuerOfPatientID (LO) and AccessionNumber as indexed
# Defaults for callers without settings (index repair, rules): the settings' defaults.
DEFAULT_LIMITS = InflateLimits(max_bytes=512 << 20, max_ratio=200.0)


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


def _age_years(age: str, birth: str, study: str) -> int | None:
    match = _AGE.match(age)
    if match:
        number, unit = int(match.group(1)), match.group(2)
        return number if unit == "Y" else 0
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
        seen = date(int(study[:4]), int(study[4:6]), int(study[6:8]))
    except ValueError:
        return None
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    return years if years >= 0 else None


def read_header_as_sent(
    path: Path, limits: InflateLimits = DEFAULT_LIMITS,
) -> InstanceHeader:
    """The header of the file at `path`, its identity not yet checked against anything
    (STOW-RS reads the UIDs a file meta leaves out from here).

    Raises CannotUnderstand (0xC000) when it cannot be parsed, InflateLimit (0xA700) for a
    deflated dataset inflating past `limits`.
    """
    return _parsed(path, limits, str(path.name))


def read_header(
    path: Path, *, affected_class: str, affected_instance: str,
    limits: InflateLimits = DEFAULT_LIMITS,
) -> InstanceHeader:
    """Parse the header of the file at `path` and check its identity against the command.

    Raises CannotUnderstand (0xC000) when it cannot be parsed, IdentityMismatch (0xA900)
    when a UID is missing or differs from the C-STORE command's Affected UIDs,
    InvalidIdentifier (0xA900) for an invalid UID or an over-long identifier, InflateLimit
    (0xA700) for a deflated dataset inflating past `limits`.
    """
    header = _parsed(path, limits, str(path.name))
    missing = [
        name for name, value in (
            ("SOPInstanceUID", header.sop_uid), ("SOPClassUID", header.sop_class_uid),
            ("StudyInstanceUID", header.study_uid), ("SeriesInstanceUID", header.series_uid),
        ) if not value
    ]
    if missing:
        raise IdentityMismatch(f"dataset lacks {', '.join(missing)}")
    _check_identifiers(header)
    if header.sop_uid != affected_instance.strip():
        raise IdentityMismatch("SOPInstanceUID differs from the Affected SOP Instance UID")
    if header.sop_class_uid != affected_class.strip():
        raise IdentityMismatch("SOPClassUID differs from the Affected SOP Class UID")
    return header


def _parsed(path: Path, limits: InflateLimits, where: str) -> InstanceHeader:
    try:
        return _header_of(_fields_of(path, limits))
    except StoreRefused:
        raise
    except Exception as exc:
        # Untrusted bytes: pydicom (and zlib for deflate) raise errors of many types on
        # malformed input; every one of them means "cannot understand" (0xC000).
        raise CannotUnderstand(
            f"{where}: cannot parse dataset: {type(exc).__name__}: {exc}") from exc


def _check_identifiers(header: InstanceHeader) -> None:
    """Refuse, never alter, an invalid UID or an identifier longer than the index keeps."""
    for name, value in (
        ("SOPInstanceUID", header.sop_uid), ("SOPClassUID", header.sop_class_uid),
        ("StudyInstanceUID", header.study_uid), ("SeriesInstanceUID", header.series_uid),
    ):
        if len(value) > _UID_MAX or not _UID.match(value):
            raise InvalidIdentifier(f"{name} is not a valid UID ({len(value)} characters)")
    for name, value in (
        ("PatientID", header.patient_id), ("IssuerOfPatientID", header.issuer_of_patient_id),
        ("AccessionNumber", header.accession),
    ):
        if len(value) > _IDENTIFIER_MAX:
            raise InvalidIdentifier(f"{name} longer than {_IDENTIFIER_MAX} characters")


def _fields_of(path: Path, limits: InflateLimits) -> HeaderFields:
    """The fast raw scan when it can read the file, pydicom otherwise (same values);
    deflated datasets inflated within `limits`."""
    raw = read_raw_header(path, stop_at=STOP_TAG)
    if raw is not None:
        return RawFields(raw)
    meta = read_file_meta_info(path)
    if str(getattr(meta, "TransferSyntaxUID", "") or "") in DEFLATED:
        return DatasetFields(read_deflated_header(path, limits, STOP_TAG, TAG_NUMBERS))
    ds = dcmread(path, stop_before_pixels=True, specific_tags=TAGS, force=True)
    return DatasetFields(ds)


def _header_of(fields: HeaderFields) -> InstanceHeader:
    text = fields.text
    return InstanceHeader(
        # Identifiers are read whole (limit None) and checked, never cut.
        sop_class_uid=text("SOPClassUID", None),
        sop_uid=text("SOPInstanceUID", None),
        study_uid=text("StudyInstanceUID", None),
        series_uid=text("SeriesInstanceUID", None),
        transfer_syntax=fields.transfer_syntax,
        modality=text("Modality", 16),
        patient_id=text("PatientID", None),
        issuer_of_patient_id=text("IssuerOfPatientID", None),
        accession=text("AccessionNumber", None),
        study_date=text("StudyDate", 8),
        study_description=text("StudyDescription", 128),
        body_part=text("BodyPartExamined"),
        institution=text("InstitutionName", 128),
        patient_age_years=_age_years(
            text("PatientAge"), text("PatientBirthDate"), text("StudyDate")
        ),
        patient_sex=text("PatientSex", 16),
        series_number=fields.integer("SeriesNumber"),
        series_description=text("SeriesDescription", 128),
        instance_number=fields.integer("InstanceNumber"),
        manufacturer=text("Manufacturer"),
    )


def read_stored_header(path: Path, limits: InflateLimits = DEFAULT_LIMITS) -> InstanceHeader:
    """Header of a file already in the store (index repair): its own UIDs are the identity."""
    header = _parsed(path, limits, str(path))
    if not (header.sop_uid and header.study_uid and header.series_uid):
        raise IdentityMismatch(f"{path}: lacks a study, series or SOP instance UID")
    _check_identifiers(header)
    return header


def read_attributes(path: Path, keywords: list[str]) -> Dataset:
    """A few header attributes of a stored file for display, without inflating a deflated
    dataset beyond its first bytes (pydicom would inflate it whole on every read)."""
    tags = [int(tag_for_keyword(k) or 0) for k in keywords]
    meta = read_file_meta_info(path)
    if str(getattr(meta, "TransferSyntaxUID", "") or "") in DEFLATED:
        return read_deflated_header(path, DEFAULT_LIMITS, max(tags) + 1, tags, whole=False)
    return dcmread(path, stop_before_pixels=True, specific_tags=keywords)

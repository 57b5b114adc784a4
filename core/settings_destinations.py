"""Where outputs go: one settings shape per destination `kind` (dicom, hl7, folder, dicomweb)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from radraft.core.settings_base import _Strict


class _TlsClient(_Strict):
    # TLS to the peer (README "Security"): its certificate is checked against tls_ca (else
    # the system's trust store) and `host`; tls_cert/tls_key: radraft's client certificate.
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


class DicomDestination(_TlsClient):
    kind: Literal["dicom"]
    shadow: bool = False  # also receives what shadow-mode rules and profiles draft
    host: str
    port: int = Field(ge=1, le=65535)
    ae_title: str
    timeout_s: float = Field(30.0, gt=0)


# HL7 v2.5.1 table 0074 Diagnostic Service Section ID (OBR-24).
HL7_TABLE_0074 = frozenset({
    "AU", "BG", "BLB", "CG", "CUS", "CTH", "CT", "CH", "CP", "EC", "EN", "HM", "ICU", "IMM",
    "LAB", "MB", "MCB", "MYC", "NMS", "NMR", "NRS", "OUS", "OT", "OTH", "OSL", "PAR", "PAT",
    "PF", "PHR", "PHY", "PT", "RAD", "RC", "RT", "RUS", "RX", "SP", "SR", "TX", "VR", "VUS",
    "XRC",
})


class Hl7Destination(_TlsClient):
    kind: Literal["hl7"]
    shadow: bool = False  # also receives what shadow-mode rules and profiles draft
    host: str
    port: int = Field(ge=1, le=65535)
    role: Literal["ris", "ed"] = "ris"
    # R: results stored, not verified (default); P: verified preliminary, only if asked.
    result_status: Literal["R", "P"] = "R"
    charset: str = "UNICODE UTF-8"
    alert_message_type: str = "ORU^R01"
    # OBR-4 of the ED alert (code^text^coding system): a service of its own, so a receiver
    # that files results per (order, service) never files the alert over the ORU.
    alert_service: str = "RADRAFT-AIALERT^AI triage alert^L"
    receiving_application: str = ""
    receiving_facility: str = ""
    timeout_s: float = Field(30.0, gt=0)
    # OBR-24 per DICOM modality, overriding radraft's map (ehr/outbound/message.py).
    diagnostic_service: dict[str, str] = Field(default_factory=dict)

    @field_validator("diagnostic_service")
    @classmethod
    def _table_0074(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(v for v in value.values() if v not in HL7_TABLE_0074)
        if wrong:
            raise ValueError(f"not in HL7 table 0074: {', '.join(wrong)}")
        return {k.upper(): v for k, v in value.items()}


class FolderDestination(_Strict):
    kind: Literal["folder"]
    shadow: bool = False  # also receives what shadow-mode rules and profiles draft
    path: Path


class DicomwebDestination(_Strict):
    """A DICOMweb PACS receiving the SR, TID 1500 and KOS by STOW-RS."""

    kind: Literal["dicomweb"]
    # The service root: STOW-RS posts to <url>/studies.
    url: str = Field(pattern=r"^https?://")
    token: SecretStr = SecretStr("")
    timeout_s: float = Field(30.0, gt=0)
    # A CA bundle (PEM) to verify the PACS's certificate; empty: the system's CAs.
    tls_ca: Path | None = None


Destination = Annotated[
    DicomDestination | Hl7Destination | FolderDestination | DicomwebDestination,
    Field(discriminator="kind"),
]



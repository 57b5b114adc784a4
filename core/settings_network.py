"""Settings of radraft's doors and peers: the site, the DICOM node, the HL7 listener, the
console, STOW-RS, the viewer link and the PACS queried for priors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from radraft.core.settings_base import _Strict
from radraft.core.settings_destinations import _TlsClient


class SiteSettings(_Strict):
    timezone: str = "UTC"
    # Root for output UIDs (SR, KOS). "2.25" derives UUID-based UIDs (PS3.5 B.2).
    uid_root: str = "2.25"
    name: str = "radraft"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("uid_root")
    @classmethod
    def _uid_root(cls, value: str) -> str:
        parts = value.split(".")
        if not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
            raise ValueError(f"{value!r} is not a DICOM UID root (digits and dots)")
        if len(value) > 40:
            raise ValueError("uid_root longer than 40 characters leaves no room for ids")
        return value


class CommitmentPeer(_Strict):
    host: str
    port: int = Field(ge=1, le=65535)


class DicomSettings(_Strict):
    ae_title: str = "RADRAFT"
    # Loopback unless configured: a door opens to the network only by a written decision
    # (deploy/ configurations set 0.0.0.0; README "Security").
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=1, le=65535)
    allowed_calling_aets: list[str] = Field(default_factory=list)
    stable_seconds: float = Field(30.0, gt=0)
    min_free_bytes: int = Field(1 << 30, ge=0)
    # Receiving processes (the node dispatches associations to them); parsing is GIL-bound.
    receive_processes: int = Field(1, ge=1, le=32)
    # Longest P-DATA-TF PDU body we advertise and accept; a longer one drops the connection
    # (fast path). Finite: a peer's declared length is never allocated beyond it.
    maximum_pdu_size: int = Field(4 << 20, ge=4096, le=1 << 30)
    # Every read of a connection and every idle association end after this.
    network_timeout_s: float = Field(60.0, gt=0)
    # pynetdicom internals accelerate the receive path (dicom_node/fast); off: stock path.
    fast_receive: bool = True
    max_associations: int = Field(64, ge=1, le=1024)
    max_associations_per_peer: int = Field(16, ge=1, le=1024)
    # Deflated datasets: refused 0xA700 past this inflated size, or past this ratio to the
    # deflated size once the inflated size exceeds 16 MiB.
    max_inflated_bytes: int = Field(512 << 20, ge=1 << 20)
    max_inflate_ratio: float = Field(200.0, gt=1)
    # DICOM TLS (README "Security"): certificate and key turn it on; a CA requires client
    # certificates it signed; tls_peers ties calling AE titles to certificate common names.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_peers: dict[str, str] = Field(default_factory=dict)
    # MPPS (README "Knowing when a study is complete"): a final step's missing instances are
    # waited on this long, then reported; a step never set final holds its study this long.
    mpps_instances_timeout_s: float = Field(600.0, gt=0)
    mpps_in_progress_timeout_s: float = Field(14400.0, gt=0)
    # A rule's `complete_when` is met once its series are there and quiet this long.
    complete_when_quiet_s: float = Field(3.0, ge=0)
    # Storage commitment: where to send a report when the requester's association is gone
    # (AE title -> host/port; else a `dicom` destination with that AE title).
    commitment_peers: dict[str, CommitmentPeer] = Field(default_factory=dict)
    commitment_retry_s: float = Field(30.0, gt=0)
    commitment_max_attempts: int = Field(10, ge=1)

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, value: str) -> str:
        if not 0 < len(value) <= 16 or "\\" in value:
            raise ValueError("an AE title has 1 to 16 characters and no backslash")
        return value


class Hl7Settings(_Strict):
    # Loopback unless configured: a door opens to the network only by a written decision
    # (deploy/ configurations set 0.0.0.0; README "Security").
    host: str = "127.0.0.1"
    port: int = Field(2575, ge=1, le=65535)
    max_message_bytes: int = Field(1 << 20, gt=0)
    idle_timeout_s: float = Field(300.0, gt=0)
    # A frame that was started must be finished within this (a truncated frame is answered
    # by closing the connection, not by waiting for the idle timeout).
    frame_timeout_s: float = Field(30.0, gt=0)
    # MSH-11 values accepted; others are refused with AR 202 (T: training messages).
    processing_ids: list[str] = Field(default_factory=lambda: ["P", "D"])
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # when set, senders must present a certificate it signed
    # An order arriving this long after its study became stable re-evaluates the rules.
    order_grace_s: float = Field(3600.0, ge=0)
    # Who may send: addresses, CIDR networks, "CN=<client certificate name>" (README
    # "Security"); empty: anyone who reaches the port. Others are disconnected unread.
    allowed_senders: list[str] = Field(default_factory=list)
    # A batch (FHS/BHS) of more messages is refused whole with AR: one sender's batch cannot
    # hold the shared writer for seconds.
    max_batch_messages: int = Field(1000, ge=1)


class WebSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    secret_key: SecretStr = SecretStr("")
    escalate_after_minutes: float = Field(15.0, gt=0)
    # Session cookies always carry Secure (set it behind a TLS-terminating proxy such as a
    # Kubernetes Ingress); otherwise Secure follows the request's scheme.
    secure_cookies: bool = False
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs):
    # the client address the login throttle counts and the scheme come from them.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])


class DicomwebSettings(_Strict):
    """STOW-RS receive on the console's port (`POST /dicomweb/studies`)."""

    # Sending system name -> its bearer token; empty: STOW-RS is off. The name is recorded
    # as the instances' sender (16 characters at most, like an AE title).
    senders: dict[Annotated[str, Field(min_length=1, max_length=16)], SecretStr] = Field(
        default_factory=dict)
    max_instance_bytes: int = Field(1 << 30, ge=1024)
    max_request_bytes: int = Field(8 << 30, ge=1024)


class ViewerSettings(_Strict):
    """The site's image viewer, linked from the console's study page and the ED board."""

    # e.g. "https://ohif.example/viewer?StudyInstanceUIDs={study_uid}"; placeholders:
    # {study_uid}, {series_uid}, {sop_uid} (URL-encoded). Empty: no viewer links.
    url_template: str = ""

    @field_validator("url_template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://", "/")):
            raise ValueError("must start with http://, https:// or /")
        try:
            value.format(study_uid="1", series_uid="1", sop_uid="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"unknown placeholder {exc}: use {{study_uid}}, {{series_uid}}, "
                             "{sop_uid}") from exc
        return value



class PacsSettings(_TlsClient):
    """The PACS radraft queries for priors: `dimse` (C-FIND, then C-MOVE or C-GET; `tls` as
    for a destination) or `dicomweb` (QIDO-RS, then WADO-RS from `url`)."""

    kind: Literal["dimse", "dicomweb"] = "dimse"
    # DICOMweb service root (kind dicomweb), e.g. https://pacs/dicom-web, and its token.
    url: str = ""
    token: SecretStr = SecretStr("")
    host: str = ""
    port: int = Field(104, ge=1, le=65535)
    ae_title: str = ""
    retrieve: Literal["move", "get"] = "get"
    timeout_s: float = Field(60.0, gt=0)
    # An order over HL7 prefetches its patient's priors (worker/prefetch.py), chosen by this
    # profile's prior_* keys and max_priors.
    prefetch: bool = True
    prefetch_profile: str = "ct-generic"



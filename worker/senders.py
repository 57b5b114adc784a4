"""One sender per destination kind. Each raises Transient/PermanentDeliveryError."""

from __future__ import annotations

import importlib
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError
from radraft.core.log_safe import safe
from radraft.core.settings import (
    DicomDestination,
    DicomwebDestination,
    FolderDestination,
    Hl7Destination,
    Settings,
)
from radraft.core.tls import client_context
from radraft.core.uids import is_valid_uid
from radraft.dicom_node.client import Peer, store_bytes
from radraft.dicom_node.client.stow import StowTarget, stow_bytes

SUFFIX = {"sr": ".dcm", "tid1500": ".dcm", "kos": ".dcm", "oru": ".hl7", "alert": ".hl7",
          "escalation": ".hl7",
          "text": ".txt", "html": ".html", "sheet": ".png"}

Hl7Send = Callable[..., object]


def _tls(dest: DicomDestination | Hl7Destination) -> ssl.SSLContext | None:
    try:
        return client_context(dest)
    except (OSError, ssl.SSLError) as exc:  # a missing or unreadable certificate file
        raise PermanentDeliveryError(f"TLS settings of {dest.host}:{dest.port}: {exc}") \
            from exc


def send_dicom(dest: DicomDestination, settings: Settings, payload: bytes) -> str:
    result = store_bytes(
        Peer(dest.host, dest.port, dest.ae_title, settings.dicom.ae_title, dest.timeout_s,
             tls=_tls(dest)),
        payload,
    )
    return f"C-STORE status 0x{result.status:04X}"


def send_dicomweb(dest: DicomwebDestination, payload: bytes, sop_uid: str) -> str:
    target = StowTarget(
        dest.url, dest.token.get_secret_value(), dest.timeout_s,
        str(dest.tls_ca) if dest.tls_ca else True,
    )
    return stow_bytes(target, payload, sop_uid)


def _mllp_sender() -> Hl7Send:
    # The EHR package owns MLLP (radraft.ehr.mllp.send_mllp); looked up at call time so the
    # worker runs, and reports a clear error, on a tree where it is not installed.
    try:
        module = importlib.import_module("radraft.ehr.mllp")
    except ImportError as exc:
        raise TransientDeliveryError(f"HL7 sender radraft.ehr.mllp unavailable: {exc}") from exc
    send: Hl7Send = module.send_mllp
    return send


def send_hl7(dest: Hl7Destination, payload: bytes) -> str:
    ack = _mllp_sender()(dest.host, dest.port, payload, timeout_s=dest.timeout_s,
                         tls=_tls(dest))
    return f"HL7 {getattr(ack, 'code', 'AA')}"


def write_folder(dest: FolderDestination, study_uid: str, name: str, payload: bytes) -> Path:
    """Write `payload` as <path>/<study>/<name> atomically (temp, fsync, rename, dir fsync).

    The study UID came from a sender: it names the folder only when it is a valid DICOM UID
    (digits and dots, so no `..`, `/` or absolute path), and the result is checked to lie
    inside the destination; anything else is refused, never cleaned up into another name.
    """
    if not is_valid_uid(study_uid):
        raise PermanentDeliveryError(
            f"study UID {safe(study_uid)} is not a valid DICOM UID: not used as a folder name")
    if "/" in name or name.startswith("."):
        raise PermanentDeliveryError(f"output name {safe(name)} is not a plain file name")
    root = dest.path.resolve()
    folder = root / study_uid
    if folder.parent != root:
        raise PermanentDeliveryError(f"folder for {safe(study_uid)} falls outside {root}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        temp = folder / f".{name}.part"
        with temp.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        # A full or unmounted disk can come back: transient.
        raise TransientDeliveryError(f"folder {folder}: {exc}") from exc
    return target

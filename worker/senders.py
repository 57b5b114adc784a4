"""One sender per destination kind. Each raises Transient/PermanentDeliveryError."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

from radraft.core.errors import TransientDeliveryError
from radraft.core.settings import (
    DicomDestination,
    DicomwebDestination,
    FolderDestination,
    Hl7Destination,
    Settings,
)
from radraft.dicom_node.client import Peer, store_bytes
from radraft.dicom_node.client.stow import StowTarget, stow_bytes

SUFFIX = {"sr": ".dcm", "tid1500": ".dcm", "kos": ".dcm", "oru": ".hl7", "alert": ".hl7",
          "escalation": ".hl7",
          "text": ".txt", "html": ".html", "sheet": ".png"}

Hl7Send = Callable[..., object]


def send_dicom(dest: DicomDestination, settings: Settings, payload: bytes) -> str:
    result = store_bytes(
        Peer(dest.host, dest.port, dest.ae_title, settings.dicom.ae_title, dest.timeout_s),
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
    ack = _mllp_sender()(dest.host, dest.port, payload, timeout_s=dest.timeout_s)
    return f"HL7 {getattr(ack, 'code', 'AA')}"


def write_folder(dest: FolderDestination, study_uid: str, name: str, payload: bytes) -> Path:
    """Write `payload` as <path>/<study>/<name> atomically (temp, fsync, rename, dir fsync)."""
    folder = dest.path / study_uid
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

"""Helpers for the DICOM node tests: a node on free ports, dcmtk storescu, tiny CT studies."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.settings import Settings
from radraft.core.types import StudyStable
from radraft.dicom_node.fast.transport import FastSocket
from radraft.dicom_node.node import DicomNode

STORESCU = "/usr/bin/storescu"

# storescu proposes only uncompressed syntaxes unless told; one flag per transfer syntax.
TS_FLAGS = {
    "1.2.840.10008.1.2": "-xi",
    "1.2.840.10008.1.2.1": "-xe",
    "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
}
_STATUS = re.compile(r"DIMSE Status\s*:\s*0x([0-9A-Fa-f]{4})")


@dataclass(frozen=True)
class StoreOutcome:
    """What storescu saw: the node's status, or None when it never sent the file."""

    status: int | None
    returncode: int
    output: str


def transfer_syntax_of(path: Path) -> str:
    try:
        meta = dcmread(path, stop_before_pixels=True, force=True).file_meta
        return str(getattr(meta, "TransferSyntaxUID", "") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def storescu(
    path: Path, port: int, *, called: str = "RADRAFT", calling: str = "STORESCU",
    extra: tuple[str, ...] = (), timeout: float = 60,
) -> StoreOutcome:
    """Send one file with dcmtk's storescu proposing the file's own transfer syntax."""
    flag = TS_FLAGS.get(transfer_syntax_of(path), "")
    # -R: propose only the SOP classes of the file (covers classes storescu does not list).
    cmd = [STORESCU, "-d", "-R", "-aet", calling, "-aec", called, *([flag] if flag else []), *extra,
           "127.0.0.1", str(port), str(path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    output = run.stdout + run.stderr
    found = _STATUS.search(output)
    status = int(found.group(1), 16) if found else None
    return StoreOutcome(status, run.returncode, output)


def ct_phase_study(
    folder: Path, *, phases: tuple[str, ...] = ("NATIVE", "ARTERIAL", "VENOUS"),
    slices: int = 4, size: int = 32, study_uid: str | None = None, accession: str = "ACC1",
    description: str = "CT ABDOMEN", body_part: str = "ABDOMEN",
) -> list[Path]:
    """Write a small multi-phase CT study (one series per phase); returns the files."""
    study_uid = study_uid or generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    rng = np.random.default_rng(7)
    for number, phase in enumerate(phases, start=1):
        series_uid = generate_uid()
        for index in range(slices):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.Modality, ds.Manufacturer = "CT", "PHANTOM"
            ds.PatientID, ds.PatientName, ds.PatientAge = "P1", "TEST^PHANTOM", "054Y"
            ds.AccessionNumber, ds.StudyDescription = accession, description
            ds.BodyPartExamined, ds.InstitutionName = body_part, "General Hospital"
            ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240102", number, index + 1
            ds.SeriesDescription, ds.ContrastBolusAgent = phase, "" if number == 1 else "IODINE"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.ImagePositionPatient = [0.0, 0.0, -float(index) * 5]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 5.0
            ds.Rows = ds.Columns = size
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
            ds.PixelData = rng.integers(0, 2000, (size, size), dtype=np.uint16).tobytes()
            path = folder / f"{phase.lower()}_{index:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return files


def node_settings(data_dir: Path, db_url: str, port: int, **dicom: object) -> Settings:
    """Settings for a node under test: no disk floor, fast stability."""
    values: dict[str, object] = {"port": port, "stable_seconds": 1.0, "min_free_bytes": 0}
    values.update(dicom)
    return Settings(data_dir=data_dir, database_url=db_url, dicom=values)


@contextmanager
def running_node(
    settings: Settings, sessions: sessionmaker[Session],
    on_stable: Callable[[StudyStable], None] | None = None,
) -> Iterator[DicomNode]:
    """A DICOM node on its own threads for the duration of the block."""
    node = DicomNode(settings, sessions, on_stable or (lambda _stable: None),
                     poll_interval_s=0.2)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def fast_socket(sock: socket.socket, *, max_pdu: int = 4 << 20) -> FastSocket:
    """A FastSocket over `sock` with no association: recv, peek and the read-ahead only.

    The caller closes `sock` and the socket's wake-up eventfd (`_wake_fd`).
    """
    fast = object.__new__(FastSocket)
    fast.socket = sock
    fast._is_connected = True
    fast.start_read_ahead(os.eventfd(0, os.EFD_NONBLOCK), max_pdu=max_pdu)
    return fast

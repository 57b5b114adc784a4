"""dcmtk storescu against the node: fragments written directly land byte for byte."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.net import free_port
from node_helpers import node_settings, running_node, storescu
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance
from radraft.dicom_node.fast import direct_write
from radraft.dicom_node.fast.direct_write import DirectDatasetWriter


def _multiframe(path: Path, frames: int) -> Path:
    """A 16-bit multi-frame CT-like object of frames × 256² (random pixels)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "CT", "LANE"
    ds.Rows = ds.Columns = 256
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    rng = np.random.default_rng(frames)
    ds.PixelData = rng.integers(0, 65535, (frames, 256, 256), dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _dataset_bytes(path: Path) -> bytes:
    """Everything after the File Meta Information group (the bytes as sent)."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    (group_length,) = struct.unpack_from("<L", data, 140)
    return data[144 + group_length:]


@pytest.mark.parametrize(("frames", "pdu"), [(8, 4096), (40, 16384), (40, 131072)])
def test_received_datasets_are_byte_identical_through_direct_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frames: int, pdu: int, receive_path: str,
) -> None:
    from radraft.core.db import make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade

    writers: list[DirectDatasetWriter] = []
    real_install = direct_write.install

    def recording_install(assoc: Any, *args: Any) -> DirectDatasetWriter | None:
        writer = real_install(assoc, *args)
        if writer is not None:
            writers.append(writer)
        return writer

    monkeypatch.setattr(direct_write, "install", recording_install)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions: sessionmaker[Session] = make_sessionmaker(engine)
    source = _multiframe(tmp_path / "mf.dcm", frames)
    port = free_port()
    with running_node(node_settings(tmp_path / "data", url, port), sessions):
        outcome = storescu(source, port, extra=("--max-send-pdu", str(pdu)))
    assert outcome.status == 0x0000, outcome.output[-2000:]
    with sessions() as session:
        stored = Path(session.scalars(select(Instance.path)).one())
    assert _dataset_bytes(stored) == _dataset_bytes(source)
    pdus = len(_dataset_bytes(source)) / (pdu - 12)
    if receive_path == "stock":
        assert writers == []  # pynetdicom wrote every fragment itself
        return
    # Most fragments were written directly; the last one completed the message in pynetdicom.
    assert len(writers) == 1
    assert 0.5 * pdus < writers[0].fragments < pdus
    engine.dispose()

"""The node's doors against identity, disk and slot attacks, over real sockets (issue 25,
items 4, 5 and 6): invalid UIDs refused (never cut), partial files of aborted transfers
removed when the association ends, free disk checked while data arrives, and a host
holding idle associations cannot lock real senders out. Both receive paths."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.net import free_port
from helpers.waiting import wait_for
from node_helpers import ct_phase_study, node_settings, running_node, storescu
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom.association import Association
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance, Study, make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade
from radraft.dicom_node.storage import disk

pytestmark = pytest.mark.usefixtures("receive_path")

CT_MF = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT (multi-frame)


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    upgrade(url)
    engine: Engine = make_engine(url)
    yield url, make_sessionmaker(engine)
    engine.dispose()


def _count(sessions: sessionmaker[Session], model: type[Instance] | type[Study]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_invalid_uids_are_refused_never_truncated(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
) -> None:
    """Two studies of two patients whose 70-character UIDs share a 64-character prefix
    were merged into one; now each is refused 0xA900 and nothing is indexed."""
    url, sessions = sqlite_sessions
    prefix = "1.2.826.0.1.3680043.8.498." + "1" * 38  # 64 characters
    assert len(prefix) == 64
    files = []
    for index, (study_uid, patient) in enumerate([
        (prefix + ".11111", "PATIENT-A"), (prefix + ".22222", "PATIENT-B"),
        ("1.2.840.10008.ABC", "PATIENT-C"),  # letters: not a UID
    ]):
        [path] = ct_phase_study(tmp_path / f"s{index}", phases=("A",), slices=1)
        ds = dcmread(path)
        ds.StudyInstanceUID, ds.PatientID = study_uid, patient
        ds.save_as(path)
        files.append(path)
    [good] = ct_phase_study(tmp_path / "good", phases=("A",), slices=1)
    port = free_port()
    with running_node(node_settings(tmp_path / "d", url, port), sessions):
        statuses = [storescu(path, port).status for path in files]
        assert storescu(good, port).status == 0x0000
    assert statuses == [0xA900, 0xA900, 0xA900]
    with sessions() as session:
        studies = session.scalars(select(Study.study_uid)).all()
    assert studies == [str(dcmread(good).StudyInstanceUID)]


def _large_file(path: Path, megabytes: int) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CT_MF
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "CT", "BIG"
    frames = megabytes * 8  # 256 x 256 x 2 bytes = 128 KiB a frame
    ds.Rows = ds.Columns = 256
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.random.default_rng(1).integers(
        0, 4000, (frames, 256, 256), dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# A sender that slows down after 20 PDUs, so that it can be killed mid-dataset.
_SLOW_SENDER = """
import sys, time
from pynetdicom import AE, evt
sent = [0]
def slow(event):
    sent[0] += 1
    if sent[0] > 20:
        time.sleep(0.05)
ae = AE(ae_title="SLOW")
ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.1.2.1")
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="RADRAFT",
                     evt_handlers=[(evt.EVT_DATA_SENT, slow)])
assoc.send_c_store(sys.argv[2])
"""


def _rx_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "tmp").glob("rx-*/*") if p.is_file()]


def test_partial_files_of_a_killed_sender_are_removed_when_its_association_ends(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
) -> None:
    url, sessions = sqlite_sessions
    big = _large_file(tmp_path / "big.dcm", 16)
    data_dir = tmp_path / "d"
    port = free_port()
    # 16 KiB PDUs (the sender sends PDUs as long as the node accepts): ~1000 of them.
    with running_node(node_settings(data_dir, url, port, maximum_pdu_size=16384), sessions):
        sender = subprocess.Popen([sys.executable, "-c", _SLOW_SENDER, str(port), str(big)])
        try:
            wait_for("a partial received file", lambda: bool(_rx_files(data_dir)), tmp_path,
                     timeout=60, interval=0.05)
        finally:
            sender.send_signal(signal.SIGKILL)  # a crashed sender: the kernel closes its TCP
            sender.wait(30)
        wait_for("the partial file removed", lambda: not _rx_files(data_dir), tmp_path,
                 timeout=30, interval=0.1)
        # The node still receives.
        [good] = ct_phase_study(tmp_path / "good", phases=("A",), slices=1)
        assert storescu(good, port).status == 0x0000
    assert _count(sessions, Instance) == 1


def test_free_disk_is_checked_while_a_dataset_arrives(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Disk short while the dataset's bytes arrive (measured on the receiving thread), fine
    again by the time it is complete: the arrival check alone answers 0xA700."""
    url, sessions = sqlite_sessions
    real_free_bytes = disk.free_bytes
    short = threading.Event()
    short.set()

    def free_bytes(path: Path) -> int:
        on_handler_thread = isinstance(threading.current_thread(), Association)
        return 0 if short.is_set() and not on_handler_thread else real_free_bytes(path)

    monkeypatch.setattr(disk, "free_bytes", free_bytes)
    big = _large_file(tmp_path / "big.dcm", 12)
    data_dir = tmp_path / "d"
    port = free_port()
    settings = node_settings(data_dir, url, port, min_free_bytes=1 << 20)
    with running_node(settings, sessions):
        assert storescu(big, port).status == 0xA700
        wait_for("the refused file removed", lambda: not _rx_files(data_dir), tmp_path,
                 timeout=30, interval=0.1)
        short.clear()
        time.sleep(1.1)  # the watch measures again at least once a second while short
        assert storescu(big, port).status == 0x0000
    assert _count(sessions, Instance) == 1


@pytest.mark.parametrize("processes", [1, 2])
def test_a_host_holding_idle_associations_does_not_lock_out_real_senders(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]], processes: int,
) -> None:
    url, sessions = sqlite_sessions
    [good] = ct_phase_study(tmp_path / "good", phases=("A",), slices=1)
    port = free_port()
    settings = node_settings(tmp_path / "d", url, port, receive_processes=processes)
    hostile: list[socket.socket] = []
    with running_node(settings, sessions):
        try:
            for _ in range(70):  # more than the node's 64 association slots, all idle
                conn = socket.socket()
                conn.bind(("127.0.0.2", 0))
                conn.connect(("127.0.0.1", port))
                hostile.append(conn)
            time.sleep(1)  # the node has accepted (or refused) them all
            outcome = storescu(good, port)
            assert outcome.status == 0x0000, outcome.output[-2000:]
            refused = 0
            for conn in hostile:
                conn.settimeout(0.2)
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    refused += conn.recv(16)[:2] == b"\x03\x00"  # A-ASSOCIATE-RJ
            assert refused >= 70 - settings.dicom.max_associations_per_peer - 1
        finally:
            for conn in hostile:
                conn.close()
    assert _count(sessions, Instance) == 1

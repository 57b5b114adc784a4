"""AE checks and failure statuses: reasons 3 and 7, private classes, 0xA900, 0xC000, 0xA700."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.net import free_port
from helpers.waiting import wait_for
from node_helpers import ct_phase_study, node_settings, running_node
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import generate_uid
from pynetdicom import AE, _config
from pynetdicom.association import Association
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance, Study, make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade
from radraft.core.settings import Settings
from radraft.dicom_node.node import DicomNode

# Every test here runs on the fast receive path and on pynetdicom's stock one.
pytestmark = pytest.mark.usefixtures("receive_path")

CT = "1.2.840.10008.5.1.4.1.1.2"
SIEMENS_PRIVATE = "1.3.12.2.1107.5.9.1"  # Siemens CSA Non-Image Storage
DEFLATE = "1.2.840.10008.1.2.1.99"


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """One SQLite database: these tests are about the DICOM layer, not the database."""
    url = f"sqlite:///{tmp_path / 'node.db'}"
    upgrade(url)
    engine: Engine = make_engine(url)
    yield url, make_sessionmaker(engine)
    engine.dispose()


def _associate(port: int, *, calling: str = "SCU", called: str = "RADRAFT",
               contexts: tuple[tuple[str, str], ...] = ((CT, "1.2.840.10008.1.2.1"),),
               ) -> Association:
    ae = AE(ae_title=calling)
    for abstract, syntax in contexts:
        ae.add_requested_context(abstract, syntax)
    return ae.associate("127.0.0.1", port, ae_title=called)


def test_association_rejections(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
) -> None:
    url, sessions = sqlite_sessions
    port = free_port()
    settings = node_settings(tmp_path / "d", url, port, allowed_calling_aets=["MODALITY1"])
    with running_node(settings, sessions):
        unknown = _associate(port, calling="STRANGER")
        assert unknown.is_rejected
        rj = unknown.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x03)
        wrong_called = _associate(port, calling="MODALITY1", called="NOTRADRAFT")
        assert wrong_called.is_rejected
        rj = wrong_called.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x07)
        allowed = _associate(port, calling="MODALITY1")
        assert allowed.is_established
        # The node announces its finite maximum PDU size (dicom.maximum_pdu_size).
        assert allowed.acceptor.maximum_length == 4 << 20
        allowed.release()


def _raw_file(path: Path, *, sop_class: str, sop_uid: str, syntax: str, body: bytes) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop_uid
    meta.TransferSyntaxUID = syntax
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta)
    path.write_bytes(b"\x00" * 128 + b"DICM" + buffer.getvalue() + body)
    return path


def test_statuses_for_private_mismatched_and_unparseable(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="radraft.dicom_node.assoc_log")
    url, sessions = sqlite_sessions
    [good] = ct_phase_study(tmp_path / "s", phases=("A",), slices=1)
    private = dcmread(good)
    private.SOPClassUID, private.SOPInstanceUID = SIEMENS_PRIVATE, generate_uid()
    private.file_meta.MediaStorageSOPClassUID = SIEMENS_PRIVATE
    private.file_meta.MediaStorageSOPInstanceUID = private.SOPInstanceUID
    private.save_as(tmp_path / "private.dcm")
    # The command says one SOP Instance UID (from the file meta), the dataset another.
    mismatched = dcmread(good)
    mismatched.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    mismatched.save_as(tmp_path / "mismatch.dcm")
    junk = _raw_file(tmp_path / "junk.dcm", sop_class=CT, sop_uid=generate_uid(),
                     syntax=DEFLATE, body=os.urandom(64))

    port = free_port()
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send files as they are
    with running_node(node_settings(tmp_path / "d", url, port), sessions):
        assoc = _associate(port, contexts=(
            (CT, "1.2.840.10008.1.2.1"), (SIEMENS_PRIVATE, "1.2.840.10008.1.2.1"), (CT, DEFLATE),
        ))
        assert assoc.is_established
        assert assoc.send_c_store(tmp_path / "private.dcm").Status == 0x0000
        assert assoc.send_c_store(tmp_path / "mismatch.dcm").Status == 0xA900
        assert assoc.send_c_store(junk).Status == 0xC000
        assert assoc.send_c_store(good).Status == 0x0000  # the association survived
        assoc.release()
        wait_for("the release log line", lambda: "released" in caplog.text, tmp_path,
                 timeout=10, interval=0.05)
    with sessions() as session:
        classes = {i.sop_class_uid for i in session.scalars(select(Instance))}
    assert classes == {CT, SIEMENS_PRIVATE}
    # The admin's log: one line per association, with its outcome counts.
    assert re.search(r"association from SCU \(127\.0\.0\.1:\d+\) accepted", caplog.text)
    assert re.search(r"association from SCU \(127\.0\.0\.1:\d+\) released: 2 stored, "
                     r"refused 1 x 0xA900, 1 x 0xC000", caplog.text)


def test_out_of_space_purges_first_then_answers_a700(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
) -> None:
    url, sessions = sqlite_sessions
    old_files = ct_phase_study(tmp_path / "old", phases=("A",), slices=2)
    [new_file] = ct_phase_study(tmp_path / "new", phases=("A",), slices=1)
    port = free_port()
    settings = node_settings(tmp_path / "d", url, port)
    with running_node(settings, sessions):
        assoc = _associate(port)
        for path in old_files:
            assert assoc.send_c_store(dcmread(path)).Status == 0x0000
        assoc.release()
    # Make the first study old, announced and without pending work: purgeable.
    long_ago = datetime.now(UTC) - timedelta(days=400)
    with sessions() as session:
        session.execute(update(Study).values(
            last_received_at=long_ago, last_image_at=long_ago, announced_at=long_ago,
            announced_version="v", announced_image_count=Study.image_count,
        ))
        session.commit()
    full = Settings(**{**settings.model_dump(), "dicom": {
        **settings.dicom.model_dump(), "min_free_bytes": 1 << 60}})  # no disk is this large
    node = DicomNode(full, sessions, lambda _s: None)
    node.start()
    try:
        assoc = _associate(port)
        assert assoc.send_c_store(dcmread(new_file)).Status == 0xA700
        assoc.release()
    finally:
        node.stop()
    with sessions() as session:
        assert session.scalars(select(Study)).all() == []  # purged before refusing
    assert not any((settings.dicom_dir).rglob("*.dcm"))


def test_a_failed_placement_rolls_its_rows_back_and_answers_0110(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index statements run while the file is placed: a failed rename leaves no row."""
    url, sessions = sqlite_sessions
    first, second = ct_phase_study(tmp_path / "s", phases=("A",), slices=2)
    doomed = str(dcmread(first).SOPInstanceUID)
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(dst).endswith(f"{doomed}.dcm"):
            raise OSError(5, "Input/output error (injected)")
        real_replace(src, dst)

    port = free_port()
    with running_node(node_settings(tmp_path / "d", url, port), sessions):
        monkeypatch.setattr(os, "replace", replace)
        assoc = _associate(port)
        assert assoc.is_established
        assert assoc.send_c_store(first).Status == 0x0110
        assert assoc.send_c_store(second).Status == 0x0000  # the association goes on
        assoc.release()
    with sessions() as session:
        stored = [i.sop_uid for i in session.scalars(select(Instance))]
        study = session.scalars(select(Study)).one()
    assert stored == [str(dcmread(second).SOPInstanceUID)]
    assert (study.instance_count, study.image_count) == (1, 1)

"""dcmtk storescu sends every real sample to the node; each file gets its expected outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.data import DICOM_DATA
from helpers.net import free_port
from node_helpers import node_settings, running_node, storescu
from pydicom import dcmread
from pynetdicom import AE
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance, Study

# Every test here runs on the fast receive path and on pynetdicom's stock one.
pytestmark = pytest.mark.usefixtures("receive_path")

STORED = 0x0000
# Files storescu itself cannot read: it never sends them (the node sees nothing).
NOT_SENT = None

# Expected outcome of every sample (path relative to tests/data/dicom). Files not listed
# here are well-formed and must be stored (0x0000); the test fails on a new unlisted file
# only if it is not stored.
EXPECTED: dict[str, int | None] = {
    # "legal enough to store": PACS do not validate IODs, neither does radraft.
    "broken/CTImageStorage_bad_meta.dcm": STORED,
    "broken/MR_small_padded.dcm": STORED,
    "broken/badVR.dcm": STORED,
    "broken/reportsi_with_empty_number_tags.dcm": STORED,
    "modalities/dx_image.dcm": STORED,  # odd-length Pixel Data
    # storescu refuses these before any association traffic for them.
    "broken/MR_truncated.dcm": NOT_SENT,
    "broken/UN_sequence.dcm": NOT_SENT,
    "broken/meta_missing_tsyntax.dcm": NOT_SENT,
    "broken/no_meta.dcm": NOT_SENT,
    # A Secondary Capture without Study and Series Instance UIDs: 0xA900.
    "transfer_syntaxes/JPEGLSNearLossless_16.dcm": 0xA900,
}


def _samples() -> list[Path]:
    return sorted(
        p for p in DICOM_DATA.rglob("*")
        if p.is_file() and p.suffix not in {".md", ".txt"}
    )


def test_every_sample_gets_its_expected_status(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    port = free_port()
    settings = node_settings(tmp_path / "data", db_url, port)
    outcomes: dict[str, int | None] = {}
    with running_node(settings, sessions):
        for path in _samples():
            outcomes[str(path.relative_to(DICOM_DATA))] = storescu(path, port).status
        # A bad file harms nothing else: the node still answers.
        ae = AE(ae_title="ECHOSCU")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", port, ae_title="RADRAFT")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()

    wrong = {
        name: (hex(got) if got is not None else None, EXPECTED.get(name, STORED))
        for name, got in outcomes.items() if got != EXPECTED.get(name, STORED)
    }
    assert wrong == {}, f"unexpected outcomes (got, expected): {wrong}"

    stored = {name for name, got in outcomes.items() if got == STORED}
    with sessions() as session:
        pairs = session.execute(select(Instance.sop_uid, Instance.path)).all()
        rows = {sop: Path(path) for sop, path in pairs}
        studies = session.scalar(select(func.count()).select_from(Study))
    for name in stored:
        sop = str(dcmread(DICOM_DATA / name, stop_before_pixels=True, force=True).SOPInstanceUID)
        assert sop in rows, f"{name} answered 0x0000 but is not indexed"
        stored_copy = rows[sop]
        assert stored_copy.is_file() and stored_copy.is_relative_to(settings.dicom_dir)
        # Stored as received: pydicom reads it back with the same SOP Instance UID.
        assert str(dcmread(stored_copy, stop_before_pixels=True).SOPInstanceUID) == sop
    assert studies is not None and studies >= 10


@pytest.mark.parametrize("name", ["transfer_syntaxes/MR2_J2KR.dcm",
                                  "transfer_syntaxes/image_dfl.dcm",
                                  "transfer_syntaxes/MR_small_bigendian.dcm"])
def test_compressed_and_odd_syntaxes_are_stored_as_received(
    tmp_path: Path, name: str,
) -> None:
    """The bytes on disk keep the transfer syntax they were sent in (no transcoding)."""
    from radraft.core.db import make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    port = free_port()
    with running_node(node_settings(tmp_path / "data", url, port), sessions):
        assert storescu(DICOM_DATA / name, port).status == STORED
    source = dcmread(DICOM_DATA / name, stop_before_pixels=True)
    with sessions() as session:
        row = session.scalars(select(Instance)).one()
    copy = dcmread(row.path, stop_before_pixels=True)
    assert copy.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert row.transfer_syntax == source.file_meta.TransferSyntaxUID
    engine.dispose()

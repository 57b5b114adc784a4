"""The node's doors against memory attacks, over real sockets (issue 25, item 1).

A peer's declared PDU length is never allocated beyond what arrived, nor past
`dicom.maximum_pdu_size`; a connection stalled inside a PDU is dropped after
`dicom.network_timeout_s`; a deflated dataset is inflated within `dicom.max_inflated_bytes`
and `dicom.max_inflate_ratio`, else refused 0xA700. Each test runs on both receive paths.
"""

from __future__ import annotations

import socket
import struct
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.net import free_port
from node_helpers import node_settings, running_node
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, _config
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance, make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade

pytestmark = pytest.mark.usefixtures("receive_path")

CT = "1.2.840.10008.5.1.4.1.1.2"
DEFLATE = "1.2.840.10008.1.2.1.99"
MiB = 1 << 20


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    upgrade(url)
    engine: Engine = make_engine(url)
    yield url, make_sessionmaker(engine)
    engine.dispose()


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the node closes `sock` within `within` seconds (reading whatever it sends)."""
    deadline = time.monotonic() + within
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_a_declared_huge_pdu_costs_nothing_and_a_stalled_one_is_dropped(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
) -> None:
    url, sessions = sqlite_sessions
    port = free_port()
    settings = node_settings(tmp_path / "d", url, port, network_timeout_s=2.0)
    with running_node(settings, sessions):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            # Six bytes declaring a 512 MiB A-ASSOCIATE-RQ, a few bytes of it, then silence.
            huge = socket.create_connection(("127.0.0.1", port))
            huge.sendall(struct.pack(">BBL", 0x01, 0, 512 * MiB) + b"\x00\x01" * 8)
            # A PDU within the limits, cut short: the peer stalls inside it.
            stalled = socket.create_connection(("127.0.0.1", port))
            stalled.sendall(struct.pack(">BBL", 0x01, 0, 100_000) + b"\x00" * 10)
            assert _closed_by_peer(huge, within=30), "the huge PDU's connection was kept"
            assert _closed_by_peer(stalled, within=30), "the stalled connection was kept"
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        huge.close()
        stalled.close()
    assert peak < 32 * MiB, f"{peak} bytes allocated for a peer that sent 28 bytes"


def _deflated_file(path: Path, inflated_pixels: int) -> Path:
    """A CT header plus `inflated_pixels` zero bytes of Pixel Data, deflated (PS3.5 A.5):
    a small file that inflates to the size given."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "CT", "BOMB"
    header = DicomBytesIO()
    header.is_little_endian, header.is_implicit_VR = True, False
    write_dataset(header, ds)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(header.getvalue()),
             deflater.compress(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OB", inflated_pixels))]
    zeros = bytes(MiB)
    for _ in range(inflated_pixels // MiB):
        parts.append(deflater.compress(zeros))
    parts.append(deflater.flush())
    from test_node_statuses import _raw_file

    return _raw_file(path, sop_class=CT, sop_uid=str(ds.SOPInstanceUID), syntax=DEFLATE,
                     body=b"".join(parts))


@pytest.mark.parametrize(("inflated", "limits", "status"), [
    (96 * MiB, {"max_inflated_bytes": 64 * MiB, "max_inflate_ratio": 1e6}, 0xA700),
    (40 * MiB, {}, 0xA700),  # ~1000:1, past the default ratio of 200
    (4 * MiB, {}, 0x0000),  # a blank image deflates as well, but stays small: stored
])
def test_a_deflate_bomb_is_refused_without_inflating_it(
    tmp_path: Path, sqlite_sessions: tuple[str, sessionmaker[Session]],
    monkeypatch: pytest.MonkeyPatch, inflated: int, limits: dict[str, float], status: int,
) -> None:
    url, sessions = sqlite_sessions
    bomb = _deflated_file(tmp_path / "bomb.dcm", inflated)
    assert bomb.stat().st_size < inflated / 100
    port = free_port()
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # sent as it is
    with running_node(node_settings(tmp_path / "d", url, port, **limits), sessions):
        ae = AE(ae_title="SCU")
        ae.add_requested_context(CT, DEFLATE)
        assoc = ae.associate("127.0.0.1", port, ae_title="RADRAFT")
        assert assoc.is_established
        tracemalloc.start()
        try:
            answer = assoc.send_c_store(bomb)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assoc.release()
    assert answer.Status == status
    assert peak < 48 * MiB, f"{peak} bytes traced while reading a deflated dataset"
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Instance))
    assert stored == (1 if status == 0x0000 else 0)

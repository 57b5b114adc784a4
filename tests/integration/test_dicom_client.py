"""DICOM client against real peers: dcmtk storescp, pynetdicom SCPs answering chosen
statuses, and Orthanc for C-FIND / C-GET."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.net import free_port, wait_port
from orthanc import OrthancServer
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.events import Event

from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError
from radraft.dicom_node.client import (
    Peer,
    classify_store_status,
    find_studies,
    get_study,
    store_bytes,
)
from radraft.reporting.phantom import write_phantom_study


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("phantom")
    write_phantom_study(out, slices=4, size=32, phases=["portal venous"])
    return sorted(out.rglob("*.dcm"))


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    out = tmp_path / "received"
    out.mkdir()
    proc = subprocess.Popen(
        ["/usr/bin/storescp", "-aet", "PACS", "-od", str(out), "+uf", str(port)],
    )
    try:
        wait_port(port)
        yield port, out
    finally:
        proc.terminate()
        proc.wait(10)


def _status_scp(status: int) -> tuple[object, int]:
    ae = AE(ae_title="STATUS")
    ae.supported_contexts = AllStoragePresentationContexts

    def on_store(_event: Event) -> int:
        return status

    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    return server, port


def test_status_classes() -> None:
    assert classify_store_status(0x0000) == "delivered"
    for warning in (0xB000, 0xB006, 0xB007):
        assert classify_store_status(warning) == "delivered"
    assert classify_store_status(0xA700) == "transient"
    assert classify_store_status(0xA7FF) == "transient"
    assert classify_store_status(0xA900) == "permanent"
    assert classify_store_status(0xC000) == "permanent"
    assert classify_store_status(0xC123) == "permanent"


def test_store_to_dcmtk_keeps_every_copy(phantom: list[Path], storescp: tuple[int, Path]) -> None:
    port, out = storescp
    payload = phantom[0].read_bytes()
    peer = Peer("127.0.0.1", port, "PACS", timeout_s=10)
    first = store_bytes(peer, payload)
    store_bytes(peer, payload)
    assert first.status == 0 and first.outcome == "delivered"
    assert len(list(out.iterdir())) == 2  # +uf: a re-send is counted, not merged


@pytest.mark.parametrize(
    ("status", "expected"),
    [(0xB000, None), (0xB007, None), (0xA700, TransientDeliveryError),
     (0xA900, PermanentDeliveryError), (0xC000, PermanentDeliveryError)],
)
def test_store_status_mapping(
    phantom: list[Path], status: int, expected: type[Exception] | None,
) -> None:
    server, port = _status_scp(status)
    try:
        peer = Peer("127.0.0.1", port, "STATUS", timeout_s=10)
        if expected is None:
            assert store_bytes(peer, phantom[0].read_bytes()).status == status
        else:
            with pytest.raises(expected, match=f"0x{status:04X}"):
                store_bytes(peer, phantom[0].read_bytes())
    finally:
        server.shutdown()  # type: ignore[attr-defined]


def test_connection_refused_is_transient(phantom: list[Path]) -> None:
    peer = Peer("127.0.0.1", free_port(), "NOBODY", timeout_s=3)
    with pytest.raises(TransientDeliveryError, match=r"NOBODY@127\.0\.0\.1"):
        store_bytes(peer, phantom[0].read_bytes())


def test_association_rejected_permanent(phantom: list[Path]) -> None:
    ae = AE(ae_title="PICKY")
    ae.supported_contexts = AllStoragePresentationContexts
    ae.require_called_aet = True
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        with pytest.raises(PermanentDeliveryError, match="rejected"):
            store_bytes(Peer("127.0.0.1", port, "WRONG", timeout_s=5), phantom[0].read_bytes())
    finally:
        server.shutdown()


def test_garbage_payload_is_permanent() -> None:
    with pytest.raises(PermanentDeliveryError, match="not a DICOM file"):
        store_bytes(Peer("127.0.0.1", 1, "X"), b"not dicom")


def test_find_and_get_from_orthanc(phantom: list[Path], tmp_path: Path) -> None:
    with OrthancServer(
        tmp_path / "orthanc", aet="ORTHANC",
        extra_config={"DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True},
    ) as pacs:
        for path in phantom:
            pacs.upload(path)
        peer = Peer("127.0.0.1", pacs.dicom_port, "ORTHANC", timeout_s=20)
        studies = find_studies(peer, patient_id="PHANTOM001")
        assert len(studies) == 1
        found: Dataset = studies[0]
        study_uid = str(found.StudyInstanceUID)
        files = get_study(peer, study_uid, tmp_path / "prior")
        assert len(files) == len(phantom)
        assert not find_studies(peer, patient_id="SOMEONE-ELSE")

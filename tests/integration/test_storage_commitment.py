"""Storage Commitment Push Model SCP: Orthanc asks (its report on a new association), and
pynetdicom's SCU asks (its report on the same association); after a restart a pending report
still goes out."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from helpers.net import free_port
from node_helpers import ct_phase_study, node_settings, running_node, storescu
from orthanc import Modality, OrthancServer
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import CommitmentRequest
from radraft.dicom_node.commitment import PUSH_INSTANCE_UID

CT = "1.2.840.10008.5.1.4.1.1.2"


def _until(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _request(refs: list[tuple[str, str]], transaction: str) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction
    items = []
    for sop_class, sop_uid in refs:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_uid
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


def test_orthanc_requests_commitment_and_gets_its_report(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=2)
    node_port, orthanc_port = free_port(), free_port()
    settings = node_settings(
        tmp_path / "data", db_url, node_port, stable_seconds=3600,
        commitment_peers={"ORTHANC": {"host": "127.0.0.1", "port": orthanc_port}})
    orthanc = OrthancServer(tmp_path / "orthanc", dicom_port=orthanc_port, modalities={
        "radraft": Modality("RADRAFT", "127.0.0.1", node_port)})
    with running_node(settings, sessions), orthanc:
        ids = [orthanc.upload(path)["ID"] for path in files]
        # C-STORE to radraft, then N-ACTION: Orthanc releases and waits for the report on
        # an association radraft opens to it.
        answer = orthanc.post("/modalities/radraft/store", {
            "Resources": ids, "Synchronous": True, "StorageCommitment": True})
        transaction = answer["StorageCommitmentTransactionUID"]
        result = _until("Orthanc's commitment result", lambda: (
            r if (r := orthanc.get(f"/storage-commitment/{transaction}"))["Status"]
            != "Pending" else None))
        assert result["Status"] == "Success" and len(result["Success"]) == 2
        assert result["Failures"] == []
        # One stored instance and one radraft never received: a failure, 0x0112.
        unknown = generate_uid()
        stored = str(dcmread(files[0]).SOPInstanceUID)
        asked = orthanc.post("/modalities/radraft/storage-commitment", {"DicomInstances": [
            {"SOPClassUID": CT, "SOPInstanceUID": stored},
            {"SOPClassUID": CT, "SOPInstanceUID": unknown}]})
        result = _until("the second result", lambda: (
            r if (r := orthanc.get(f"/storage-commitment/{asked['ID']}"))["Status"]
            != "Pending" else None))
        assert result["Status"] == "Failure"
        assert [s["SOPInstanceUID"] for s in result["Success"]] == [stored]
        [failure] = result["Failures"]
        assert failure["SOPInstanceUID"] == unknown and failure["FailureReason"] == 0x0112
    with sessions() as session:
        rows = session.scalars(select(CommitmentRequest).order_by(CommitmentRequest.id)).all()
        assert [r.state for r in rows] == ["reported", "reported"]
        assert rows[0].calling_aet == "ORTHANC"
        assert rows[1].result == {"success": 1, "failure": 1, "via": "new association"}


def test_pynetdicom_scu_gets_its_report_on_the_same_association(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=3)
    settings = node_settings(tmp_path / "data", db_url, free_port(), stable_seconds=3600)
    reports: list[tuple[int, Dataset]] = []
    got = threading.Event()

    def on_report(event: evt.Event) -> tuple[int, None]:
        reports.append((int(event.request.EventTypeID), event.event_information))
        got.set()
        return 0x0000, None

    with running_node(settings, sessions) as node:
        for path in files:
            assert storescu(path, node.port, calling="MODALITY").status == 0
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="RADRAFT",
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        assert assoc.is_established
        missing = generate_uid()
        refs = [(CT, str(dcmread(p).SOPInstanceUID)) for p in files] + [(CT, missing)]
        transaction = generate_uid()
        status, _ = assoc.send_n_action(_request(refs, transaction), 1,
                                        StorageCommitmentPushModel, PUSH_INSTANCE_UID)
        assert status.Status == 0x0000
        assert got.wait(30), "no N-EVENT-REPORT on the open association"
        assoc.release()
        # No action type 2 in the Push Model: 0x0123 no such action.
        assoc = ae.associate("127.0.0.1", node.port, ae_title="RADRAFT")
        status, _ = assoc.send_n_action(_request(refs, generate_uid()), 2,
                                        StorageCommitmentPushModel, PUSH_INSTANCE_UID)
        assert status.Status == 0x0123
        assoc.release()
    [(event_type, info)] = reports
    assert event_type == 2  # some failed
    assert info.TransactionUID == transaction
    assert len(info.ReferencedSOPSequence) == 3
    [failed] = info.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == missing and failed.FailureReason == 0x0112
    with sessions() as session:
        row = session.scalars(select(CommitmentRequest).where(
            CommitmentRequest.transaction_uid == transaction)).one()
        assert row.state == "reported" and row.result["via"] == "same association"


def test_pending_report_goes_out_after_a_restart(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    """The requester is down when radraft would report; radraft restarts; it comes up."""
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=1)
    peer_port = free_port()
    settings = node_settings(
        tmp_path / "data", db_url, free_port(), stable_seconds=3600, commitment_retry_s=0.5,
        commitment_peers={"MODALITY": {"host": "127.0.0.1", "port": peer_port}})
    transaction = generate_uid()
    with running_node(settings, sessions) as node:
        assert storescu(files[0], node.port, calling="MODALITY").status == 0
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="RADRAFT")
        refs = [(CT, str(dcmread(files[0]).SOPInstanceUID))]
        status, _ = assoc.send_n_action(_request(refs, transaction), 1,
                                        StorageCommitmentPushModel, PUSH_INSTANCE_UID)
        assert status.Status == 0x0000
        assoc.release()  # at once: the report needs a new association, to a peer that is down

        def tried() -> bool:
            with sessions() as session:
                row = session.scalars(select(CommitmentRequest)).one()
                return row.attempts >= 1 and row.state == "pending"
        _until("a failed attempt while the peer is down", tried)
    reports: list[Dataset] = []
    scp = AE(ae_title="MODALITY")
    scp.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    server = scp.start_server(("127.0.0.1", peer_port), block=False, evt_handlers=[
        (evt.EVT_N_EVENT_REPORT, lambda e: (reports.append(e.event_information), (0, None))[1])])
    try:
        with running_node(settings, sessions):
            _until("the report after the restart", lambda: reports)
    finally:
        server.shutdown()
    assert reports[0].TransactionUID == transaction
    assert len(reports[0].ReferencedSOPSequence) == 1

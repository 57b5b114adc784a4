"""Destination `kind: dicomweb`: the outbox delivers SR, TID 1500 and KOS by STOW-RS to
Orthanc's DICOMweb plugin (a peer no one here wrote), with the outbox's classification:
a refused object stops ("failed"), a PACS that is down retries, a re-send replaces itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from helpers.data import DICOM_DATA
from helpers.worker import worker_settings
from orthanc import OrthancServer
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Delivery, Draft, Job, db_now
from radraft.core.settings import Settings
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameRef, FrameSequence
from radraft.reporting.sr import build_outputs
from radraft.worker.outbox import OutboxItem, add_deliveries, deliver

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def outputs() -> dict[str, bytes]:
    """SR, TID 1500 and KOS of the contrast CT sample, one finding citing its first slice."""
    sources = [pydicom.dcmread(p, stop_before_pixels=True)
               for p in sorted((DICOM_DATA / "study_ct_wb_contrast_kos").glob("*.dcm"))]
    sources = [ds for ds in sources if ds.Modality == "CT"]
    refs = [FrameRef(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                     str(ds.SOPInstanceUID), str(ds.SOPClassUID), None, False,
                     ((str(ds.SOPInstanceUID), None),)) for ds in sources[:2]]
    seq = FrameSequence(np.zeros((len(refs), 2, 2, 3), np.uint8), [], refs)
    report = DraftReport.model_validate(dict(
        exam="CT", technique="", comparison="", clinical_history="",
        findings=[{"system": "liver", "text": "Hypodense lesion in segment VII.",
                   "severity": "significant", "finding_type": "SCT:52988006",
                   "finding_site": "SCT:10200004", "frames": [0]}],
        impression=[{"rank": 1, "text": "Hypodense liver lesion."}],
        recommendations=[], limitations="",
        triage={"level": "routine", "reasons": [], "critical_findings": []},
    ))
    built = build_outputs(report, seq, sources, settings=Settings(),
                          job_key=(refs[0].study_uid, "v1", "ct-generic"),
                          model_name="radraft-tiny", model_version="0.1", predecessor=None,
                          order=None, now=NOW)
    return built.to_bytes()


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path_factory.mktemp("orthanc"), dicomweb=True) as server:
        yield server


def _settings(tmp: Path, db_url: str, url: str) -> Settings:
    return worker_settings(tmp, db_url, destinations={
        "web": {"kind": "dicomweb", "url": url, "timeout_s": 10},
    }, delivery={"base_backoff_s": 10, "max_backoff_s": 60})


def _rows(session: Session, settings: Settings, items: list[OutboxItem],
          version: str = "v1") -> list[Delivery]:
    now = db_now(session)
    job = Job(study_uid="1.2.3", version=version, profile="ct-generic", state="done",
              created_at=now)
    session.add(job)
    session.flush()
    draft = Draft(job_id=job.id, study_uid="1.2.3", version=version, profile="ct-generic",
                  report={}, created_at=now)
    rows = add_deliveries(session, settings, draft, items, ["web"], now)
    session.commit()
    return rows


def _items(outputs: dict[str, bytes]) -> list[OutboxItem]:
    return [OutboxItem(kind, data, str(pydicom.dcmread(BytesIO(data)).SOPInstanceUID))
            for kind, data in outputs.items()]


def _qido(pacs: OrthancServer, path: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{pacs.dicomweb_url}{path}", timeout=30,
                         headers={"Accept": "application/dicom+json"})
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json() if response.content else []
    return result


def test_stow_rs_delivers_sr_tid1500_kos_and_replaces_on_resend(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], pacs: OrthancServer,
    outputs: dict[str, bytes],
) -> None:
    settings = _settings(tmp_path, db_url, pacs.dicomweb_url)
    items = _items(outputs)
    with sessions() as session:
        rows = _rows(session, settings, items)
        ids = [row.id for row in rows]
    # Text, HTML and PNG copies are not DICOM: only the three DICOM objects go to the PACS.
    assert len(ids) == 3
    for delivery_id in ids:
        assert deliver(sessions, settings, delivery_id, 0) == "delivered"
    sop_uids = {item.message_id for item in items}
    study_uid = str(pydicom.dcmread(BytesIO(outputs["sr"])).StudyInstanceUID)
    found = _qido(pacs, f"/studies/{study_uid}/instances")
    stored = {str(i["00080018"]["Value"][0]) for i in found}
    assert sop_uids <= stored
    modalities = {str(i["00080060"]["Value"][0]) for i in found
                  if str(i["00080018"]["Value"][0]) in sop_uids}
    assert modalities == {"SR", "KO"}
    # WADO-RS gives back the object that was sent, byte for byte in its dataset.
    sr_uid = str(pydicom.dcmread(BytesIO(outputs["sr"])).SOPInstanceUID)
    sr_series = str(pydicom.dcmread(BytesIO(outputs["sr"])).SeriesInstanceUID)
    response = httpx.get(
        f"{pacs.dicomweb_url}/studies/{study_uid}/series/{sr_series}/instances/{sr_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=30)
    assert response.status_code == 200
    start = response.content.index(b"DICM") - 128
    returned = pydicom.dcmread(BytesIO(response.content[start:]))
    original = pydicom.dcmread(BytesIO(outputs["sr"]))
    assert returned.SOPInstanceUID == sr_uid
    assert returned.ContentSequence == original.ContentSequence
    # A re-delivery of the same bytes replaces itself: still one instance per SOP UID.
    with sessions() as session:
        again = _rows(session, settings, items[:1], version="v2")
    assert deliver(sessions, settings, again[0].id, 0) == "delivered"
    found = _qido(pacs, f"/studies/{study_uid}/instances")
    uids = [str(i["00080018"]["Value"][0]) for i in found]
    assert uids.count(items[0].message_id) == 1


def test_refused_object_fails_permanently_with_the_reason(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], pacs: OrthancServer,
) -> None:
    settings = _settings(tmp_path, db_url, pacs.dicomweb_url)
    with sessions() as session:
        row = _rows(session, settings, [OutboxItem("sr", b"not a DICOM file", "9.9.9")])[0]
    assert deliver(sessions, settings, row.id, 0) == "failed"
    with sessions() as session:
        failed = session.get(Delivery, row.id)
        assert failed is not None
        assert failed.last_error.startswith("STOW-RS HTTP 4"), failed.last_error
        assert failed.next_attempt_at is None


def test_pacs_down_is_retried(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], outputs: dict[str, bytes],
) -> None:
    with OrthancServer(tmp_path / "gone", dicomweb=True) as gone:
        url = gone.dicomweb_url
    settings = _settings(tmp_path, db_url, url)
    with sessions() as session:
        row = _rows(session, settings, _items(outputs)[:1])[0]
    assert deliver(sessions, settings, row.id, 0) == "pending"
    with sessions() as session:
        waiting = session.get(Delivery, row.id)
        assert waiting is not None
        assert "STOW-RS" in waiting.last_error and waiting.next_attempt_at is not None

"""The draft where radiologists read: OHIF's prebuilt viewer (npm @ohif/app, pinned, served
as shipped) on Orthanc's DICOMweb plugin, in real headless Chromium.

A CT study is in the PACS; radraft's outbox delivers the SR (TID 2000), the TID 1500 report
and the KOS to it by STOW-RS (destination kind dicomweb); the test then opens the study as a
radiologist would and asserts what they see: the three objects as series of the right study
of the right patient, the CT images, and the draft report's findings, impression and AI
notice as OHIF renders a TID 2000 SR. What OHIF 3.13 does not render (a TID 1500 without
image regions, a KOS as key-image navigation) is recorded in README "Viewer and DICOMweb".
Screenshots: tests/artifacts/ohif/.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.worker import worker_settings
from ohif import OHIF_DIST, OhifServer
from orthanc import OrthancServer
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Draft, Job, db_now
from radraft.core.settings import Settings
from radraft.reporting.phantom import PhantomStudy, write_phantom_study
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameRef, FrameSequence
from radraft.reporting.sr import build_outputs
from radraft.worker.outbox import OutboxItem, add_deliveries, deliver

CHROMIUM = "/usr/bin/chromium"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
FINDING = "Hypodense lesion in segment VII of the liver."
IMPRESSION = "Hypodense liver lesion, indeterminate."
pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install the Debian packages chromium and chromium-driver"
    assert (OHIF_DIST / "index.html").exists(), "run deploy/viewer/fetch-ohif.sh (make test)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def _outputs(study: PhantomStudy, files: list[Path]) -> dict[str, bytes]:
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    refs = [FrameRef(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                     str(ds.SOPClassUID), None, False, ((str(ds.SOPInstanceUID), None),))
            for ds in sources]
    seq = FrameSequence(np.zeros((len(refs), 2, 2, 3), np.uint8), [], refs)
    report = DraftReport.model_validate(dict(
        exam="CT abdomen", technique="", comparison="", clinical_history="",
        findings=[{"system": "liver", "text": FINDING, "severity": "significant",
                   "finding_type": "SCT:52988006", "finding_site": "SCT:10200004",
                   "frames": [3]}],
        impression=[{"rank": 1, "text": IMPRESSION}], recommendations=[], limitations="",
        triage={"level": "routine", "reasons": [], "critical_findings": []},
    ))
    return build_outputs(report, seq, sources, settings=Settings(),
                         job_key=(study.study_uid, "v1", "ct-generic"), model_name="radraft-tiny",
                         model_version="0.1", predecessor=None, order=None,
                         now=datetime.now(UTC)).to_bytes()


def _deliver(sessions: sessionmaker[Session], settings: Settings, study_uid: str,
             outputs: dict[str, bytes]) -> None:
    items = [OutboxItem(kind, data, str(pydicom.dcmread(BytesIO(data)).SOPInstanceUID))
             for kind, data in outputs.items()]
    with sessions() as session:
        now = db_now(session)
        job = Job(study_uid=study_uid, version="v1", profile="ct-generic", state="done",
                  created_at=now)
        session.add(job)
        session.flush()
        draft = Draft(job_id=job.id, study_uid=study_uid, version="v1", profile="ct-generic",
                      report={}, created_at=now)
        rows = add_deliveries(session, settings, draft, items, ["pacs"], now)
        session.commit()
        ids = [row.id for row in rows]
    assert [deliver(sessions, settings, i, 0) for i in ids] == ["delivered"] * 3


def _dismiss(page: Page) -> None:
    """OHIF's first-visit tour and investigational-use banner cover the viewport; the tour
    comes up a moment after the study loads, so each is waited for (a while) once."""
    for text in ("Skip all", "Confirm and hide"):
        # Not shown: already dismissed, or this OHIF shows none.
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_text(text).first.click(timeout=15_000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_draft_in_ohif(browser: Browser, tmp_path: Path, db_url: str,
                           sessions: sessionmaker[Session], artifacts: Path) -> None:
    shots = artifacts / "ohif"
    shots.mkdir(parents=True, exist_ok=True)
    study = write_phantom_study(tmp_path / "ct", slices=8, size=128, phases=["portal venous"],
                                patient_id="OHIF-PT-7", accession="ACC-OHIF-7")
    files = sorted((tmp_path / "ct").rglob("*.dcm"))
    with OrthancServer(tmp_path / "orthanc", dicomweb=True) as pacs:
        for path in files:
            pacs.upload(path)
        settings = worker_settings(tmp_path, db_url, destinations={
            "pacs": {"kind": "dicomweb", "url": pacs.dicomweb_url, "timeout_s": 30}})
        _deliver(sessions, settings, study.study_uid, _outputs(study, files))
        with OhifServer(OHIF_DIST, pacs.url) as viewer:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # The study list: the study under its patient, with the SR and KO modalities.
            page.goto(f"{viewer.url}/?mrn={study.patient_id}")
            row = page.get_by_text(study.patient_id).first
            expect(row).to_be_visible(timeout=120_000)
            expect(page.get_by_text("CT\\KO\\SR").first).to_be_visible()
            page.screenshot(path=str(shots / "study-list.png"))

            page.goto(f"{viewer.url}/viewer?StudyInstanceUIDs={study.study_uid}")
            for title in ("radraft AI draft report (unverified)",
                          "radraft AI findings (TID 1500, unverified)",
                          "radraft AI key images"):
                expect(page.get_by_text(title).first).to_be_visible(timeout=120_000)
            _dismiss(page)
            # The CT itself is displayed (OHIF draws into a canvas once a frame decoded).
            expect(page.locator("canvas").first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(shots / "study-with-draft-series.png"))

            page.get_by_text("radraft AI draft report (unverified)").first.dblclick()
            expect(page.get_by_text(FINDING, exact=False).first).to_be_visible(timeout=60_000)
            body = page.inner_text("body")
            assert "Findings" in body and "Impressions" in body
            assert IMPRESSION in body
            assert "not reviewed by a radiologist" in body.lower()
            # People read "series N, image M" (the headers' numbers), never a frame index.
            assert re.search(r"\(series \d+, image \d+\)", body), body
            page.screenshot(path=str(shots / "draft-report-sr.png"))
            page.close()
    assert any("/dicom-web/studies/" in r and "/metadata" in r for r in viewer.requests)

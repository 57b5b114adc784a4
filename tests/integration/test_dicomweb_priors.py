"""`pacs.kind: dicomweb`: priors found by QIDO-RS and fetched by WADO-RS from Orthanc's
DICOMweb plugin, chosen by the same relevance rules as over C-FIND/C-GET (the same Orthanc
answers both, and both kinds pick the same studies)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from orthanc import OrthancServer

from radraft.core.db import Study
from radraft.core.settings import ProfileSettings, Settings
from radraft.reporting.phantom import PhantomStudy, write_phantom_study
from radraft.worker.gather import pacs_priors

NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def holdings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrthancServer, dict[
        str, PhantomStudy]]]:
    root = tmp_path_factory.mktemp("dicomweb-priors")
    current = write_phantom_study(root / "current", slices=2, size=32,
                                  phases=["portal venous"], patient_id="PRIOR-PT-1")
    ct_prior = write_phantom_study(root / "ct_prior", slices=3, size=32,
                                   phases=["portal venous"], prior_of=current)
    mr_prior = write_phantom_study(root / "mr_prior", modality="MR", slices=2, size=32,
                                   prior_of=current, study_date="20250101",
                                   accession="ACC-MR-P")
    other = write_phantom_study(root / "other", slices=2, size=32, phases=["portal venous"],
                                patient_id="SOMEONE-ELSE", study_date="20251001",
                                accession="ACC-OTHER")
    with OrthancServer(root / "orthanc", dicomweb=True, extra_config={
        "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
    }) as pacs:
        for study in (ct_prior, mr_prior, other):
            for path in sorted(study.directory.rglob("*.dcm")):
                pacs.upload(path)
        yield pacs, {"current": current, "ct": ct_prior, "mr": mr_prior, "other": other}


def _study(current: PhantomStudy) -> Study:
    return Study(study_uid=current.study_uid, patient_id=current.patient_id,
                 accession=current.accession, study_date=current.study_date, modalities="CT",
                 first_received_at=NOW, last_received_at=NOW)


def test_qido_wado_fetch_the_relevant_prior(
    tmp_path: Path, holdings: tuple[OrthancServer, dict[str, PhantomStudy]],
) -> None:
    pacs, studies = holdings
    settings = Settings(data_dir=tmp_path / "data", pacs={
        "kind": "dicomweb", "url": pacs.dicomweb_url, "timeout_s": 20})
    [folder] = pacs_priors(settings, _study(studies["current"]), ProfileSettings(max_priors=2))
    # The CT prior of the same patient; not the MR (another modality), not another patient.
    fetched = sorted(folder.glob("*.dcm"))
    originals = sorted(studies["ct"].directory.rglob("*.dcm"))
    assert len(fetched) == len(originals) == 3
    by_uid = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in originals}
    for path in fetched:
        got = pydicom.dcmread(path)
        assert got.StudyInstanceUID == studies["ct"].study_uid
        sent = pydicom.dcmread(by_uid[str(got.SOPInstanceUID)])
        assert np.array_equal(got.pixel_array, sent.pixel_array)
    # Held already: a second draft does not fetch it again.
    stamp = {p: p.stat().st_mtime_ns for p in fetched}
    assert pacs_priors(settings, _study(studies["current"]), ProfileSettings()) == [folder]
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*.dcm")} == stamp


def test_both_kinds_of_pacs_choose_the_same_priors(
    tmp_path: Path, holdings: tuple[OrthancServer, dict[str, PhantomStudy]],
) -> None:
    pacs, studies = holdings
    web = Settings(data_dir=tmp_path / "web", pacs={"kind": "dicomweb", "url": pacs.dicomweb_url})
    dimse = Settings(data_dir=tmp_path / "dimse", pacs={
        "kind": "dimse", "host": "127.0.0.1", "port": pacs.dicom_port, "ae_title": "ORTHANC",
        "retrieve": "get", "timeout_s": 20})
    profile = ProfileSettings(max_priors=5)
    chosen = [{p.name for p in pacs_priors(s, _study(studies["current"]), profile)}
              for s in (web, dimse)]
    assert chosen[0] == chosen[1] == {studies["ct"].study_uid}


def test_a_pacs_that_is_down_means_no_priors(tmp_path: Path,
                                             holdings: tuple[OrthancServer, dict[str, PhantomStudy]]
                                             ) -> None:
    _pacs, studies = holdings
    settings = Settings(data_dir=tmp_path / "data", pacs={
        "kind": "dicomweb", "url": "http://127.0.0.1:9/dicom-web", "timeout_s": 5})
    assert pacs_priors(settings, _study(studies["current"]), ProfileSettings()) == []

"""The synthetic study generator: valid headers, known geometry, contrast by phase."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from radraft.reporting.phantom import write_phantom_study


def test_ct_phantom_headers_geometry_and_contrast(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path, slices=8, size=64, include_localizer=True)
    assert [s.label for s in study.series] == [
        "localizer", "non-contrast", "arterial", "portal venous"]
    assert len(study.paths) == 1 + 3 * 8
    aorta_hu = {}
    for series in study.series[1:]:
        for path, sop, z in zip(series.paths, series.sop_uids, series.positions, strict=True):
            ds = pydicom.dcmread(path)
            assert ds.SOPInstanceUID == sop
            assert ds.StudyInstanceUID == study.study_uid
            assert float(ds.ImagePositionPatient[2]) == z
            assert ds.Modality == "CT" and ds.PixelRepresentation == 1
            assert ("ContrastBolusAgent" in ds) == (series.label != "non-contrast")
        hu = ds.pixel_array.astype(np.float32) * ds.RescaleSlope + ds.RescaleIntercept
        # The aorta sits 40 mm behind the centre, 8 mm left: sample its centre pixel.
        spacing = float(ds.PixelSpacing[0])
        row, col = int(31.5 + 40 / spacing), int(31.5 + 8 / spacing)
        aorta_hu[series.label] = float(hu[row - 1:row + 2, col - 1:col + 2].mean())
    assert aorta_hu["arterial"] > 250 > aorta_hu["portal venous"] > 100 > aorta_hu["non-contrast"]


def test_phantom_is_deterministic_and_prior_is_same_patient(tmp_path: Path) -> None:
    a = write_phantom_study(tmp_path / "a", slices=2, size=32)
    b = write_phantom_study(tmp_path / "b", slices=2, size=32)
    assert a.study_uid == b.study_uid and a.series[0].sop_uids == b.series[0].sop_uids
    prior = write_phantom_study(tmp_path / "p", slices=2, size=32, prior_of=a)
    assert prior.patient_id == a.patient_id
    assert prior.study_uid != a.study_uid
    assert prior.study_date < a.study_date


def test_mr_phantom_sequences(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path, modality="MR", slices=3, size=32)
    labels = []
    for series in study.series:
        ds = pydicom.dcmread(series.paths[0])
        assert ds.Modality == "MR" and ds.SOPClassUID == pydicom.uid.MRImageStorage
        labels.append((series.label, float(ds.RepetitionTime), "InversionTime" in ds))
    assert labels == [("T1", 500.0, False), ("T2", 4000.0, False), ("FLAIR", 9000.0, True)]

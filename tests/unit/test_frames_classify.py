"""Series classification: exclusions, CT phases (words, timing, image), MR sequences."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radraft.reporting.frames.classify import (
    ct_phase,
    ct_phase_from_image,
    exclusion_reason,
    mr_sequence,
)


def _ds(**values: object) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


@pytest.mark.parametrize(("description", "phase"), [
    ("Abdomen nativ 5mm", "non-contrast"),
    ("THORAX SANS INJECTION", "non-contrast"),
    ("CT abdomen w/o", "non-contrast"),
    ("Arteriell 1.0 Br40", "arterial"),
    ("Phase artérielle", "arterial"),
    ("PORTAL VENOUS 3mm", "portal venous"),
    ("Portalvenös 2mm", "portal venous"),
    ("Temps portal", "portal venous"),
    ("Spätphase 5 min", "delayed"),
    ("Excretory phase", "delayed"),
])
def test_ct_phase_from_description(description: str, phase: str) -> None:
    label = ct_phase(_ds(SeriesDescription=description), None)
    assert label is not None and (label.text, label.source) == (phase, "description")


def test_ct_phase_from_timing_and_contrast_agent() -> None:
    first = 10 * 3600
    early = _ds(SeriesDescription="Body 1.0", ContrastBolusAgent="Iomeprol",
                AcquisitionTime="100000")
    later = _ds(SeriesDescription="Body 1.0", ContrastBolusAgent="Iomeprol",
                AcquisitionTime="100045")
    latest = _ds(SeriesDescription="Body 1.0", ContrastBolusAgent="Iomeprol",
                 AcquisitionTime="100600")
    got = [ct_phase(ds, first) for ds in (early, later, latest)]
    assert [(g.text, g.source) for g in got if g] == [
        ("arterial", "timing"), ("portal venous", "timing"), ("delayed", "timing")]
    plain = ct_phase(_ds(SeriesDescription="Body 1.0", ContrastBolusAgent=""), first)
    assert plain is not None and plain.text == "non-contrast"
    assert ct_phase(_ds(SeriesDescription="Body 1.0"), None) is None


def _slice(aorta: float, liver: float) -> np.ndarray:
    """64² HU image: body, liver, a vertebra (cortex + cancellous bone), the aorta."""
    y, x = np.mgrid[0:64, 0:64]
    hu = np.full((64, 64), -1000.0, dtype=np.float32)
    hu[(x - 32) ** 2 / 900 + (y - 32) ** 2 / 600 <= 1] = 45
    hu[(x - 22) ** 2 + (y - 26) ** 2 <= 64] = liver
    hu[(x - 32) ** 2 + (y - 46) ** 2 <= 36] = 1000
    hu[(x - 32) ** 2 + (y - 46) ** 2 <= 20] = 230
    hu[(x - 34) ** 2 + (y - 34) ** 2 <= 4] = aorta
    return hu


@pytest.mark.parametrize(("aorta", "liver", "phase"), [
    (40, 55, "non-contrast"), (320, 70, "arterial"), (170, 115, "portal venous")])
def test_ct_phase_from_image_sets_bone_aside(aorta: float, liver: float, phase: str) -> None:
    label = ct_phase_from_image([_slice(aorta, liver)] * 3)
    assert (label.text, label.source) == (phase, "image")


@pytest.mark.parametrize(("values", "reason"), [
    ({"Modality": "SR"}, "non-image (SR)"),
    ({"Modality": "KO"}, "non-image (KO)"),
    ({"Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "secondary capture"),
    ({"Modality": "CT", "SeriesDescription": "Dose Report", "ImageType": ["DERIVED",
                                                                          "SECONDARY"]},
     "dose screen"),
    ({"Modality": "CT", "BurnedInAnnotation": "YES"}, "burned-in annotation"),
    ({"Modality": "CT", "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, "localizer"),
    ({"Modality": "CT", "SeriesDescription": "Topogram 0.6 T20s"}, "localizer"),
    ({"Modality": "MR", "SeriesDescription": "3-plane loc"}, "localizer"),
    ({"Modality": "CT", "Manufacturer": "radraft"}, "radraft output"),
    ({"Modality": "CT", "SeriesDescription": "Abdomen 1.0"}, None),
])
def test_exclusions(values: dict[str, object], reason: str | None) -> None:
    assert exclusion_reason(_ds(**values), has_pixels=True) == reason


@pytest.mark.parametrize(("values", "label"), [
    ({"RepetitionTime": 500, "EchoTime": 10}, "T1"),
    ({"RepetitionTime": 550, "EchoTime": 9, "ContrastBolusAgent": "Gadovist"},
     "T1 post-contrast"),
    ({"RepetitionTime": 4000, "EchoTime": 100}, "T2"),
    ({"RepetitionTime": 9000, "EchoTime": 120, "InversionTime": 2500}, "T2 FLAIR"),
    ({"RepetitionTime": 4000, "EchoTime": 60, "InversionTime": 150}, "STIR"),
    ({"SeriesDescription": "ep2d_diff b1000 trace"}, "DWI b=1000"),
    ({"SeriesDescription": "DWI", "DiffusionBValue": 800}, "DWI b=800"),
    ({"SeriesDescription": "ep2d_diff_ADC", "ImageType": ["DERIVED", "PRIMARY", "ADC"]}, "ADC"),
    ({"SeriesDescription": "SWI_Images"}, "SWI/T2*"),
    ({"SeriesDescription": "t2_tse_dark-fluid_tra"}, "T2 FLAIR"),
    ({"SeriesDescription": "something"}, "MR"),
])
def test_mr_sequences(values: dict[str, object], label: str) -> None:
    assert mr_sequence(_ds(**values)).text == label

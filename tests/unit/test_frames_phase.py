"""CT contrast phase from the description and the header, combined with the aorta's HU."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from radraft.reporting.frames.aorta import AortaFinding
from radraft.reporting.frames.phase import header_phase, phase_with_image


def _ds(**values: object) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


@pytest.mark.parametrize(("description", "phase"), [
    ("Abdomen nativ 5mm", "non-contrast"),
    ("THORAX SANS INJECTION", "non-contrast"),
    ("CT abdomen w/o", "non-contrast"),
    ("SmartScore - Gated 0.5 sec", "non-contrast"),
    ("Arteriell 1.0 Br40", "arterial"),
    ("Phase artérielle", "arterial"),
    ("PORTAL VENOUS 3mm", "portal venous"),
    ("Portalvenös 2mm", "portal venous"),
    ("Spätphase 5 min", "delayed"),
    ("Excretory phase", "delayed"),
])
def test_phase_from_description(description: str, phase: str) -> None:
    label, _ = header_phase(_ds(SeriesDescription=description))
    assert label is not None and (label.text, label.source) == (phase, "description")


@pytest.mark.parametrize(("start", "acquired", "phase"), [
    ("100000", "100030", "arterial"),
    ("100000", "100110", "portal venous"),
    ("100000", "100500", "delayed"),
    ("100000", "100230", "IV contrast, phase not determined"),  # 150 s: between bands
    ("235950", "000020", "arterial"),  # injected before midnight
])
def test_phase_from_bolus_start_time(start: str, acquired: str, phase: str) -> None:
    label, _ = header_phase(_ds(SeriesDescription="Body 1.0", ContrastBolusAgent="Iomeprol",
                                ContrastBolusRoute="IV", ContrastBolusStartTime=start,
                                AcquisitionTime=acquired))
    assert label is not None and (label.text, label.source) == (phase, "header")


def _aorta(hu: float, enhanced: bool) -> AortaFinding:
    return AortaFinding(enhanced, hu, 5, (-80.0, -20.0))


@pytest.mark.parametrize(("header", "aorta", "text"), [
    ({}, None, "contrast phase not determined"),
    ({}, _aorta(40, False), "no IV contrast"),
    ({}, _aorta(320, True), "arterial"),
    ({}, _aorta(180, True), "IV contrast, phase not determined"),
    ({"ContrastBolusAgent": "NONE"}, None, "non-contrast"),
    ({"ContrastBolusAgent": "NONE"}, _aorta(320, True), "contrast phase not determined"),
    ({"ContrastBolusAgent": "Barium", "ContrastBolusRoute": "ORAL"}, _aorta(40, False),
     "oral contrast only"),
    ({"ContrastBolusAgent": "Barium", "ContrastBolusRoute": "ORAL"}, None,
     "oral contrast; IV contrast phase not determined"),
    ({"ContrastBolusAgent": "Barium", "ContrastBolusRoute": "ORAL"}, _aorta(170, True),
     "IV contrast, phase not determined"),
    ({"ContrastBolusAgent": "Iomeprol", "ContrastBolusRoute": "IV"}, None,
     "IV contrast, phase not determined"),
    ({"ContrastBolusAgent": "Iomeprol", "ContrastBolusRoute": "IV"}, _aorta(40, False),
     "contrast phase not determined"),
    ({"ContrastBolusAgent": "CONTRAST"}, None, "contrast phase not determined"),
])
def test_header_and_aorta_together(header: dict[str, str], aorta: AortaFinding | None,
                                   text: str) -> None:
    label, contrast = header_phase(_ds(SeriesDescription="Body 1.0", **header))
    assert label is None
    assert phase_with_image(contrast, aorta).text == text

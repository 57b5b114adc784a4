"""Series classification: exclusions, derived images, MR sequences (CT phases:
test_frames_phase.py)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from radraft.reporting.frames.classify import derived_kind, exclusion_reason, mr_sequence


def _ds(**values: object) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


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
    ({"Modality": "MR", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.30"},
     "parametric map (float values with no display scale; not rendered)"),
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


@pytest.mark.parametrize(("values", "kind"), [
    ({"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]}, ""),
    ({"ImageType": ["DERIVED", "SECONDARY", "AXIAL"], "SeriesDescription": "CT WB"},
     "secondary"),
    ({"ImageType": ["DERIVED", "SECONDARY", "PROJECTION IMAGE"]}, "projection"),
    ({"ImageType": ["DERIVED", "SECONDARY", "REFORMATTED"], "SeriesDescription": "Cor 3mm"},
     "MPR"),
    ({"ImageType": ["DERIVED", "SECONDARY"], "SeriesDescription": "MIP 10mm"}, "MIP"),
    ({"ImageType": ["DERIVED", "PRIMARY", "PERFUSION", "RCBF"]}, "perfusion rcbf"),
])
def test_derived_images_are_named(values: dict[str, object], kind: str) -> None:
    assert derived_kind(_ds(**values)) == kind

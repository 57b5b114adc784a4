"""Where the tests' sample files are (tests/data, README there names each source)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
DICOM_DATA = DATA / "dicom"
HL7_DATA = DATA / "hl7"

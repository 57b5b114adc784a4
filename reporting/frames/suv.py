"""PET standardised uptake value (SUVbw) from the header, or why it cannot be computed.

SUVbw = activity concentration (Bq/ml) × body weight (g) / injected dose (Bq) decayed to
the time the image is decay corrected to:

- Decay Correction START: the image is corrected to the scan start (Series Date/Time,
  or the earliest Acquisition Time when that is earlier), so the dose is decayed from the
  injection (Radiopharmaceutical Start Date Time, else Series Date + Radiopharmaceutical
  Start Time) to that time;
- ADMIN: the image is corrected to the injection: the dose as injected;
- NONE: not decay corrected: the dose is decayed to each slice's Acquisition Time.

Required: Units BQML (GML is SUV already), Patient Weight, Radionuclide Total Dose and
Half Life, the injection time, and Corrected Image with ATTN (and DECY unless NONE).
Anything missing is named; the frames then say "SUV not computable" and show percentiles.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from pydicom.dataset import Dataset

from radraft.reporting.frames.phase import seconds_of


@dataclass(frozen=True, slots=True)
class SuvScale:
    """How to turn a slice's real-world values into SUVbw."""

    factors: tuple[float, ...] | None  # one per slice; None: not computable
    reason: str  # why not computable ("" when it is)
    evidence: str  # the header values it rests on


def _text(ds: Dataset, key: str) -> str:
    return str(ds.get(key, "") or "").strip()


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _datetime(date: str, time: str) -> dt.datetime | None:
    seconds = seconds_of(time)
    if len(date) < 8 or not date[:8].isdigit() or seconds is None:
        return None
    try:
        day = dt.datetime.strptime(date[:8], "%Y%m%d")
    except ValueError:
        return None
    return day + dt.timedelta(seconds=seconds)


def _injection(ds: Dataset, item: Dataset) -> dt.datetime | None:
    stamp = _text(item, "RadiopharmaceuticalStartDateTime")
    if len(stamp) >= 12:
        found = _datetime(stamp[:8], stamp[8:].split("+")[0].split("-")[0])
        if found is not None:
            return found
    date = _text(ds, "SeriesDate") or _text(ds, "AcquisitionDate") or _text(ds, "StudyDate")
    return _datetime(date, _text(item, "RadiopharmaceuticalStartTime"))


def suv_scale(ds: Dataset, acquisitions: list[tuple[str, str]]) -> SuvScale:
    """SUVbw factors for the slices of a PET series; `acquisitions` holds each slice's
    (Acquisition Date, Acquisition Time), in slice order."""
    units = _text(ds, "Units").upper()
    count = len(acquisitions)
    if units == "GML":
        return SuvScale((1.0,) * count, "", "Units GML (already SUVbw)")
    if units != "BQML":
        return SuvScale(None, f"Units {units or 'not given'} (not Bq/ml)", "")
    raw = ds.get("CorrectedImage") or []
    corrected = {str(v).strip().upper() for v in ([raw] if isinstance(raw, str) else raw)}
    decay = _text(ds, "DecayCorrection").upper()
    weight = _number(ds.get("PatientWeight"))
    items = ds.get("RadiopharmaceuticalInformationSequence") or []
    item = items[0] if items else Dataset()
    dose = _number(item.get("RadionuclideTotalDose"))
    half_life = _number(item.get("RadionuclideHalfLife"))
    injected = _injection(ds, item)
    missing = [name for name, ok in (
        ("Patient Weight", weight is not None and weight > 0),
        ("Radionuclide Total Dose", dose is not None and dose > 0),
        ("Radionuclide Half Life", half_life is not None and half_life > 0),
        ("Radiopharmaceutical Start Time", injected is not None),
        ("Decay Correction", decay in ("START", "ADMIN", "NONE")),
    ) if not ok]
    if "ATTN" not in corrected:
        missing.append("Corrected Image ATTN (not attenuation corrected)")
    if decay in ("START", "ADMIN") and "DECY" not in corrected:
        missing.append("Corrected Image DECY")
    if missing:
        return SuvScale(None, "missing " + ", ".join(missing), "")
    assert weight is not None and dose is not None and half_life is not None
    assert injected is not None
    series = _datetime(_text(ds, "SeriesDate") or _text(ds, "StudyDate"),
                       _text(ds, "SeriesTime"))
    times = [_datetime(d or _text(ds, "SeriesDate"), t) for d, t in acquisitions]
    known = [t for t in times if t is not None]
    start = min([t for t in (series, *known) if t is not None], default=None)
    evidence = (f"Units BQML, weight {weight:g} kg, dose {dose / 1e6:.0f} MBq, half life "
                f"{half_life:.0f} s, decay correction {decay}")

    def decayed(at: dt.datetime) -> float:
        elapsed = (at - injected).total_seconds()
        return dose * math.pow(2.0, -elapsed / half_life)

    if decay == "ADMIN":
        return SuvScale((weight * 1000 / dose,) * count, "", evidence)
    if decay == "START":
        if start is None:
            return SuvScale(None, "missing Series Time", "")
        minutes = (start - injected).total_seconds() / 60
        return SuvScale((weight * 1000 / decayed(start),) * count, "",
                        f"{evidence}, scan start {minutes:.0f} min after injection")
    if any(t is None for t in times):
        return SuvScale(None, "missing Acquisition Time (image not decay corrected)", "")
    return SuvScale(tuple(weight * 1000 / decayed(t) for t in known), "",
                    f"{evidence}, decayed to each slice's Acquisition Time")

"""What a series is: excluded (and why), CT contrast phase, MR sequence.

Metadata first (contrast agent, acquisition parameters, description keywords in several
languages, timing relative to the first contrast series); an image-based fallback for CT
phases when the metadata is silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

_NON_IMAGE_MODALITIES = {
    "SR": "non-image (SR)", "KO": "non-image (KO)", "PR": "non-image (PR)",
    "SEG": "non-image (SEG)", "RTSTRUCT": "non-image (RTSTRUCT)", "RTPLAN": "non-image (RTPLAN)",
    "RTDOSE": "non-image (RTDOSE)", "REG": "non-image (REG)", "DOC": "non-image (document)",
}
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_LOCALIZER = re.compile(
    r"\b(scout|topogram|localizer|localiser|surview|scanogram|pilot|survey|"
    r"3[- ]?plane|tri[- ]?pilot|loc)\b", re.IGNORECASE)
_DOSE = re.compile(r"\b(dose|patient protocol|dosis)\b", re.IGNORECASE)

_PHASE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("non-contrast", re.compile(
        r"non[- ]?contrast|\bnon[- ]?con\b|unenhanced|\bnative?\b|\bnativ\b|\bplain\b|"
        r"sans (injection|contraste)|sin contraste|senza (contrasto|mdc)|\bw/?o\b|"
        r"\bohne (km|kontrast)|\bnc\b|pre[- ]?contrast|blanco", re.IGNORECASE)),
    ("arterial", re.compile(
        r"arter|art[ée]riel|\bart\b|\bcta\b|angio|early|fr[üu]h", re.IGNORECASE)),
    ("portal venous", re.compile(
        r"portal|ven[öo]s|venous|veineu|\bpv\b|\bvp\b|portov|vena porta|venosa|pvp",
        re.IGNORECASE)),
    ("delayed", re.compile(
        r"delay|\blate\b|sp[äa]t|tardi|retard|excret|urogra|equilib|\bdel\b", re.IGNORECASE)),
)
_POST_CONTRAST = re.compile(
    r"\+ ?c\b|post|\bgd\b|gad|\bkm\b|kontrast|contrast|\bce\b|mdc|\+ ?gd", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Label:
    text: str  # "arterial", "T2 FLAIR", "DWI b=1000"
    source: str  # "description", "contrast agent", "timing", "image", "parameters", ""


def exclusion_reason(ds: Dataset, has_pixels: bool) -> str | None:
    """Why an object must not enter the frames, or None."""
    modality = str(ds.get("Modality", "") or "").upper()
    if modality in _NON_IMAGE_MODALITIES:
        return _NON_IMAGE_MODALITIES[modality]
    if not has_pixels:
        return f"non-image ({modality or 'no pixel data'})"
    manufacturer = str(ds.get("Manufacturer", "") or "")
    if manufacturer.lower().startswith("radraft") and "PHANTOM" not in manufacturer.upper():
        return "radraft output"
    description = str(ds.get("SeriesDescription", "") or "")
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "SCREEN SAVE" in image_type or (
            _DOSE.search(description) and "PRIMARY" not in image_type):
        return "dose screen"
    if str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE_PREFIX):
        return "secondary capture"
    if str(ds.get("BurnedInAnnotation", "") or "").upper() == "YES":
        return "burned-in annotation"
    if "LOCALIZER" in image_type or _LOCALIZER.search(description):
        return "localizer"
    return None


def _seconds(value: object) -> float | None:
    text = str(value or "").strip()
    if len(text) < 4 or not text[:6].replace(".", "").isdigit():
        return None
    hh, mm = int(text[0:2]), int(text[2:4])
    ss = float(text[4:]) if len(text) > 4 else 0.0
    return hh * 3600 + mm * 60 + ss


def acquisition_seconds(ds: Dataset) -> float | None:
    for key in ("AcquisitionTime", "SeriesTime", "ContentTime"):
        seconds = _seconds(ds.get(key))
        if seconds is not None:
            return seconds
    return None


def has_contrast_agent(ds: Dataset) -> bool:
    agent = str(ds.get("ContrastBolusAgent", "") or "").strip().lower()
    return bool(agent) and agent not in ("none", "no", "n", "nil", "0")


def ct_phase_from_description(description: str) -> str | None:
    for phase, pattern in _PHASE_WORDS:
        if pattern.search(description):
            return phase
    return None


def ct_phase(ds: Dataset, first_contrast_s: float | None) -> Label | None:
    """Phase from metadata, or None when the metadata is silent."""
    phase = ct_phase_from_description(str(ds.get("SeriesDescription", "") or ""))
    if phase is not None:
        return Label(phase, "description")
    contrast = has_contrast_agent(ds)
    acquired = acquisition_seconds(ds)
    if contrast and first_contrast_s is not None and acquired is not None:
        delay = acquired - first_contrast_s
        # The first contrast series is taken as arterial when later ones follow it.
        if delay < 25:
            return Label("arterial", "timing")
        if delay < 150:
            return Label("portal venous", "timing")
        return Label("delayed", "timing")
    if not contrast and "ContrastBolusAgent" in ds:
        return Label("non-contrast", "contrast agent")
    return None


def _dilate(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _touching(seed: npt.NDArray[np.bool_], within: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels of `within` connected to `seed` (geodesic reconstruction by dilation)."""
    region = seed & within
    for _ in range(max(within.shape)):
        grown = _dilate(region) & within
        if np.array_equal(grown, region):
            break
        region = grown
    return region


def ct_phase_from_image(images: list[npt.NDArray[np.float32]]) -> Label:
    """Fallback from HU images: the enhancing vessels' HU, bone set aside.

    Pixels of 120–600 HU connected to bone (> 600 HU: cortex, with its cancellous
    interior) are bone; the rest are vessels and enhancing organs. Their 99th percentile
    is the aorta in the arterial phase (> 250 HU) and the portal vein / aorta in the portal
    venous phase (130–250 HU); too few of them: non-contrast.
    """
    vessels: list[npt.NDArray[np.float32]] = []
    body = 0
    for hu in images:
        bone = _dilate(hu > 600)
        bright = (hu > 120) & (hu < 600)
        candidates = bright & ~_touching(bone, bright | bone)
        vessels.append(hu[candidates])
        body += int(np.count_nonzero(hu > -300))
    values = np.concatenate(vessels) if vessels else np.empty(0, np.float32)
    if body == 0 or values.size < max(8, body // 500):
        return Label("non-contrast", "image")
    peak = float(np.percentile(values, 99))
    if peak > 250:
        return Label("arterial", "image")
    if peak > 130:
        return Label("portal venous", "image")
    return Label("non-contrast", "image")


def mr_sequence(ds: Dataset) -> Label:
    """MR sequence from acquisition parameters first, the description second."""
    description = str(ds.get("SeriesDescription", "") or ds.get("ProtocolName", "") or "")
    image_type = " ".join(str(v).upper() for v in (ds.get("ImageType") or []))
    contrast = has_contrast_agent(ds) or _POST_CONTRAST.search(description) is not None
    post = " post-contrast" if contrast else ""
    b_value = ds.get("DiffusionBValue")
    if "ADC" in image_type or re.search(r"(?<![a-z])adc(?![a-z])|apparent diff", description, re.I):
        return Label("ADC", "parameters" if "ADC" in image_type else "description")
    if b_value is not None or re.search(r"dwi|diffus|\btrace\b|\bep2d_diff", description, re.I):
        found = re.search(r"b\s*=?\s*(\d{2,4})", description, re.I)
        b = int(float(b_value)) if b_value is not None else (int(found.group(1)) if found else None)
        return Label(f"DWI b={b}" if b is not None else "DWI",
                     "parameters" if b_value is not None else "description")
    if re.search(r"(?<![a-z])(swi|gre)(?![a-z])|swan|t2\*|t2star|hemo|ffe",
                 description, re.I) or \
            "SWI" in image_type:
        return Label("SWI/T2*", "description")
    tr = _number(ds.get("RepetitionTime"))
    te = _number(ds.get("EchoTime"))
    ti = _number(ds.get("InversionTime"))
    if ti is not None and ti > 1500:
        return Label("T2 FLAIR", "parameters")
    if ti is not None and 80 <= ti <= 250:
        return Label("STIR", "parameters")
    if tr is not None and te is not None:
        if tr < 1000 and te < 30:
            return Label("T1" + post, "parameters")
        if tr >= 2000 and te >= 60:
            return Label("T2", "parameters")
        if tr >= 2000 and te < 40:
            return Label("PD", "parameters")
    for name, pattern in (("T2 FLAIR", r"flair|dark[- ]?fluid"), ("STIR", r"stir|tirm"),
                          ("T1", r"t1|mprage|spgr|vibe|lava|thrive"), ("T2", r"t2"),
                          ("PD", r"\bpd\b|proton")):
        if re.search(pattern, description, re.I):
            return Label(name + (post if name == "T1" else ""), "description")
    return Label("MR", "")


def _number(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None

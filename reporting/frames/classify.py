"""What a series is: excluded (and why), MR sequence. CT contrast phases: `phase`.

MR: acquisition parameters first, then description keywords.
"""

from __future__ import annotations

import re

from pydicom.dataset import Dataset

from radraft.reporting.frames.phase import Label, seconds_of

_NON_IMAGE_MODALITIES = {
    "SR": "non-image (SR)", "KO": "non-image (KO)", "PR": "non-image (PR)",
    "SEG": "non-image (SEG)", "RTSTRUCT": "non-image (RTSTRUCT)", "RTPLAN": "non-image (RTPLAN)",
    "RTDOSE": "non-image (RTDOSE)", "REG": "non-image (REG)", "DOC": "non-image (document)",
}
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
_DERIVED_WORDS = (("MIP", re.compile(r"\bmip\b|max(imum)? intensity", re.I)),
                  ("MinIP", re.compile(r"\bmin-?ip\b", re.I)),
                  ("MPR", re.compile(r"\bmpr\b|reformat|\bmpr?\b|\b(cor|sag)\b", re.I)),
                  ("volume rendering", re.compile(r"\bvr\b|\b3d\b|volume render", re.I)),
                  ("subtraction", re.compile(r"subtract|\bsub\b", re.I)))
_LOCALIZER = re.compile(
    r"\b(scout|topogram|localizer|localiser|surview|scanogram|pilot|survey|"
    r"3[- ]?plane|tri[- ]?pilot|loc)\b", re.IGNORECASE)
_DOSE = re.compile(r"\b(dose|patient protocol|dosis)\b", re.IGNORECASE)

_POST_CONTRAST = re.compile(
    r"\+ ?c\b|post|\bgd\b|gad|\bkm\b|kontrast|contrast|\bce\b|mdc|\+ ?gd", re.IGNORECASE)


def exclusion_reason(ds: Dataset, has_pixels: bool) -> str | None:
    """Why an object must not enter the frames, or None."""
    modality = str(ds.get("Modality", "") or "").upper()
    if modality in _NON_IMAGE_MODALITIES:
        return _NON_IMAGE_MODALITIES[modality]
    if str(ds.get("SOPClassUID", "")) == _PARAMETRIC_MAP:
        return "parametric map (float values with no display scale; not rendered)"
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


def derived_kind(ds: Dataset) -> str:
    """What a DERIVED image is ("MPR", "MIP", "PERFUSION"...), or "" for an original."""
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    description = str(ds.get("SeriesDescription", "") or "")
    if not image_type or image_type[0] != "DERIVED":
        return ""
    for name, pattern in _DERIVED_WORDS:
        if pattern.search(description):
            return name
    words = [v for v in image_type[2:] if v and v not in ("AXIAL", "HELIX", "NONE")]
    known = {"PROJECTION IMAGE": "projection", "MIP": "MIP", "MPR": "MPR",
             "REFORMATTED": "MPR", "VOLUME": "volume rendering"}
    for word in words:
        if word in known:
            return known[word]
    return " ".join(w.lower() for w in words) or image_type[1].lower() or "derived"


def acquisition_seconds(ds: Dataset) -> float | None:
    for key in ("AcquisitionTime", "SeriesTime", "ContentTime"):
        seconds = seconds_of(ds.get(key))
        if seconds is not None:
            return seconds
    return None


def has_contrast_agent(ds: Dataset) -> bool:
    agent = str(ds.get("ContrastBolusAgent", "") or "").strip().lower()
    return bool(agent) and agent not in ("none", "no", "n", "nil", "0")


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

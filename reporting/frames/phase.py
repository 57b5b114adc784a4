"""CT contrast phase: the description, then the header, then a measurement; never a guess.

Order (README "Contrast phase"):

1. The series description names a phase (keywords in five languages, calcium scoring).
2. The header: Contrast/Bolus Agent (absent, empty or "NONE": no agent stated), Contrast/
   Bolus Route (oral vs intravenous), and the delay from Contrast/Bolus Start Time to the
   Acquisition Time: 10–45 s arterial, 50–120 s portal venous, 180 s or more delayed; a
   delay between those bands is stated as such, with no phase.
3. The aorta's blood, located and measured on the image (`aorta.locate_aorta`): enhanced
   above 300 HU is arterial; enhanced at 130–300 HU is "IV contrast, phase not determined";
   unenhanced is "no IV contrast" (which oral contrast does not change).
4. Otherwise "contrast phase not determined".

A header that says no agent while the aorta is enhanced (or an oral agent while it is
enhanced) is reported as the disagreement it is, not resolved by guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from radraft.reporting.frames.aorta import AortaFinding

NOT_DETERMINED = "contrast phase not determined"
IV_UNKNOWN = "IV contrast, phase not determined"
NO_IV = "no IV contrast"
ORAL_ONLY = "oral contrast only"
ARTERIAL_HU = 300.0

_PHASE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("non-contrast", re.compile(
        r"non[- ]?contrast|\bnon[- ]?con\b|unenhanced|\bnative?\b|\bnativ\b|\bplain\b|"
        r"sans (injection|contraste)|sin contraste|senza (contrasto|mdc)|\bw/?o\b|"
        r"\bohne (km|kontrast)|\bnc\b|pre[- ]?contrast|blanco|calcium scor|smart ?score|"
        r"\bca[- ]?scor", re.IGNORECASE)),
    ("arterial", re.compile(
        r"arter|art[ée]riel|\bart\b|\bcta\b|angio|fr[üu]h", re.IGNORECASE)),
    ("portal venous", re.compile(
        r"portal|ven[öo]s|venous|veineu|\bpv\b|\bvp\b|portov|vena porta|venosa|pvp",
        re.IGNORECASE)),
    ("delayed", re.compile(
        r"delay|\blate\b|sp[äa]t|tardi|retard|excret|urogra|equilib|\bdel\b", re.IGNORECASE)),
)
_ORAL_ROUTE = re.compile(r"^(oral|po|per ?os|enteral|by mouth)$", re.IGNORECASE)
_IV_ROUTE = re.compile(r"\b(iv|intravenous|intra-?venous|intra-?arterial|ia)\b", re.IGNORECASE)
_ORAL_WORDS = re.compile(r"\boral\b|\bpo contrast|\bper os\b", re.IGNORECASE)
_NO_AGENT = ("none", "no", "n", "nil", "0", "no contrast")
_BANDS = ((10.0, 45.0, "arterial"), (50.0, 120.0, "portal venous"), (180.0, 3600.0, "delayed"))


@dataclass(frozen=True, slots=True)
class Label:
    text: str  # "arterial", "T2 FLAIR", "DWI b=1000", "contrast phase not determined"
    source: str  # "description", "header", "image", "parameters", ""
    evidence: str = ""  # what the label rests on, in words a reader can check


@dataclass(frozen=True, slots=True)
class HeaderContrast:
    """What the header says about contrast, before the image is looked at."""

    stated: str  # "none" (explicit NONE), "absent" (no agent), "oral", "iv", "unknown route"
    agent: str
    route: str
    label: Label | None  # final when the header alone decides (timing)


def _text(ds: Dataset, key: str) -> str:
    return str(ds.get(key, "") or "").strip().strip("\x00").strip()


def seconds_of(value: object) -> float | None:
    text = str(value or "").strip()
    if len(text) < 4 or not text[:6].replace(".", "").isdigit():
        return None
    try:
        hh, mm = int(text[0:2]), int(text[2:4])
        ss = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return None
    return hh * 3600 + mm * 60 + ss


def phase_from_description(description: str) -> str | None:
    for phase, pattern in _PHASE_WORDS:
        if pattern.search(description):
            return phase
    return None


def header_contrast(ds: Dataset) -> HeaderContrast:
    agent = _text(ds, "ContrastBolusAgent")
    route = _text(ds, "ContrastBolusRoute")
    description = f"{_text(ds, 'SeriesDescription')} {_text(ds, 'ProtocolName')}"
    if not agent:
        return HeaderContrast("absent", "", route, None)
    if agent.lower() in _NO_AGENT:
        return HeaderContrast("none", agent, route, None)
    said = f"Contrast/Bolus Agent {agent!r}"
    if _ORAL_ROUTE.match(route) or (not route and _ORAL_WORDS.search(f"{agent} {description}")):
        return HeaderContrast("oral", agent, route, None)
    stated = "iv" if _IV_ROUTE.search(route) else "unknown route"
    start = seconds_of(ds.get("ContrastBolusStartTime"))
    acquired = seconds_of(ds.get("AcquisitionTime")) or seconds_of(ds.get("SeriesTime"))
    if start is None or acquired is None:
        return HeaderContrast(stated, agent, route, None)
    delay = acquired - start
    if delay < -12 * 3600:
        delay += 24 * 3600  # injected before midnight
    route_words = f"route {route}" if route else "route not stated"
    evidence = (f"{said}, {route_words}, acquired {delay:.0f} s after Contrast/Bolus "
                "Start Time")
    for low, high, phase in _BANDS:
        if low <= delay <= high:
            return HeaderContrast(stated, agent, route, Label(phase, "header", evidence))
    return HeaderContrast(stated, agent, route, Label(IV_UNKNOWN, "header", evidence))


def header_phase(ds: Dataset) -> tuple[Label | None, HeaderContrast]:
    """The phase from the description or the header alone; None: measure the image."""
    phase = phase_from_description(_text(ds, "SeriesDescription")
                                   or _text(ds, "ProtocolName"))
    contrast = header_contrast(ds)
    if phase is not None:
        said = _text(ds, "SeriesDescription") or _text(ds, "ProtocolName")
        return Label(phase, "description", f"series description {said!r}"), contrast
    return contrast.label, contrast


def phase_with_image(contrast: HeaderContrast, aorta: AortaFinding | None) -> Label:
    """The header's statement combined with the aorta's measurement (or its absence)."""
    agent = f"Contrast/Bolus Agent {contrast.agent!r}"
    route = f"route {contrast.route}" if contrast.route else "route not stated"
    if aorta is None:
        reason = "aorta not located on the sampled slices"
        if contrast.stated == "none":
            return Label("non-contrast", "header", f"{agent}; {reason}")
        if contrast.stated == "oral":
            return Label(f"oral contrast; IV {NOT_DETERMINED}", "header",
                         f"{agent}, {route}; {reason}")
        if contrast.stated == "absent":
            return Label(NOT_DETERMINED, "", f"no contrast agent in the header; {reason}")
        return Label(IV_UNKNOWN if contrast.stated == "iv" else NOT_DETERMINED, "header",
                     f"{agent}, {route}, no injection time; {reason}")
    measured = aorta.evidence()
    if not aorta.enhanced:
        if contrast.stated == "oral":
            return Label(ORAL_ONLY, "header+image", f"{agent}, {route}; {measured}")
        if contrast.stated in ("iv", "unknown route"):
            # An IV agent in the header and unenhanced blood: too late, or not IV at all.
            return Label(NOT_DETERMINED, "", f"{agent}, {route}, but {measured}")
        source = "header+image" if contrast.stated == "none" else "image"
        text = "non-contrast" if contrast.stated == "none" else NO_IV
        return Label(text, source, measured if contrast.stated == "absent"
                     else f"{agent}; {measured}")
    if contrast.stated == "none":
        return Label(NOT_DETERMINED, "", f"{agent} (none) but {measured} (enhanced)")
    prefix = "" if contrast.stated == "absent" else f"{agent}, {route}; "
    if aorta.hu > ARTERIAL_HU:
        return Label("arterial", "image", prefix + measured)
    return Label(IV_UNKNOWN, "image", prefix + measured)

"""`profile: auto`: the profile a study gets from its modality and body part when no rule
chose one, and the reason, for the output to state (frames summary, draft report.json).

Read from the headers (no pixels): the image modalities, Body Part Examined, Study and
Series Descriptions, Protocol Names. PET in the study → `pet-ct`; CT: angiography words →
`ct-angio`, whole body → `ct-generic`, stroke → `ct-stroke`, head → `ct-head`, chest →
`ct-chest`, abdomen/pelvis with two or more contrast series → `ct-abdomen-multiphase`,
else `ct-generic`; MR: head → `mr-brain`, else `mr-generic`. A chosen name that is not
configured falls back to the generic profile of the modality.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from radraft.reporting.frames.classify import exclusion_reason
from radraft.reporting.frames.headers import HeaderValues
from radraft.reporting.frames.loading import scan
from radraft.reporting.frames.phase import phase_from_description

AUTO = "auto"
_HEAD = re.compile(r"head|brain|skull|cran|kopf|sch[äa]del|cerebr|neuro", re.I)
_STROKE = re.compile(r"stroke|perfusion|\bcta? ?head\b.*angio", re.I)
_ANGIO = re.compile(r"\bcta\b|angio", re.I)
_CHEST = re.compile(r"chest|thorax|lung|thx|pulmo", re.I)
_WHOLE_BODY = re.compile(r"whole ?body|\bwb\b|skull.{0,12}thigh|vertex", re.I)
_ABDOMEN = re.compile(r"abdom|pelvi|liver|leber|abd\b|kidney|renal", re.I)


def _text(ds: Dataset, key: str) -> str:
    return str(ds.get(key, "") or "").strip()


def choose_profile(study: Path | Sequence[Dataset], profiles: Collection[str],
                   ) -> tuple[str, str]:
    """(profile name, why) for a study folder or its datasets."""
    instances, _ = scan(study, None, HeaderValues())
    series: dict[str, Dataset] = {}
    for inst in instances:
        uid = str(inst.get("SeriesInstanceUID", "") or "")
        if uid not in series and exclusion_reason(inst.header, inst.has_pixels) is None:
            series[uid] = inst.header
    modalities = sorted({_text(ds, "Modality").upper() for ds in series.values()})
    words = " ".join(f"{_text(ds, 'BodyPartExamined')} {_text(ds, 'StudyDescription')} "
                     f"{_text(ds, 'SeriesDescription')} {_text(ds, 'ProtocolName')}"
                     for ds in series.values())
    name, why = _rule(modalities, words, list(series.values()))
    if name not in profiles:
        fallback = "mr-generic" if name.startswith("mr-") else "ct-generic"
        why += f"; {name!r} is not configured, so {fallback}"
        name = fallback
    return name, f"auto: {why}"


def _rule(modalities: list[str], words: str, headers: list[Dataset]) -> tuple[str, str]:
    shown = "/".join(modalities) or "no image series"
    if "PT" in modalities:
        return "pet-ct", f"{shown} study (PET present)"
    if "CT" in modalities:
        if _ANGIO.search(words):
            return "ct-angio", "CT with angiography in the descriptions"
        if _WHOLE_BODY.search(words):
            return "ct-generic", "whole-body CT (windows by length and body part)"
        if _HEAD.search(words):
            if _STROKE.search(words):
                return "ct-stroke", "CT head with stroke/perfusion in the descriptions"
            return "ct-head", "CT of the head (body part / descriptions)"
        if _CHEST.search(words) and not _ABDOMEN.search(words):
            return "ct-chest", "CT of the chest (body part / descriptions)"
        if _ABDOMEN.search(words):
            contrast = [ds for ds in headers if _text(ds, "Modality").upper() == "CT" and (
                _text(ds, "ContrastBolusAgent") or phase_from_description(
                    _text(ds, "SeriesDescription")) not in (None, "non-contrast"))]
            if len(contrast) >= 2:
                return "ct-abdomen-multiphase", (
                    f"CT of the abdomen with {len(contrast)} contrast series")
        return "ct-generic", "CT, body part not specific"
    if "MR" in modalities:
        if _HEAD.search(words):
            return "mr-brain", "MR of the head (body part / descriptions)"
        return "mr-generic", "MR, body part not the head"
    return "ct-generic", f"{shown}: no specific profile"

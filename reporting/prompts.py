"""The drafting prompt: instructions, the segment table, metadata, EHR context, prior text.

Each part has a character budget, so a long EHR history can never push the frames out of
the model's context. The prompt's SHA-256 goes into the audit trail. When the model endpoint
is not on this host (`remote=True`) the prompt carries no patient identifiers: no name, MRN,
birth date or accession — age and sex only (DESIGN.md "Rules of the house").
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from radraft.reporting.frames import segment_table_text
from radraft.reporting.report_schema import request_schema
from radraft.reporting.sequence import FrameSequence

SYSTEM_PROMPT = (
    "You are a radiology assistant drafting a structured report for a radiologist to review. "
    "The video is the whole imaging study: every series, contrast phase, MR sequence, window "
    "and prior exam, one after another; the frame table says which frames show what: "
    "series number, description and plane, and what each label rests on. A contrast phase "
    "is stated only where the header or a measurement of the aorta supports it; 'contrast "
    "phase not determined' means unknown, so do not name a phase then. PET frames are SUVbw "
    "on a fixed scale (inverted grey: black is high uptake), with a rotating MIP and CT-PET "
    "fusion when the table says so; a 'note:' line says when PET and CT cannot be compared. "
    "Rules: describe only what the frames show; cite the frame indices (0-based, as in the "
    "table) that support each finding; say plainly what is uncertain or not assessable; "
    "compare with prior exams only when prior frames or prior reports are given, and never "
    "invent a prior; set triage to critical only for findings that need action within the "
    "hour (e.g. intracranial haemorrhage, aortic dissection, tension pneumothorax, free "
    "air), urgent for findings that need action today. Answer with one JSON object that "
    "follows the schema; no other text."
)

# Character budgets per part (about 4 characters a token).
BUDGETS = {"table": 6000, "metadata": 800, "context": 3000, "priors": 3000, "profile": 1500}

_IDENTIFYING_KEYS = ("patient_id", "accession", "patient_name", "patient_birth_date")


@dataclass(frozen=True)
class Prompt:
    """What the backend sends: system and user text, the frame count and the schema."""

    system: str
    text: str
    frame_count: int
    schema: dict[str, Any] = field(repr=False)
    remote: bool

    @property
    def sha256(self) -> str:
        """Digest of everything the model reads besides the pixels (for the audit trail)."""
        blob = json.dumps({"system": self.system, "text": self.text,
                           "frames": self.frame_count}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _clip(text: str, budget: int) -> str:
    text = text.strip()
    if len(text) <= budget:
        return text
    return text[: max(0, budget - 14)].rstrip() + " [shortened]"


def _metadata_text(metadata: dict[str, Any], *, remote: bool) -> str:
    lines = []
    labels = {"modality": "Modality", "study_description": "Study", "body_part": "Body part",
              "study_date": "Study date", "patient_age": "Patient age",
              "patient_sex": "Patient sex", "accession": "Accession",
              "patient_id": "Patient ID"}
    for key, label in labels.items():
        if remote and key in _IDENTIFYING_KEYS:
            continue
        value = str(metadata.get(key, "") or "").strip()
        if value:
            lines.append(f"{label}: {value}")
    priors = metadata.get("priors") or []
    if priors:
        dates = ", ".join(str(p.get("study_date", "")) for p in priors)
        lines.append(f"Prior studies in the video: {len(priors)} ({dates})")
    else:
        lines.append("Prior studies in the video: none")
    return "\n".join(lines)


def scrub_identifiers(text: str, metadata: dict[str, Any]) -> str:
    """Blank out the study's own identifiers if they appear inside free text."""
    for key in _IDENTIFYING_KEYS:
        value = str(metadata.get(key, "") or "").strip()
        if len(value) >= 3:
            text = re.sub(re.escape(value), "[removed]", text, flags=re.IGNORECASE)
    return text


def build_prompt(
    seq: FrameSequence, *, context: str = "", profile_prompt: str = "", remote: bool = False,
    prior_reports: str = "",
) -> Prompt:
    """The prompt for one draft of `seq` (what `ModelBackend.draft` reads beside it)."""
    parts = [
        f"The video has {seq.frame_count} frames (indices 0 to {seq.frame_count - 1}).",
        "Frame table:\n" + _clip(segment_table_text(seq), BUDGETS["table"]),
        "Study:\n" + _clip(_metadata_text(seq.metadata, remote=remote), BUDGETS["metadata"]),
    ]
    if context.strip():
        parts.append("Clinical context from the EHR:\n" + _clip(context, BUDGETS["context"]))
    else:
        parts.append("Clinical context from the EHR: none available.")
    if prior_reports.strip():
        parts.append("Prior reports:\n" + _clip(prior_reports, BUDGETS["priors"]))
    if profile_prompt.strip():
        parts.append("Site instructions:\n" + _clip(profile_prompt, BUDGETS["profile"]))
    text = "\n\n".join(parts)
    if remote:
        text = scrub_identifiers(text, seq.metadata)
    return Prompt(system=SYSTEM_PROMPT, text=text, frame_count=seq.frame_count,
                  schema=request_schema(seq.frame_count), remote=remote)

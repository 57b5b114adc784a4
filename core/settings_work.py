"""Settings of the drafting work: the model, the profiles (and their defaults), the answer
check and alert policy, retention, deliveries, jobs and the quality loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
)

from radraft.core.recipe import FrameRecipe
from radraft.core.settings_base import _Strict


class ModelSettings(_Strict):
    backend: Literal["transformers", "openai"] = "transformers"
    # Model directory for the in-process backend; empty: <data_dir>/models/tiny.
    path: Path | None = None
    base_urls: list[str] = Field(default_factory=list)
    name: str = "radraft-tiny"
    # The model's revision as the outputs state it (TID 4019, device observer); empty: the
    # weights' Hugging Face commit or digest (in-process), "unstated" (remote server).
    version: str = Field("", max_length=64)
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    api_key: SecretStr = SecretStr("")
    # Longest answer; every schema string and list is bounded, so this is only a backstop.
    max_tokens: int = Field(4096, ge=256)
    # Visual tokens the video may spend (the frame budget); the rest of the context is text.
    max_video_tokens: int = Field(12288, ge=64)
    # The served model's video processor pixel range per frame (Qwen2.5-VL's defaults): the
    # token arithmetic of the budget and of the truncation check follows the server's resize.
    video_min_pixels: int = Field(128 * 28 * 28, ge=28 * 28)
    video_max_pixels: int = Field(768 * 28 * 28, ge=28 * 28)
    # An endpoint that failed is left out for this long before it is tried again.
    endpoint_cooldown_s: float = Field(30.0, ge=0)


Mode = Literal["live", "shadow"]


class ProfileSettings(_Strict):
    # shadow: drafted, built and stored, delivered only to destinations with `shadow: true`
    # (README "Shadow mode and the quality loop").
    mode: Mode = "live"
    frames: FrameRecipe = Field(default_factory=FrameRecipe)
    prompt: str = ""
    send_hl7: bool = True
    labs: list[str] = Field(default_factory=list)
    lab_window_days: int = Field(30, ge=0)
    max_priors: int = Field(2, ge=0)
    prior_window_days: int = Field(1825, ge=0)
    # Coded finding types / sites the consistency check allows (reporting.codes keys such as
    # "SCT:59282003" or meanings such as "Pulmonary embolism"); empty: every code.
    finding_types: list[str] = Field(default_factory=list)
    finding_sites: list[str] = Field(default_factory=list)
    # Prefetch relevance (an order's priors fetched before its study): modalities and body
    # parts a prior must have (empty: the order's own modality / any body part).
    prior_modalities: list[str] = Field(default_factory=list)
    prior_body_parts: list[str] = Field(default_factory=list)



class AlertSettings(_Strict):
    """The ED alert: what happens when the model's triage fails the consistency check."""

    # hold: no alert, the ED board says "AI triage unsupported — radiologist review";
    # send: the alert goes and says why it was sent anyway.
    unsupported: Literal["hold", "send"] = "hold"
    # Link to the key image in the alert: {console_url}, {study_uid}, {series_uid},
    # {sop_uid}, {frame} (1-based frame number, 1 for single-frame) and {frame_index}.
    key_image_url: str = "{console_url}/studies/{study_uid}#frame-{frame_index}"
    # The console as the ED reaches it; empty: http://<web.host>:<web.port>.
    console_url: str = ""


class ConsistencySettings(_Strict):
    # How often the model is asked again, with the reasons, when its answer fails the check.
    max_reasks: int = Field(1, ge=0, le=3)


class RetentionSettings(_Strict):
    studies_days: int = Field(30, ge=0)
    priors_days: int = Field(7, ge=0)
    outbox_days: int = Field(30, ge=0)


class DeliverySettings(_Strict):
    max_age_hours: float = Field(72.0, gt=0)
    base_backoff_s: float = Field(10.0, gt=0)
    max_backoff_s: float = Field(1800.0, gt=0)


class JobSettings(_Strict):
    max_attempts: int = Field(3, ge=1)
    sweep_interval_s: float = Field(15.0, gt=0)
    time_limit_s: float = Field(1800.0, gt=0)
    # A queued row whose wake-up was lost (embedded broker, failed publish) is re-sent after
    # this long; a duplicate wake-up is harmless (claims check the attempts count).
    redeliver_after_s: float = Field(300.0, gt=0)
    # Workers beat every heartbeat_s; a running job whose worker missed heartbeat_misses
    # beats is released by the sweeper at once instead of after time_limit_s.
    heartbeat_s: float = Field(10.0, gt=0)
    heartbeat_misses: int = Field(3, ge=2)



def _default_profiles() -> dict[str, ProfileSettings]:
    """Named frame recipes (reporting.frames); windows are CT presets, MR uses percentiles."""
    def recipe(labs: list[str], sites: list[str] | None = None,
               **fields: Any) -> ProfileSettings:
        return ProfileSettings(frames=FrameRecipe(**fields), labs=labs,
                               finding_sites=sites or [])

    # Labs for the clinical context (ehr.context): LOINC codes or words of the test name.
    # Renal function before contrast (iodine or gadolinium), troponin/D-dimer for the chest,
    # lipase for the abdomen, glucose/INR/platelets before stroke treatment.
    renal = ["2160-0", "creatinine", "33914-3", "62238-1", "98979-8", "egfr"]
    chest = ["10839-9", "89579-7", "6598-7", "67151-1", "troponin", "48065-7", "48066-5",
             "d-dimer"]
    abdomen = ["3040-3", "lipase", "1975-2", "bilirubin", "6690-2", "wbc", "1988-5", "crp"]
    stroke = ["2345-7", "glucose", "6301-6", "inr", "777-3", "platelets"]
    # Finding sites each body region's profile allows (reporting.codes meanings).
    head = ["Brain", "Head", "Neck", "Bone", "Spine", "Aorta", "Entire body"]
    thorax = ["Lung", "Thorax", "Heart", "Aorta", "Neck", "Spine", "Bone", "Liver",
              "Gallbladder", "Spleen", "Adrenal gland", "Kidney", "Abdomen", "Entire body"]
    belly = ["Liver", "Gallbladder", "Pancreas", "Spleen", "Kidney", "Adrenal gland",
             "Urinary bladder", "Intestine", "Appendix", "Abdomen", "Pelvis", "Aorta",
             "Lung", "Thorax", "Heart", "Spine", "Bone", "Entire body"]
    return {
        # Windows by body part and length (reporting.frames.windows.auto_windows).
        "ct-generic": recipe(renal, windows=["auto"]),
        "ct-head": recipe(stroke, sites=head, windows=["brain", "subdural", "bone"],
                          max_frames=192),
        "ct-stroke": recipe(renal + stroke, sites=head, windows=["stroke", "brain"],
                            max_frames=128),
        # Three windows packed as R/G/B of one frame (as MedGemma 1.5 reads CT).
        "ct-chest": recipe(renal + chest, sites=thorax,
                           windows=["lung", "mediastinum", "bone"], pack_windows=True),
        "ct-abdomen-multiphase": recipe(renal + abdomen, sites=belly, windows=["abdomen"],
                                        max_frames=256),
        "ct-angio": recipe(renal + chest, windows=["angio"], combine="mip", max_frames=192),
        "mr-brain": recipe(renal, sites=head, windows=["auto"], max_frames=256, prior_share=0.3),
        "mr-generic": recipe(renal, windows=["auto"]),
        # PET/CT: the PET on the SUV scale with a rotating MIP and fusion; CT by body part.
        "pet-ct": recipe(renal, windows=["auto"], max_frames=256),
    }


class QualitySettings(_Strict):
    """Scoring drafts against final reports (reporting/quality)."""

    # The label extractor's lexicon; empty: the shipped CT/MR default.
    lexicon: Path | None = None
    # A hedged finding ("cannot exclude") counts as positive in both texts.
    uncertain_positive: bool = True
    # The bar the Quality page checks a shadow rule against before it goes live (the
    # decision stays the site's): lower 95 % bounds of the ED alert's sensitivity and of
    # the macro-F1 over at least 30 pairs (README "Shadow mode and the quality loop").
    go_live_min_triage_sensitivity: float = Field(0.9, ge=0, le=1)
    go_live_min_macro_f1: float = Field(0.5, ge=0, le=1)
    # The Quality page and the gauges read the pairs of this many days.
    window_days: int = Field(90, ge=1)



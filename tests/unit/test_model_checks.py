"""The model link's pure parts: answer checks, prompt, Qwen token arithmetic, endpoint pool."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radraft.core.errors import ModelError
from radraft.reporting.model import MalformedAnswerError, parse_draft, smart_resize, video_grid
from radraft.reporting.model._endpoints import EndpointPool
from radraft.reporting.model._qwen import patchify
from radraft.reporting.prompts import build_prompt
from radraft.reporting.report_schema import request_schema
from radraft.reporting.sequence import FrameRef, FrameSequence, Segment

GOOD = {
    "exam": "CT abdomen", "technique": "", "comparison": "", "clinical_history": "",
    "findings": [{"system": "liver", "text": "cyst", "severity": "minor",
                  "finding_type": "SCT:367643001", "finding_site": "SCT:10200004",
                  "frames": [0, 3]}],
    "impression": [{"rank": 1, "text": "liver cyst"}], "recommendations": [],
    "triage": {"level": "routine", "reasons": [], "critical_findings": []}, "limitations": "",
}


def _seq(frames: int = 4, metadata: dict[str, str] | None = None) -> FrameSequence:
    refs = [FrameRef("1.2", "1.2.3", f"1.2.3.{i}", "1.2.840.10008.5.1.4.1.1.2", None, False)
            for i in range(frames)]
    seg = Segment(0, 0, frames, "1.2", "1.2.3", "20261120", "CT", "abdomen", "portal venous",
                  "axial", "abdomen", "single", frames, False)
    return FrameSequence(np.zeros((frames, 56, 56, 3), np.uint8), [seg], refs,
                         metadata=dict(metadata or {}))


def test_a_valid_answer_parses_and_code_fences_are_tolerated() -> None:
    report = parse_draft("```json\n" + json.dumps(GOOD) + "\n```", 4)
    assert report.findings[0].frames == [0, 3]


@pytest.mark.parametrize(("text", "reason"), [
    ("", "answered nothing"),
    ('{"exam": "CT"', "not JSON"),
    (json.dumps({**GOOD, "exam": ""}), "exam"),
    (json.dumps({**GOOD, "extra": 1}), "extra"),
    (json.dumps({**GOOD, "findings": [{**GOOD["findings"][0], "finding_site": "SCT:1"}]}),
     "finding_site"),
])
def test_malformed_answers_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(MalformedAnswerError, match=reason):
        parse_draft(text, 4)


def test_a_cited_frame_outside_the_sequence_is_refused() -> None:
    with pytest.raises(MalformedAnswerError, match=r"frame\(s\) \[7\] outside the sequence of 4"):
        parse_draft(json.dumps({**GOOD, "findings": [{**GOOD["findings"][0], "frames": [7]}]}),
                    4)
    assert issubclass(MalformedAnswerError, ModelError)


def test_the_request_schema_bounds_frames_and_requires_every_key() -> None:
    schema = request_schema(10)
    frames = schema["$defs"]["Finding"]["properties"]["frames"]["items"]
    assert (frames["minimum"], frames["maximum"]) == (0, 9)
    assert set(schema["required"]) == set(schema["properties"])
    assert schema["$defs"]["Finding"]["properties"]["text"]["minLength"] == 1


def test_a_remote_prompt_carries_no_identifiers() -> None:
    meta = {"patient_id": "MRN-4711", "accession": "ACC-99", "patient_age": "054Y",
            "patient_sex": "F", "modality": "CT"}
    context = "Indication: pain. Order ACC-99 for MRN-4711."
    local = build_prompt(_seq(metadata=meta), context=context, remote=False)
    remote = build_prompt(_seq(metadata=meta), context=context, remote=True)
    assert "MRN-4711" in local.text and "ACC-99" in local.text
    assert "MRN-4711" not in remote.text and "ACC-99" not in remote.text
    assert "054Y" in remote.text and "Patient sex: F" in remote.text
    assert "frames 0–3" in remote.text and "indices 0 to 3" in remote.text
    assert local.sha256 != remote.sha256 and len(remote.sha256) == 64
    assert build_prompt(_seq(metadata=meta), context=context).sha256 == local.sha256


def test_prompt_parts_keep_their_budgets() -> None:
    prompt = build_prompt(_seq(), context="x" * 50_000, profile_prompt="be brief")
    assert len(prompt.text) < 12_000
    assert "[shortened]" in prompt.text and "Site instructions:\nbe brief" in prompt.text


@pytest.mark.parametrize("size", [(448, 448), (224, 224), (512, 512), (2000, 1000),
                                  (100, 3000), (57, 90), (1024, 768)])
def test_smart_resize_equals_the_transformers_rule(size: tuple[int, int]) -> None:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as reference

    assert smart_resize(*size) == tuple(reference(*size, 28, 128 * 28 * 28, 768 * 28 * 28))
    assert smart_resize(224, 224) == (336, 336)  # below min_pixels: scaled up, not H/28


def test_video_tokens_are_half_the_frames_times_the_28_pixel_cells() -> None:
    assert video_grid(128, 448, 448).tokens == 64 * 16 * 16
    assert video_grid(7, 448, 448).tokens == 4 * 256  # odd frame counts round up


def test_patchify_matches_the_transformers_image_processor() -> None:
    from transformers import Qwen2VLImageProcessor

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (336, 336, 3), dtype=np.uint8)
    ours, grid = patchify(np.stack([frame, frame]))
    theirs = Qwen2VLImageProcessor(min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)(
        images=[frame], return_tensors="np")
    assert tuple(theirs["image_grid_thw"][0]) == (grid.t, grid.h, grid.w)
    np.testing.assert_allclose(ours, theirs["pixel_values"], atol=1e-5)


def test_endpoint_pool_prefers_the_least_busy_and_rests_a_failed_one() -> None:
    pool = EndpointPool(["http://a/v1", "http://b/v1"], cooldown_s=60)
    with pool.use() as first, pool.use() as second:
        assert {first.url, second.url} == {"http://a/v1", "http://b/v1"}
    with pool.use() as lease:
        failed = lease.url
        lease.failed = True
    for _ in range(4):
        with pool.use() as lease:
            assert lease.url != failed
    assert pool.snapshot()[failed]["resting_s"] > 50
    with pytest.raises(ValueError, match="base_urls"):
        EndpointPool([], cooldown_s=1)

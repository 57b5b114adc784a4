"""The in-process backend and `radraft model serve` on a real study from the samples."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.data import DICOM_DATA
from helpers.net import free_port

from radraft.core.errors import ConfigError, ModelError
from radraft.core.settings import FrameRecipe, Settings
from radraft.reporting.frames import build_frame_sequence
from radraft.reporting.model import make_backend
from radraft.reporting.prompts import build_prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence

STUDY = DICOM_DATA / "study_ct_wb_contrast_kos"
RECIPE = FrameRecipe(windows=["abdomen", "lung"], frame_size=224, max_frames=24)


@pytest.fixture(scope="module")
def seq() -> FrameSequence:
    return build_frame_sequence(STUDY, recipe=RECIPE)


def _settings(tmp: Path, **model: Any) -> Settings:
    return Settings(data_dir=tmp, model={"max_retries": 1, **model})


def _check(report: DraftReport, seq: FrameSequence) -> None:
    assert isinstance(report, DraftReport)
    assert report.exam.strip()
    assert all(0 <= f < seq.frame_count for f in report.cited_frames())


def test_in_process_backend_drafts_a_real_study(seq: FrameSequence, tiny_model: Path,
                                                tmp_path: Path) -> None:
    backend = make_backend(_settings(tmp_path, backend="transformers", path=str(tiny_model)))
    result = backend.draft(seq, build_prompt(seq, context="Indication: abdominal pain"))
    _check(result.report, seq)
    assert result.attempts == 1 and result.endpoint == "in-process"
    # The prompt held every frame: 24 frames of 224² cost 12 × 12 × 12 visual tokens.
    assert result.prompt_tokens > 12 * 144
    # The budget follows the model's video pixel range (224² is scaled up to 336²).
    assert backend.token_budget()(224, 224, 1000) == 2 * (12288 // 144)


def test_model_serve_answers_the_vllm_request_shape(seq: FrameSequence, model_serve: Any,
                                                    tmp_path: Path) -> None:
    settings = _settings(tmp_path, backend="openai", base_urls=[model_serve.base_url])
    result = make_backend(settings).draft(seq, build_prompt(seq))
    _check(result.report, seq)
    assert result.endpoint == model_serve.base_url
    assert result.prompt_tokens > 12 * 144  # checked against /tokenize + smart_resize


def test_a_dead_endpoint_is_rested_and_the_live_one_answers(seq: FrameSequence,
                                                            model_serve: Any,
                                                            tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = _settings(tmp_path, backend="openai", base_urls=[dead, model_serve.base_url],
                         max_retries=2)
    backend = make_backend(settings)
    backend._backoff_s = 0.05  # type: ignore[attr-defined]
    for _ in range(2):
        result = backend.draft(seq, build_prompt(seq))
        assert result.endpoint == model_serve.base_url
    pool = backend.pool.snapshot()  # type: ignore[attr-defined]
    assert pool[model_serve.base_url]["served"] == 2
    assert pool[dead]["served"] == 0 and pool[dead]["resting_s"] > 0


def test_a_refused_connection_fails_over_without_spending_a_retry(seq: FrameSequence,
                                                                  model_serve: Any,
                                                                  tmp_path: Path) -> None:
    # No retries at all: the dead endpoint never got the request, so the live one takes it
    # within the same attempt (a worker's job attempt is not lost to a dead GPU node).
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = _settings(tmp_path, backend="openai", base_urls=[dead, model_serve.base_url],
                         max_retries=0, endpoint_cooldown_s=0)
    backend = make_backend(settings)
    for _ in range(2):  # one of the two drafts picks the dead endpoint first (round-robin)
        result = backend.draft(seq, build_prompt(seq))
        assert result.endpoint == model_serve.base_url and result.attempts == 1
    pool = backend.pool.snapshot()  # type: ignore[attr-defined]
    assert pool[dead]["failures"] >= 1 and pool[dead]["served"] == 0


def test_a_server_that_is_down_fails_clearly_after_the_retries(seq: FrameSequence,
                                                               tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = make_backend(_settings(tmp_path, backend="openai", base_urls=[url],
                                     max_retries=2))
    backend._backoff_s = 0.05  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match=r"no valid draft after 3 attempt\(s\)") as info:
        backend.draft(seq, build_prompt(seq))
    assert info.value.args[0].count(url) == 3


@pytest.fixture
def slow_server() -> Iterator[str]:
    """Accepts and never answers in time: a hung GPU node."""
    stop = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            stop.wait(5)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    stop.set()
    server.shutdown()


def test_a_slow_server_times_out_and_is_retried(seq: FrameSequence, slow_server: str,
                                                tmp_path: Path) -> None:
    backend = make_backend(_settings(tmp_path, backend="openai", base_urls=[slow_server],
                                     timeout_s=0.5, max_retries=1))
    backend._backoff_s = 0.05  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match="no answer within the timeout") as info:
        backend.draft(seq, build_prompt(seq))
    assert "attempt 2" in str(info.value)


def test_a_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="build-tiny"):
        make_backend(_settings(tmp_path, backend="transformers", path=str(tmp_path / "none")))
    with pytest.raises(ConfigError, match=r"model\.base_urls"):
        make_backend(_settings(tmp_path, backend="openai"))

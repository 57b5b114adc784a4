"""What every backend shares: the result type and the bounded retry around one call."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from radraft.core.errors import ModelError, VideoTruncatedError
from radraft.reporting.frames import TokenBudget
from radraft.reporting.model._output import MalformedAnswerError, parse_draft
from radraft.reporting.prompts import Prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence

log = logging.getLogger(__name__)


class TransientModelError(ModelError):
    """The endpoint could not answer now (down, slow, overloaded): retried with back-off."""


@dataclass
class DraftResult:
    """A validated draft and where it came from."""

    report: DraftReport
    model_id: str
    model_version: str
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    endpoint: str = ""
    raw: str = field(default="", repr=False)


@dataclass
class Answer:
    """One raw answer from a backend call, before the checks."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    endpoint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ModelBackend(Protocol):
    name: str

    def draft(self, seq: FrameSequence, prompt: Prompt) -> DraftResult: ...

    def token_budget(self) -> TokenBudget: ...


class RetryingBackend:
    """`draft` = `_call` + the checks, retried at most `max_retries` times.

    Malformed answers and transient endpoint errors are retried; a truncated video is not
    (the server is misconfigured: every retry would be truncated too).
    """

    name = "backend"
    model_id = ""
    model_version = ""

    def __init__(self, *, max_retries: int, backoff_s: float = 1.0) -> None:
        self._max_retries = max_retries
        self._backoff_s = backoff_s

    def _call(self, seq: FrameSequence, prompt: Prompt) -> Answer:
        raise NotImplementedError

    def draft(self, seq: FrameSequence, prompt: Prompt) -> DraftResult:
        if prompt.frame_count != seq.frame_count:
            raise ModelError(f"prompt built for {prompt.frame_count} frames, "
                             f"sequence has {seq.frame_count}")
        errors: list[str] = []
        for attempt in range(1, self._max_retries + 2):
            try:
                answer = self._call(seq, prompt)
                report = parse_draft(answer.text, seq.frame_count)
            except VideoTruncatedError:
                raise
            except (MalformedAnswerError, TransientModelError) as exc:
                errors.append(f"attempt {attempt}: {exc}")
                log.warning("%s: attempt %d failed: %s", self.name, attempt, exc)
                if attempt <= self._max_retries:
                    # Exponential back-off with jitter, so retries of many workers spread.
                    time.sleep(self._backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
                continue
            return DraftResult(
                report=report, model_id=self.model_id, model_version=self.model_version,
                attempts=attempt, prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens, endpoint=answer.endpoint,
                raw=answer.text)
        raise ModelError(f"{self.name}: no valid draft after {len(errors)} attempt(s): "
                         + "; ".join(errors))

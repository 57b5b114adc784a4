"""The `transformers` backend: the model in this process (CPU here, GPU when present)."""

from __future__ import annotations

from pathlib import Path

from radraft.core.settings import ModelSettings
from radraft.reporting.frames import TokenBudget, qwen_token_budget
from radraft.reporting.model._base import Answer, RetryingBackend
from radraft.reporting.model._inprocess import InProcessModel
from radraft.reporting.model._version import local_model_version
from radraft.reporting.prompts import Prompt
from radraft.reporting.sequence import FrameSequence


class TransformersBackend(RetryingBackend):
    name = "transformers"

    def __init__(self, model_dir: Path, settings: ModelSettings,
                 model: InProcessModel | None = None) -> None:
        super().__init__(max_retries=settings.max_retries, backoff_s=0.0)
        self._settings = settings
        self.model = model or InProcessModel(model_dir)
        self.model_id = settings.name or model_dir.name
        self.model_version = local_model_version(model_dir, settings.version)

    def token_budget(self) -> TokenBudget:
        return qwen_token_budget(self._settings.max_video_tokens,
                                 min_pixels=self.model.min_pixels,
                                 max_pixels=self.model.max_pixels)

    def _call(self, seq: FrameSequence, prompt: Prompt) -> Answer:
        generation = self.model.generate(prompt.system, prompt.text, seq.frames, prompt.schema,
                                         max_tokens=self._settings.max_tokens)
        return Answer(text=generation.text, prompt_tokens=generation.prompt_tokens,
                      completion_tokens=generation.completion_tokens, endpoint="in-process")

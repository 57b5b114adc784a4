"""Model backends: a FrameSequence + Prompt in, a validated, grounded DraftReport out.

    make_backend(settings) -> ModelBackend   (`model.backend`: transformers | openai)
    backend.draft(seq, prompt) -> DraftResult
    backend.token_budget() -> TokenBudget    (frames the model's video budget allows)

Both backends retry malformed answers and transient failures `model.max_retries` times,
then raise ModelError with every attempt's reason; VideoTruncatedError is never retried.
"""

from __future__ import annotations

from radraft.core.errors import ConfigError
from radraft.core.settings import Settings
from radraft.reporting.frames.budget import smart_resize
from radraft.reporting.model._base import (
    DraftResult,
    ModelBackend,
    RetryingBackend,
    TransientModelError,
)
from radraft.reporting.model._output import MalformedAnswerError, parse_draft
from radraft.reporting.model._qwen import video_grid

__all__ = [
    "DraftResult",
    "MalformedAnswerError",
    "ModelBackend",
    "RetryingBackend",
    "TransientModelError",
    "make_backend",
    "parse_draft",
    "smart_resize",
    "video_grid",
]


def make_backend(settings: Settings) -> ModelBackend:
    """The backend `model.backend` names (every one a `ModelBackend`)."""
    if settings.model.backend == "openai":
        if not settings.model.base_urls:
            raise ConfigError("model.base_urls: the openai backend needs at least one URL")
        from radraft.reporting.model._openai import OpenAIBackend

        return OpenAIBackend(settings.model)
    try:
        from radraft.reporting.model._transformers import TransformersBackend
    except ImportError as exc:
        raise ConfigError("model.backend: transformers needs the model extra "
                          f"(pip install 'radraft[model]'): {exc}") from exc
    return TransformersBackend(settings.model_path, settings.model)

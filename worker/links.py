"""The links not yet importable everywhere: prompt builder, model backend, EHR context.

Looked up at call time (importlib) so the worker, its queues and its outbox run, and report a
clear error, on a tree where one of them is not installed. Tests inject their own `Links`.
Frames, pictures, SR/KOS and the HL7 builders are imported directly where they are used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from radraft.core.errors import ConfigError

Fn = Callable[..., Any]


@dataclass(frozen=True)
class Links:
    build_prompt: Fn  # reporting.prompts.build_prompt(seq, *, context, profile_prompt, remote)
    make_backend: Fn  # reporting.model.make_backend(settings) -> .draft(seq, prompt)
    clinical_context: Fn | None = None  # ehr.context.clinical_context (needs the database)


def _lookup(module: str, name: str) -> Fn:
    try:
        found: Fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{module}.{name} is not available in this installation: {exc}") \
            from exc
    return found


def load_links(*, with_context: bool = True) -> Links:
    """The real links; ConfigError names the first one missing."""
    return Links(
        build_prompt=_lookup("radraft.reporting.prompts", "build_prompt"),
        make_backend=_lookup("radraft.reporting.model", "make_backend"),
        clinical_context=_lookup("radraft.ehr.context", "clinical_context")
        if with_context else None,
    )

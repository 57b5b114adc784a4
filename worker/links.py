"""The other engineers' links, reached through their published contracts.

Looked up at call time (importlib) so the worker, its queues and its outbox run and report a
clear error on a tree where one link is not installed yet. Tests inject their own `Links`.
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
    build_frame_sequence: Fn  # reporting.frames
    contact_sheet: Fn  # reporting.pictures
    build_prompt: Fn  # reporting.prompts
    make_backend: Fn  # reporting.model
    build_oru: Fn  # ehr.outbound
    build_ed_alert: Fn  # ehr.outbound
    render_text: Fn  # ehr.outbound
    render_html: Fn  # ehr.outbound
    clinical_context: Fn | None = None  # ehr.context (needs the database)


_WHERE = {
    "build_frame_sequence": "radraft.reporting.frames",
    "contact_sheet": "radraft.reporting.pictures",
    "build_prompt": "radraft.reporting.prompts",
    "make_backend": "radraft.reporting.model",
    "build_oru": "radraft.ehr.outbound",
    "build_ed_alert": "radraft.ehr.outbound",
    "render_text": "radraft.ehr.outbound",
    "render_html": "radraft.ehr.outbound",
}


def _lookup(module: str, name: str) -> Fn:
    try:
        found: Fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{module}.{name} is not available in this installation: {exc}") \
            from exc
    return found


def load_links(*, with_context: bool = True) -> Links:
    """The real links; ConfigError names the first one missing."""
    found = {name: _lookup(module, name) for name, module in _WHERE.items()}
    context = _lookup("radraft.ehr.context", "clinical_context") if with_context else None
    return Links(**found, clinical_context=context)

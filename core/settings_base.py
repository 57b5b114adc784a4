"""The strict base of every settings section: an unknown key is an error."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")



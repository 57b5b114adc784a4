"""What every command receives: the settings, loaded once from --config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from radraft.core.errors import ConfigError

if TYPE_CHECKING:  # pydantic and the settings models load when a command reads them
    from radraft.core.settings import Settings


@dataclass
class CliState:
    config_path: Path | None
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from radraft.core.settings import load_settings

            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                typer.echo(f"radraft: {exc}", err=True)
                raise typer.Exit(2) from None
        return self._settings


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, CliState):
        obj = CliState(config_path=None)
        root.obj = obj
    return obj


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` on stderr and return the Exit to raise."""
    typer.echo(f"radraft: {message}", err=True)
    return typer.Exit(code)

"""`radraft`: the one entry point. Each command group lives in a module of its own.

Importing this module (and `radraft --help`) loads typer and nothing heavy: every command
imports what it needs when it runs (pydicom, numpy, SQLAlchemy, Celery, the settings
models), so the command line answers at once (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from radraft.worker.cli import (
    config_cmd,
    db_cmd,
    demo_cmd,
    draft_cmd,
    eval_cmd,
    frames_cmd,
    model_cmd,
    purge_cmd,
    rules_cmd,
    serve_cmd,
    user_cmd,
    worker_cmd,
)
from radraft.worker.cli.context import CliState


class ConfigAnywhere(TyperGroup):
    """`--config FILE` is the root's option; people also write it after the subcommand
    (`radraft serve --config FILE`). It is moved in front before parsing, for every
    subcommand. Only the long form: `-c` after a subcommand may be that command's own
    option (`radraft worker -c 4` is the concurrency)."""

    # `ctx` is typer's vendored click Context, whose module is private: typed Any here.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_config(args))


def hoist_config(args: list[str]) -> list[str]:
    """`args` with every `--config X` / `--config=X` moved to the front (none after `--`)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == "--config" and i + 1 < len(args):
            front += args[i:i + 2]
            i += 2
            continue
        if arg.startswith("--config="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


app = typer.Typer(
    name="radraft", help="Drafts CT and MRI reports inside a hospital imaging network.",
    no_args_is_help=True, pretty_exceptions_enable=False, cls=ConfigAnywhere,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.command("purge")(purge_cmd.purge)
app.add_typer(rules_cmd.app, name="rules")
app.command("serve")(serve_cmd.serve)
app.command("frames")(frames_cmd.frames)
app.command("worker")(worker_cmd.worker)
app.command("draft")(draft_cmd.draft)
app.command("demo")(demo_cmd.demo)
app.command("eval")(eval_cmd.eval_)
app.add_typer(user_cmd.app, name="user")
app.add_typer(model_cmd.app, name="model")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"radraft {version('radraft')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", envvar="RADRAFT_CONFIG", help="YAML settings file.",
    ),
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version.",
    ),
) -> None:
    """Drafts CT and MRI reports inside a hospital imaging network."""
    ctx.obj = CliState(config_path=config)

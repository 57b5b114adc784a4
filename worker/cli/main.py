"""`radraft`: the one entry point. Each command group lives in a module of its own.

Importing this module (and `radraft --help`) loads typer and nothing heavy: every command
imports what it needs when it runs (pydicom, numpy, SQLAlchemy, Celery, the settings
models), so the command line answers at once (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

from pathlib import Path

import typer

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

app = typer.Typer(
    name="radraft", help="Drafts CT and MRI reports inside a hospital imaging network.",
    no_args_is_help=True, pretty_exceptions_enable=False,
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

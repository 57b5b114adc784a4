"""`radraft demo`: the whole chain on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from radraft.worker.cli.context import state


def demo(
    ctx: typer.Context,
    folder: Path = typer.Option(Path("radraft-data/demo"), "--dir",
                                help="Working folder (emptied first)."),
    timeout_s: float = typer.Option(900, "--timeout", help="Seconds to wait for the draft."),
) -> None:
    """Synthetic CT study + prior through node, rules, worker, model, outputs, folder outbox."""
    from radraft.worker.demo import run_demo

    _ = state(ctx)  # the demo writes its own configuration into --dir
    if folder.exists():
        shutil.rmtree(folder)
    code = run_demo(folder.resolve(), typer.echo, timeout_s=timeout_s)
    raise typer.Exit(code)

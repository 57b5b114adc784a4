"""`radraft config show`: the effective configuration, secrets masked."""

from __future__ import annotations

import typer

from radraft.worker.cli.context import state

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (file + environment + defaults) as YAML."""
    import yaml

    typer.echo(yaml.safe_dump(state(ctx).settings.masked(), sort_keys=False), nl=False)

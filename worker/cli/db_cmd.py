"""`radraft db upgrade`: migrate the database to the newest schema."""

from __future__ import annotations

import typer

from radraft.worker.cli.context import state

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database tables (SQLite or PostgreSQL)."""
    from radraft.core.db.migrate import upgrade as run_upgrade

    settings = state(ctx).settings
    run_upgrade(settings.database_url)
    typer.echo("database is at the newest schema")

"""`radraft user add NAME --role admin|ed|viewer`, `radraft user list`, `radraft user remove`.

The password comes from a prompt (typed twice, not echoed) or, for scripts, from the first
line of standard input with --password-stdin; never from the command line, where `ps` and
the shell history would show it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from radraft.worker.cli.context import fail, state

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens the database
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(help="Console users (admin, ed, viewer).", no_args_is_help=True)


def _sessions(ctx: typer.Context) -> sessionmaker[Session]:
    from radraft.core.db import make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade

    settings = state(ctx).settings
    upgrade(settings.database_url)
    return make_sessionmaker(make_engine(settings.database_url, pool_size=1))


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name (letters, digits, . _ @ -)."),
    role: str = typer.Option(..., "--role", help="admin, ed or viewer."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input."),
) -> None:
    """Add a console user; the password is stored as an Argon2id hash."""
    from radraft.core import audit
    from radraft.worker.console.auth import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _sessions(ctx)() as session:
        try:
            user = create_user(session, name, password, role)
        except ValueError as exc:
            raise fail(str(exc), 1) from None
        audit.record(session, "user.added", actor="cli", user=name, role=role)
        session.commit()
        typer.echo(f"user {user.username} added ({user.role})")


@app.command("list")
def list_users(ctx: typer.Context) -> None:
    """List console users and their roles."""
    from sqlalchemy import select

    from radraft.core.db import User

    with _sessions(ctx)() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            typer.echo(f"{user.username}\t{user.role}\t{user.created_at:%Y-%m-%d %H:%M} UTC")


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="User name.")) -> None:
    """Remove a console user; their open sessions end at once."""
    from sqlalchemy import delete, select

    from radraft.core import audit
    from radraft.core.db import User, WebSession

    with _sessions(ctx)() as session:
        user = session.scalars(select(User).where(User.username == name)).first()
        if user is None:
            raise fail(f"no user {name!r}", 1)
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        session.delete(user)
        audit.record(session, "user.removed", actor="cli", user=name)
        session.commit()
        typer.echo(f"user {name} removed")

"""`radraft serve`: the DICOM node (and the HL7 listener and web console as they arrive)."""

from __future__ import annotations

import logging

import typer

from radraft.core import log_safe
from radraft.core.errors import ConfigError
from radraft.worker.cli.context import fail, state


def serve(ctx: typer.Context) -> None:
    """Run the DICOM node (C-STORE/C-ECHO), stability monitor and routing rules until stopped."""
    from radraft.worker.serve import serve as run_serve

    settings = state(ctx).settings
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log_safe.install()  # peer values (UIDs, MSH-10, AE titles) cannot forge a log line
    try:
        run_serve(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot start: {exc}") from None

"""`radraft purge`: apply the retention policy (`retention.*`)."""

from __future__ import annotations

import typer

from radraft.worker.cli.context import state


def purge(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
) -> None:
    """Remove old drafted-and-delivered studies, fetched priors and delivered outbox bytes."""
    from radraft.core.db import make_engine, make_sessionmaker
    from radraft.dicom_node.storage import InstanceStore
    from radraft.dicom_node.storage.purge import purge as run_purge

    settings = state(ctx).settings
    engine = make_engine(settings.database_url)
    try:
        report = run_purge(
            make_sessionmaker(engine), InstanceStore(settings.dicom_dir), settings.retention,
            dry_run=dry_run,
        )
    finally:
        engine.dispose()
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb}: {len(report.studies)} studies, {len(report.priors)} prior studies "
        f"({report.files} files, {report.bytes_freed / 1e6:.1f} MB), "
        f"{report.outbox_payloads} delivered outbox payloads, "
        f"{report.draft_images} draft pictures"
    )
    for uid in report.studies + report.priors:
        typer.echo(f"  {uid}")

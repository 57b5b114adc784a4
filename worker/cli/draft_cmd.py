"""`radraft draft STUDY_DIR --out DIR`: one study drafted with no database and no server."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from radraft.core.errors import RadraftError
from radraft.worker.cli.context import fail, state


def draft(
    ctx: typer.Context,
    study_dir: Path = typer.Argument(..., exists=True, file_okay=False,
                                     help="Folder with one study's DICOM files."),
    out: Path = typer.Option(..., "--out", "-o", help="Where the outputs are written."),
    prior: list[Path] = typer.Option([], "--prior", help="Folder of a prior study (repeatable)."),
    profile: str = typer.Option("auto", "--profile", "-p",
                                help="Profile name, or auto (from modality and body part)."),
) -> None:
    """Draft one study: SR, TID 1500, KOS, HL7 ORU (and ED alert), text/HTML, contact sheet."""
    from radraft.worker.draft_local import consistency_summary, draft_folder

    settings = state(ctx).settings
    try:
        product, written = draft_folder(
            settings, study_dir, prior, profile, out,
            progress=lambda msg: typer.echo(f"  … {msg}", err=True),
        )
    except RadraftError as exc:
        raise fail(str(exc), 1) from None
    report = json.loads(written["report"].read_text())
    typer.echo(f"drafted {study_dir} with {product.model_name}: {product.frame_count} frames, "
               f"triage {product.triage_level}, profile {report['profile']} "
               f"({report['profile_chosen_by']})")
    typer.echo("  " + ", ".join(f"{k} {v:.2f} s" for k, v in product.timings.items()))
    check = consistency_summary(product)
    typer.echo(f"  consistency: {check['state']}, re-asked {check.get('reasks', 0)}x, "
               f"ED alert: {check.get('alert', 'none')}")
    for reason in check.get("reasons", []):
        typer.echo(f"    - {reason}")
    for kind, path in written.items():
        typer.echo(f"  {kind:8} {path}")
    if settings.model.name == "radraft-tiny":
        typer.echo("note: the tiny test model's text is meaningless; set model.path or "
                   "model.base_urls (README, \"Model\") for a real model.")

"""`radraft frames STUDY_DIR --out DIR`: the frame sequence, its table and its pictures."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from radraft.core.errors import FrameError
from radraft.worker.cli.context import fail, state


def frames(
    ctx: typer.Context,
    study_dir: Path = typer.Argument(..., help="Folder with one study's DICOM files."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the pictures and table."),
    prior: list[Path] = typer.Option([], "--prior", help="Folder of a prior study (repeatable)."),
    profile: str = typer.Option("auto", "--profile", "-p",
                                help="Profile name, or auto (from modality and body part)."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=2, help="Frame cap."),
    video: bool = typer.Option(True, "--video/--no-video", help="Also write sequence.mp4."),
) -> None:
    """Turn a study (and priors) into frames: contact_sheet.png, sequence.mp4, segments.json."""
    from radraft.reporting.frames import build_frame_sequence, segment_table_json
    from radraft.reporting.frames.profile_choice import AUTO, choose_profile
    from radraft.reporting.pictures import contact_sheet, write_mp4

    settings = state(ctx).settings
    chosen_by = "given"
    if profile == AUTO:
        try:
            profile, chosen_by = choose_profile(study_dir, settings.profiles)
        except FrameError as exc:
            raise fail(str(exc), 1) from None
    if profile not in settings.profiles:
        raise fail(f"unknown profile {profile!r}; known: {', '.join(sorted(settings.profiles))}")
    recipe = settings.profiles[profile].frames
    started = time.perf_counter()
    try:
        seq = build_frame_sequence(
            study_dir, priors=prior, recipe=recipe, max_frames=max_frames,
            progress=lambda msg: typer.echo(f"  … {msg}", err=True))
    except FrameError as exc:
        raise fail(str(exc), 1) from None
    built = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet(seq).save(out / "contact_sheet.png")
    (out / "segments.json").write_text(json.dumps(
        {"profile": profile, "profile_chosen_by": chosen_by, "metadata": seq.metadata,
         "segments": segment_table_json(seq)}, indent=1,
        default=str))
    if video:
        write_mp4(seq, out / "sequence.mp4")
    typer.echo(f"{seq.frame_count} frames of {recipe.frame_size}×{recipe.frame_size}, "
               f"{len(seq.segments)} segments, profile {profile} ({chosen_by}), "
               f"built in {built:.2f} s")
    typer.echo(f"{'frames':>11}  {'modality':8} {'series':>6} {'plane':13} {'label':32} "
               f"{'mapping':26} {'combine':8} {'slices':>6}  prior")
    for seg in seq.segments:
        number = "" if seg.series_number is None else str(seg.series_number)
        typer.echo(f"{seg.frame_start:>5}-{seg.frame_stop - 1:<5}  {seg.modality:8} "
                   f"{number:>6} {seg.plane[:13]:13} {seg.label[:32]:32} "
                   f"{seg.mapping[:26]:26} {seg.combine:8} "
                   f"{seg.slices_in_stack:>6}  {'yes' if seg.is_prior else ''}")
    typer.echo("(the full label, what it rests on, and notes: segments.json and the sheet)")
    for ex in seq.excluded:
        typer.echo(f"{'excluded':>11}  {ex.modality or '?':8} "
                   f"{(ex.series_description or '?')[:22]:22} {ex.reason} "
                   f"({ex.instance_count} objects)")
    typer.echo(f"wrote {out / 'contact_sheet.png'}, {out / 'segments.json'}"
               + (f", {out / 'sequence.mp4'}" if video else ""))

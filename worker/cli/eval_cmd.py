"""`radraft eval ARCHIVE --out DIR` and `radraft eval --labels-only REPORTS.csv --out DIR`."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

from radraft.core.errors import ConfigError
from radraft.worker.cli.context import fail, state


def _labels_only(reports: Path, out: Path, lexicon_path: Path | None) -> None:
    """id,text -> OUT/labels.csv (id,finding,state), one row per finding a text mentions."""
    from radraft.reporting.quality.extract import LexiconError, labels_rows, load_lexicon

    try:
        lexicon = load_lexicon(lexicon_path)
    except LexiconError as exc:
        raise fail(str(exc)) from None
    try:
        handle = reports.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise fail(f"{reports}: cannot read: {exc.strerror}") from None
    out.mkdir(parents=True, exist_ok=True)
    rows = texts = 0
    with handle, (out / "labels.csv").open("w", encoding="utf-8", newline="") as target:
        reader = csv.DictReader(handle)
        missing = {"id", "text"} - set(reader.fieldnames or [])
        if missing:
            raise fail(f"{reports}:1: missing column(s) {', '.join(sorted(missing))} "
                       "(the file needs id,text)")
        writer = csv.writer(target)
        writer.writerow(["id", "finding", "state"])
        for row in reader:
            texts += 1
            for item in labels_rows(row["id"], row["text"] or "", lexicon):
                writer.writerow(item)
                rows += 1
    typer.echo(f"{texts} texts, {rows} labels -> {out / 'labels.csv'}")


def eval_(
    ctx: typer.Context,
    archive: Path | None = typer.Argument(
        None, help="Folder of studies (one per sub-folder) with reports.csv or reports.jsonl."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable)."),
    reports: Path | None = typer.Option(
        None, "--reports", help="The cases file (default: ARCHIVE/reports.csv or .jsonl)."),
    profile: str = typer.Option(
        "auto", "--profile", "-p", help="Profile for cases without one (auto: by modality)."),
    labels_only: Path | None = typer.Option(
        None, "--labels-only", help="Only run the label extractor on a CSV of id,text."),
    lexicon: Path | None = typer.Option(
        None, "--lexicon", help="Lexicon YAML (default: quality.lexicon, else the shipped)."),
) -> None:
    """Score drafts of an archive against its final reports (scores.csv, pairs.jsonl,
    report.html); or, with --labels-only, label report texts (labels.csv)."""
    if labels_only is not None:
        lexicon_path = lexicon
        if lexicon_path is None and state(ctx).config_path is not None:
            lexicon_path = state(ctx).settings.quality.lexicon
        _labels_only(labels_only, out, lexicon_path)
        return
    if archive is None or not archive.is_dir():
        raise fail("give ARCHIVE (a folder of studies) or --labels-only REPORTS.csv")
    from radraft.reporting.quality.extract import LexiconError, load_lexicon
    from radraft.worker.eval_report import write_html, write_scores
    from radraft.worker.eval_run import (
        append_row,
        find_cases_file,
        index_studies,
        pending,
        read_cases,
        read_pairs,
        run_case,
    )

    settings = state(ctx).settings
    try:
        site_lexicon = load_lexicon(lexicon or settings.quality.lexicon)
        cases = read_cases(reports or find_cases_file(archive))
    except (ConfigError, LexiconError) as exc:
        raise fail(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    todo = list(pending(cases, out))
    if len(todo) < len(cases):
        typer.echo(f"resuming: {len(cases) - len(todo)} of {len(cases)} cases already scored",
                   err=True)
    index = index_studies(archive)
    failed = 0
    with typer.progressbar(todo, label="scoring", file=None, show_pos=True) as bar:
        for case in bar:
            row = run_case(settings, site_lexicon, archive, out, case, index, profile)
            append_row(out, row)
            failed += row["status"] != "scored"
    rows = read_pairs(out)
    overall = write_scores(out, rows, site_lexicon.vocabulary)
    html = write_html(out, rows, site_lexicon.vocabulary, overall)
    typer.echo(f"{overall.n} pairs scored, {sum(r['status'] != 'scored' for r in rows)} not "
               f"scored -> {out / 'scores.csv'}, {out / 'pairs.jsonl'}, {html}")
    for row in rows:
        if row["status"] != "scored":
            typer.echo(f"  not scored: {row['id']} (line {row.get('line')}): {row['error']}",
                       err=True)
    if settings.model.name == "radraft-tiny" and failed < len(todo):
        typer.echo("note: the tiny test model's drafts are meaningless text: its scores are "
                   "near zero by design.")

"""`radraft rules check FILE` and `radraft rules test FILE STUDY_DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from radraft.core.errors import ConfigError
from radraft.worker.cli.context import fail, state

app = typer.Typer(help="Check and try routing rules.", no_args_is_help=True)


@app.command("check")
def check(ctx: typer.Context, file: Path = typer.Argument(..., help="Rules YAML file.")) -> None:
    """Report every error in FILE with its line (profiles/destinations checked against config)."""
    from radraft.dicom_node.rules import load_rules

    settings = state(ctx).settings
    try:
        rules = load_rules(
            file, timezone=settings.site.timezone, profiles=settings.profiles.keys(),
            destinations=settings.destinations.keys(),
        )
    except ConfigError as exc:
        raise fail(str(exc), 1) from None
    typer.echo(f"{file}: {len(rules.rules)} rules, OK")


@app.command("test")
def test(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Rules YAML file."),
    study_dir: Path = typer.Argument(..., help="Folder with one study's DICOM files."),
    calling_aet: str = typer.Option("", help="Pretend the study came from this AE."),
) -> None:
    """Print the decision for the study in STUDY_DIR, and why."""
    from radraft.dicom_node.rules import facts_from_folder, load_rules

    settings = state(ctx).settings
    try:
        rules = load_rules(
            file, timezone=settings.site.timezone, profiles=settings.profiles.keys(),
            destinations=settings.destinations.keys(),
        )
        facts = facts_from_folder(study_dir, calling_aet=calling_aet)
    except ConfigError as exc:
        raise fail(str(exc), 1) from None
    typer.echo(
        f"study {facts.study_uid}: modalities {','.join(sorted(facts.modalities)) or '-'}, "
        f"{facts.series_count} series"
    )
    for outcome in rules.decide(facts):
        if outcome.action == "draft":
            priority = outcome.priority.value if outcome.priority else ""
            typer.echo(
                f"draft by rule {outcome.rule_name!r}: profile {outcome.profile}, "
                f"priority {priority}, destinations {', '.join(outcome.destinations) or '-'}"
            )
        elif outcome.action == "ignore":
            typer.echo(f"ignore by rule {outcome.rule_name!r}")
        else:
            typer.echo("unmatched: no rule matched (recorded and shown to the admin)")
        for reason in outcome.reasons:
            typer.echo(f"  - {reason}")

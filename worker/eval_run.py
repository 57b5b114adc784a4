"""`radraft eval`: score drafts of an archive against its final reports, no database.

The archive is a folder of studies (one per sub-folder) plus a table of cases (CSV or
JSONL): `accession` and/or `study_uid`, the final report (`report` or `text`), optionally
the radiologist's labels (`labels`: "SCT:36118008=present;..." or a JSON object), a
`study` sub-folder, a `profile`, a stored `draft` (a report.json from `radraft draft`).

Each case is drafted with `radraft draft`'s path (worker/draft_local) into
OUT/drafts/<case>/ unless a draft is stored there already or named by the case: an
interrupted run resumes where it stopped (pairs.jsonl is appended one line per case and
flushed; cases already in it are skipped). A study that cannot be read or drafted is
listed with its error and the run goes on.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radraft.core.errors import ConfigError, RadraftError
from radraft.core.settings import Settings
from radraft.reporting.quality.extract import Lexicon
from radraft.reporting.quality.pair import score_pair
from radraft.reporting.quality.triage import final_is_critical, outcome

REPORT_COLUMNS = ("report", "text", "final_report")
PAIRS, SCORES, HTML, LABELS = "pairs.jsonl", "scores.csv", "report.html", "labels.csv"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Case:
    ident: str
    line: int
    accession: str
    study_uid: str
    text: str
    labels: dict[str, str] | None = None
    study: str = ""
    profile: str = ""
    draft: str = ""


@dataclass
class StudyIndex:
    """Sub-folders of the archive by Study Instance UID and by accession."""

    by_uid: dict[str, Path] = field(default_factory=dict)
    by_accession: dict[str, list[Path]] = field(default_factory=dict)
    modality: dict[Path, str] = field(default_factory=dict)
    unreadable: dict[Path, str] = field(default_factory=dict)


def _labels(value: Any, where: str) -> dict[str, str] | None:
    if value in (None, ""):
        return None
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        try:
            return {str(k): str(v) for k, v in json.loads(text).items()}
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{where}: labels: not a JSON object ({exc})") from None
    labels = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        finding, sep, state = item.partition("=")
        if not sep or state not in ("present", "absent", "uncertain"):
            raise ConfigError(f"{where}: labels: {item!r} is not FINDING=present|absent|"
                              "uncertain")
        labels[finding.strip()] = state
    return labels


def _case(row: dict[str, Any], where: str, line: int) -> Case:
    text = next((str(row[c]) for c in REPORT_COLUMNS if row.get(c)), "")
    if not text.strip():
        raise ConfigError(f"{where}: no final report text (column report or text)")
    accession = str(row.get("accession", "") or "").strip()
    study_uid = str(row.get("study_uid", "") or "").strip()
    if not accession and not study_uid:
        raise ConfigError(f"{where}: needs accession or study_uid")
    ident = str(row.get("id", "") or "").strip() or study_uid or accession
    return Case(ident=ident, line=line, accession=accession, study_uid=study_uid, text=text,
                labels=_labels(row.get("labels"), where), study=str(row.get("study", "") or ""),
                profile=str(row.get("profile", "") or ""), draft=str(row.get("draft", "") or ""))


def read_cases(path: Path) -> list[Case]:
    """The cases of a CSV or JSONL file; errors name the file and the line."""
    cases: list[Case] = []
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for line, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{line}: not JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"{path}:{line}: a case is a JSON object")
                cases.append(_case(row, f"{path}:{line}", line))
        else:
            reader = csv.DictReader(handle)
            for row in reader:
                line = reader.line_num
                cases.append(_case(dict(row), f"{path}:{line}", line))
    seen: dict[str, int] = {}
    for case in cases:
        if case.ident in seen:
            raise ConfigError(f"{path}:{case.line}: case {case.ident!r} repeats line "
                              f"{seen[case.ident]} (add an id column)")
        seen[case.ident] = case.line
    return cases


def find_cases_file(archive: Path) -> Path:
    for name in ("reports.csv", "reports.jsonl", "cases.csv", "cases.jsonl"):
        if (archive / name).is_file():
            return archive / name
    raise ConfigError(f"{archive}: no reports.csv or reports.jsonl (or give --reports FILE)")


def index_studies(archive: Path) -> StudyIndex:
    """Read each sub-folder's headers once (UID, accession, modality)."""
    from radraft.worker.draft_local import study_identity

    index = StudyIndex()
    for folder in sorted(p for p in archive.iterdir() if p.is_dir()):
        try:
            study_uid, _version, order = study_identity(folder)
        except RadraftError as exc:
            index.unreadable[folder] = str(exc)
            continue
        index.by_uid[study_uid] = folder
        if order is not None:
            index.by_accession.setdefault(order.accession, []).append(folder)
            index.modality[folder] = order.modality
    return index


def locate(case: Case, archive: Path, index: StudyIndex) -> Path:
    if case.study:
        folder = (archive / case.study).resolve()
        if archive.resolve() not in folder.parents or not folder.is_dir():
            raise ConfigError(f"line {case.line}: study {case.study!r} is not a sub-folder "
                              "of the archive")
        if folder in index.unreadable:
            raise ConfigError(index.unreadable[folder])
        return folder
    if case.study_uid in index.by_uid:
        return index.by_uid[case.study_uid]
    folders = index.by_accession.get(case.accession, [])
    if len(folders) == 1:
        return folders[0]
    if len(folders) > 1:
        raise ConfigError(f"accession {case.accession} names {len(folders)} study folders; "
                          "give study_uid or study")
    raise ConfigError("no study folder with this study UID or accession")


def done_cases(out: Path) -> set[str]:
    """Cases already scored in OUT/pairs.jsonl (an interrupted run resumes after them)."""
    path = out / PAIRS
    if not path.exists():
        return set()
    done = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(raw)
        except ValueError:
            continue  # a line cut by the interruption: that case runs again
        if row.get("status") == "scored":
            done.add(str(row["id"]))
    return done


def read_pairs(out: Path) -> list[dict[str, Any]]:
    """The last line of each case in pairs.jsonl."""
    rows: dict[str, dict[str, Any]] = {}
    path = out / PAIRS
    if path.exists():
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(raw)
            except ValueError:
                continue
            rows[str(row["id"])] = row
    return list(rows.values())


def _profile(case: Case, modality: str, default: str, settings: Settings) -> str:
    name = case.profile or default
    if name == "auto":
        name = "mr-generic" if modality.upper() == "MR" else "ct-generic"
    if name not in settings.profiles:
        known = ", ".join(sorted(settings.profiles))
        raise ConfigError(f"unknown profile {name!r}; known: {known}")
    return name


def stored_draft(case: Case, archive: Path, folder: Path) -> dict[str, Any] | None:
    """A draft stored for this case: OUT/drafts/<case>/report.json, or the case's `draft`."""
    for path in ([archive / case.draft] if case.draft else []) + [folder / "report.json"]:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
    return None


def case_folder(out: Path, ident: str) -> Path:
    """OUT/drafts/<case id, made safe for a file name> (never a path from the table)."""
    return out / "drafts" / (_SAFE.sub("_", ident).strip(".") or "_")


Drafter = Callable[[Settings, Path, str, Path], dict[str, Any]]


def draft_case(settings: Settings, study: Path, profile: str, out: Path) -> dict[str, Any]:
    """Draft `study` into `out` the way `radraft draft` does; returns report.json's data."""
    from radraft.worker.draft_local import draft_folder

    draft_folder(settings, study, [], profile, out)
    data: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return data


def run_case(
    settings: Settings, lexicon: Lexicon, archive: Path, out: Path, case: Case,
    index: StudyIndex, default_profile: str, drafter: Drafter = draft_case,
) -> dict[str, Any]:
    """One case to its pairs.jsonl row (status "scored" or "error" with the reason)."""
    row: dict[str, Any] = {"id": case.ident, "line": case.line, "accession": case.accession,
                           "study_uid": case.study_uid}
    try:
        folder = locate(case, archive, index)
        modality = index.modality.get(folder, "")
        profile = _profile(case, modality, default_profile, settings)
        target = case_folder(out, case.ident)
        data = stored_draft(case, archive, target)
        reused = data is not None
        if data is None:
            data = drafter(settings, folder, profile, target)
        report = data.get("report", data)
        scored = score_pair(report, case.text, lexicon=lexicon)
        timings = data.get("timings_s") or {}
        if timings and not reused:
            scored.scores["time.draft_s"] = round(sum(float(v) for v in timings.values()), 3)
    except (RadraftError, OSError, ValueError) as exc:
        row.update(status="error", error=f"{type(exc).__name__}: {exc}")
        return row
    final_labels = scored.final_labels
    if case.labels is not None:
        # The radiologist's labels are the truth when given; the extractor is measured on them.
        keys = set(case.labels) | set(final_labels)
        row["extractor_agreement"] = {
            "right": sum(case.labels.get(k) == final_labels.get(k) for k in keys),
            "total": len(keys)}
        final_labels = dict(case.labels)
        scored.final_critical = final_is_critical(final_labels, case.text, lexicon)
        scored.triage = outcome(str(report.get("triage", {}).get("level", "")),
                                scored.final_critical)
    row.update(
        status="scored", reused_draft=reused, study=folder.name, profile=profile,
        modality=modality, draft_triage=str(report.get("triage", {}).get("level", "")),
        scores=scored.scores, draft_labels=scored.draft_labels, final_labels=final_labels,
        final_critical=scored.final_critical, triage=scored.triage,
        draft_findings=" ".join(str(f.get("text", "")) for f in report.get("findings", [])),
        draft_impression=" ".join(str(i.get("text", "")) for i in report.get("impression", [])),
        final_text=case.text,
    )
    return row


def append_row(out: Path, row: dict[str, Any]) -> None:
    with (out / PAIRS).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")
        handle.flush()


def pending(cases: list[Case], out: Path) -> Iterator[Case]:
    done = done_cases(out)
    return (c for c in cases if c.ident not in done)

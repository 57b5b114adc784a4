"""`radraft eval` on a small archive (tests/data studies plus a CSV of final reports) and
`radraft eval --labels-only` (issue 21)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from radraft.core.settings import Settings
from radraft.reporting.quality.extract import default_lexicon
from radraft.worker.cli.main import app
from radraft.worker.eval_report import write_html, write_scores
from radraft.worker.eval_run import (
    append_row,
    index_studies,
    pending,
    read_cases,
    read_pairs,
    run_case,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "dicom"
CT_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.1"
MR_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.1"
REPORTS = [
    {"id": "ct1", "accession": "2", "study_uid": CT_UID,
     "report": "FINDINGS: Small right pneumothorax. No pleural effusion.\n"
               "IMPRESSION: Right pneumothorax.", "labels": ""},
    {"id": "mr1", "accession": "", "study_uid": MR_UID,
     "report": "FINDINGS: No aneurysm. No dissection.\nIMPRESSION: Normal MRA.",
     "labels": "SCT:432119003=absent;SCT:308546005=absent"},
    {"id": "mr2", "accession": "phantom-1", "study_uid": "",
     "report": "FINDINGS: No acute infarct. IMPRESSION: No acute intracranial abnormality.",
     "labels": ""},
    {"id": "broken", "accession": "", "study_uid": "1.2.3.4.5",
     "report": "FINDINGS: a study that is not in the archive.", "labels": ""},
]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Three small real studies (file names given a .dcm suffix: `radraft draft` reads
    *.dcm as SR evidence), an unreadable folder, and reports.csv."""
    root = tmp_path / "archive"
    for name in ("study_ct_scout_axial_tiny", "study_mr_mra_tiny",
                 "study_mr_siemens_localizer_fmap"):
        for source in (DATA / name).rglob("*"):
            if source.is_file():
                target = root / name / source.relative_to(DATA / name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target.with_name(target.name.removesuffix(".dcm")
                                                         + ".dcm"))
    (root / "unreadable").mkdir()
    (root / "unreadable" / "x.dcm").write_bytes(b"not dicom")
    with (root / "reports.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REPORTS[0]))
        writer.writeheader()
        writer.writerows(REPORTS)
    return root


def _stand_in(settings: Settings, study: Path, profile: str, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = {"report": {"findings": [{"text": "Small right pneumothorax."}],
                       "impression": [{"rank": 1, "text": "Pneumothorax."}],
                       "triage": {"level": "urgent"}}, "timings_s": {"model": 1.5}}
    (out / "report.json").write_text(json.dumps(data))
    return data


def test_eval_scores_resumes_and_lists_the_broken_case(archive: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    cases = read_cases(archive / "reports.csv")
    index = index_studies(archive)
    out = tmp_path / "out"
    out.mkdir()
    lexicon = default_lexicon()
    calls: list[str] = []

    def drafter(s: Settings, study: Path, profile: str, target: Path) -> dict[str, Any]:
        calls.append(study.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is interrupted in the middle of a case
        return _stand_in(s, study, profile, target)

    with pytest.raises(KeyboardInterrupt):
        for case in pending(cases, out):
            append_row(out, run_case(settings, lexicon, archive, out, case, index, "auto",
                                     drafter))
    assert [r["id"] for r in read_pairs(out)] == ["ct1"]
    # The second run skips ct1 and finishes the rest; the missing study is listed.
    for case in pending(cases, out):
        append_row(out, run_case(settings, lexicon, archive, out, case, index, "auto",
                                 drafter))
    rows = {r["id"]: r for r in read_pairs(out)}
    assert calls == ["study_ct_scout_axial_tiny", "study_mr_mra_tiny", "study_mr_mra_tiny",
                     "study_mr_siemens_localizer_fmap"]
    assert rows["broken"]["status"] == "error" and "no study folder" in rows["broken"]["error"]
    ct = rows["ct1"]
    assert ct["status"] == "scored" and ct["profile"] == "ct-generic"
    assert rows["mr1"]["profile"] == "mr-generic"
    assert rows["mr2"]["study"] == "study_mr_siemens_localizer_fmap"  # found by accession
    assert ct["final_labels"] == {"SCT:36118008": "present", "SCT:60046008": "absent"}
    assert ct["triage"] == "TP" and ct["scores"]["time.draft_s"] == 1.5
    # The radiologist's labels are the truth when given, and the extractor is measured.
    assert rows["mr1"]["final_labels"] == {"SCT:432119003": "absent", "SCT:308546005": "absent"}
    assert rows["mr1"]["extractor_agreement"] == {"right": 2, "total": 2}
    overall = write_scores(out, list(rows.values()), lexicon.vocabulary)
    assert overall.n == 3
    scores = list(csv.DictReader((out / "scores.csv").open()))
    crg = next(r for r in scores if r["scope"] == "all" and r["score"] == "crg")
    assert crg["verdict"] == "too few to judge" and crg["n"] == "3"
    assert {r["group"] for r in scores if r["scope"] == "profile"} == {"ct-generic",
                                                                       "mr-generic"}
    html = write_html(out, list(rows.values()), lexicon.vocabulary, overall).read_text()
    assert "<svg" in html and "Not scored" in html and "too few to judge" in html
    assert "Worst pairs" in html and "Right pneumothorax." in html


def test_eval_case_file_errors_name_the_line(tmp_path: Path) -> None:
    from radraft.core.errors import ConfigError

    bad = tmp_path / "reports.csv"
    bad.write_text("id,accession,report\na,1,text\nb,,text\n")
    with pytest.raises(ConfigError, match=r"reports.csv:3: needs accession or study_uid"):
        read_cases(bad)
    bad.write_text('{"accession": "1", "report": "x", "labels": "SCT:1=maybe"}\n')
    jsonl = bad.rename(tmp_path / "reports.jsonl")
    with pytest.raises(ConfigError, match=r"reports.jsonl:1: labels: 'SCT:1=maybe'"):
        read_cases(jsonl)


def test_labels_only_writes_id_finding_state(tmp_path: Path) -> None:
    reports = tmp_path / "reports.csv"
    reports.write_text('id,text\nr1,"No pneumothorax. Cannot exclude pneumonia."\n'
                       'r2,"History of prior hemorrhage."\n')
    result = CliRunner().invoke(app, ["eval", "--labels-only", str(reports), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "labels.csv").open()))
    assert rows == [{"id": "r1", "finding": "SCT:233604007", "state": "uncertain"},
                    {"id": "r1", "finding": "SCT:36118008", "state": "absent"}]


@pytest.mark.slow
def test_radraft_eval_drafts_a_small_archive_with_the_tiny_model(
    archive: Path, tmp_path: Path, tiny_model: Path,
) -> None:
    config = tmp_path / "radraft.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nmodel:\n  path: {tiny_model}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["-c", str(config), "eval", str(archive), "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert "3 pairs scored, 1 not scored" in result.output
    for name in ("scores.csv", "pairs.jsonl", "report.html"):
        assert (out / name).stat().st_size > 0
    rows = {r["id"]: r for r in read_pairs(out)}
    assert {k for k, r in rows.items() if r["status"] == "scored"} == {"ct1", "mr1", "mr2"}
    assert (out / "drafts" / "ct1" / "sr.dcm").exists()  # drafted like `radraft draft`
    # Run again: every case is reused, nothing drafted anew.
    again = CliRunner().invoke(app, ["-c", str(config), "eval", str(archive), "--out",
                                     str(out)])
    assert again.exit_code == 0 and "resuming: 3 of 4" in again.output

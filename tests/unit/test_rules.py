"""Routing rules: the format, every error with its line, the evaluator, hot reload."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.data import DICOM_DATA

from radraft.core.errors import ConfigError
from radraft.core.types import Priority
from radraft.dicom_node.rules import RulesWatcher, StudyFacts, facts_from_folder, load_rules

RULES = """\
rules:
  - name: head-ct-emergency
    match:
      modality: [CT]
      body_part: [HEAD, BRAIN]
      order_department: "(?i)emergency"
    action: draft
    profile: ct-head
    priority: stat
    destinations: [pacs, ed]
  - name: ct-night
    match:
      modality: CT
      time: {days: [mon, tue, wed, thu, fri, sat, sun], from: "19:00", to: "07:00"}
    action: draft
    profile: ct-generic
    priority: urgent
    continue: true
  - name: ct-adults
    match:
      modality: CT
      patient_age: {min: 18}
      series_count: {min: 2}
      study_description: "(?i)abdomen|chest"
    action: draft
    profile: ct-generic
    destinations: [pacs]
  - name: research
    match:
      calling_aet: [RESEARCH]
    action: ignore
  - name: fallback
    default: true
    action: ignore
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _facts(**values: object) -> StudyFacts:
    base: dict[str, object] = {
        "study_uid": "1.2.3", "modalities": frozenset({"CT"}), "body_parts": frozenset(),
        "study_description": "CT ABDOMEN", "patient_age_years": 54, "series_count": 3,
        "now": datetime(2024, 1, 3, 12, 0, tzinfo=UTC),  # a Wednesday noon
    }
    base.update(values)
    return StudyFacts(**base)  # type: ignore[arg-type]


def test_first_match_wins_and_reasons_explain_it(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, RULES))
    [outcome] = rules.decide(_facts())
    assert (outcome.rule_name, outcome.action, outcome.profile) == (
        "ct-adults", "draft", "ct-generic")
    assert outcome.priority is Priority.ROUTINE
    assert outcome.destinations == ("pacs",)
    assert any("patient_age 54" in r for r in outcome.reasons)


def test_order_keys_and_continue(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, RULES))
    head = _facts(body_parts=frozenset({"HEAD"}), order_department="Emergency Dept")
    assert [o.rule_name for o in rules.decide(head)] == ["head-ct-emergency"]
    assert rules.decide(head)[0].priority is Priority.STAT
    night = _facts(now=datetime(2024, 1, 3, 23, 30, tzinfo=UTC))
    assert [o.rule_name for o in rules.decide(night)] == ["ct-night", "ct-adults"]
    after_midnight = _facts(now=datetime(2024, 1, 4, 6, 59, tzinfo=UTC))
    assert rules.decide(after_midnight)[0].rule_name == "ct-night"


def test_no_order_means_order_conditions_fail(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, RULES))
    outcome = rules.decide(_facts(body_parts=frozenset({"HEAD"}), study_description="HEAD"))
    assert outcome[0].rule_name == "fallback"
    assert any("order_department: unknown (no order)" in r for r in outcome[0].reasons)


def test_default_only_when_nothing_matched_and_unmatched_without_default(
    tmp_path: Path,
) -> None:
    rules = load_rules(_write(tmp_path, RULES))
    mr = _facts(modalities=frozenset({"MR"}))
    [outcome] = rules.decide(mr)
    assert (outcome.rule_name, outcome.action) == ("fallback", "ignore")
    no_default = load_rules(_write(tmp_path, RULES.split("  - name: fallback")[0]))
    [outcome] = no_default.decide(mr)
    assert outcome.action == "unmatched"
    assert "ct-adults: modality MR not in [CT]" in outcome.reasons


def test_time_window_uses_the_site_time_zone(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, RULES), timezone="America/New_York")
    # 01:00 UTC is 20:00 the evening before in New York: inside the night window.
    assert rules.decide(_facts(now=datetime(2024, 1, 3, 1, 0, tzinfo=UTC)))[0].rule_name == (
        "ct-night")
    assert rules.decide(_facts(now=datetime(2024, 1, 3, 15, 0, tzinfo=UTC)))[0].rule_name == (
        "ct-adults")


def test_every_error_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = """\
    rules:
      - name: one
        match:
          modality: [CT]
          colour: blue
          study_description: "(unclosed"
          patient_age: {min: 90, max: 10}
        action: draft
        profile: nope
        priority: whenever
      - name: one
        action: ignore
        profile: x
      - match: {time: {from: "25:00", to: "07:00"}}
        action: publish
    extra: 1
    """
    with pytest.raises(ConfigError) as caught:
        load_rules(_write(tmp_path, bad), profiles=["ct-generic"], destinations=[])
    message = str(caught.value)
    expected = [
        ":5: rules[0].match.colour: unknown match key",
        ":6: rules[0].match.study_description: invalid regular expression",
        ":7: rules[0].match.patient_age: min is greater than max",
        ":9: rules[0].profile: unknown profile 'nope'",
        ":10: rules[0].priority: priority must be stat, urgent or routine",
        ":13: rules[1].profile: an ignore rule takes no profile",
        ":14: rules[2]: every rule needs a name",
        ":14: rules[2].match.time.from: expected a time",
        ":15: rules[2].action: action must be draft or ignore",
        ":16: extra: unknown key",
    ]
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules.yaml:3: YAML syntax error"):
        load_rules(_write(tmp_path, "rules:\n  - name: a\n    match: {a: [}\n  - b\n"))


def test_facts_from_a_real_study_folder() -> None:
    facts = facts_from_folder(DICOM_DATA / "study_ct_wb_contrast_kos", calling_aet="PACS")
    assert facts.study_uid == "1.3.6.1.4.1.21367.201599.1.201604020955010"
    assert "CT" in facts.modalities
    assert facts.series_count == 3  # two CT series and the KOS
    assert facts.accession == "IDC003-a"
    assert facts.order_department is None


def test_facts_from_folder_refuses_mixed_studies() -> None:
    with pytest.raises(ConfigError, match="studies"):
        facts_from_folder(DICOM_DATA / "transfer_syntaxes")


def test_hot_reload_keeps_old_rules_when_new_file_is_invalid(tmp_path: Path) -> None:
    path = _write(tmp_path, RULES)
    watcher = RulesWatcher(path)
    assert len(watcher.current().rules) == 5
    path.write_text("rules:\n  - name: broken\n    action: explode\n")
    os.utime(path, (1, 1))
    assert watcher.poll() is False
    assert len(watcher.current().rules) == 5
    assert "action must be draft or ignore" in watcher.last_error
    path.write_text("rules:\n  - name: only\n    action: ignore\n")
    os.utime(path, (2, 2))
    assert watcher.poll() is True
    assert [r.name for r in watcher.current().rules] == ["only"]
    assert watcher.last_error == ""

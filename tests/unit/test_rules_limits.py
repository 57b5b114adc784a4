"""Rules a console user writes cannot hang or blow up the loader (issue 25, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from radraft.core.errors import ConfigError
from radraft.dicom_node.rules import StudyFacts, load_rules
from radraft.dicom_node.rules.loader import MAX_RULES_BYTES
from radraft.dicom_node.rules.regex import MAX_PATTERN_CHARS
from radraft.dicom_node.rules.sandbox import SandboxError, check_text

CATASTROPHIC = r"^(([A-Z]+)*\s?)*$!"  # hours on Python's re against a 40-character text
DESCRIPTION = "CT ABDOMEN PELVIS WITH CONTRAST ENHANCEMENT PHASE"
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi",
                                                                   strict=True)]
    + ["rules: [*i]", ""])


def _rules(tmp: Path, text: str) -> Path:
    path = tmp / "rules.yaml"
    path.write_text(text)
    return path


def _regex_rule(pattern: str) -> str:
    return ("rules:\n  - name: r\n    match:\n"
            f"      study_description: '{pattern}'\n    action: ignore\n")


def test_catastrophic_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    rules = load_rules(_rules(tmp_path, _regex_rule(CATASTROPHIC)))
    [outcome] = rules.decide(StudyFacts("1.2.3", study_description=DESCRIPTION))
    assert outcome.action == "unmatched" and "does not match" in outcome.reasons[0]


def test_backreferences_and_long_patterns_are_refused_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":4: rules\[0\].match.study_description: "
                                          r"invalid regular expression \(RE2"):
        load_rules(_rules(tmp_path, _regex_rule(r"(\w)\1")))
    with pytest.raises(ConfigError, match=f"at most {MAX_PATTERN_CHARS}"):
        load_rules(_rules(tmp_path, _regex_rule("a" * (MAX_PATTERN_CHARS + 1))))


def test_anchors_and_aliases_are_refused_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules.yaml:1: .*anchors and aliases"):
        load_rules(_rules(tmp_path, ALIAS_BOMB))
    harmless = "rules:\n  - &r {name: a, action: ignore}\n"
    with pytest.raises(ConfigError, match=r"rules.yaml:2: .*anchors and aliases"):
        load_rules(_rules(tmp_path, harmless))


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    text = "rules: []\n" + "#" * MAX_RULES_BYTES + "\n"
    with pytest.raises(ConfigError, match=f"at most {MAX_RULES_BYTES}"):
        load_rules(_rules(tmp_path, text))
    with pytest.raises(SandboxError, match=f"at most {MAX_RULES_BYTES}"):
        check_text(text, timezone="UTC", profiles=[], destinations=[])


def test_sandbox_checks_and_decides_in_a_child_process() -> None:
    checked = check_text(_regex_rule(CATASTROPHIC), timezone="UTC", profiles=[],
                         destinations=[],
                         facts=StudyFacts("1.2.3", modalities=frozenset({"CT"}),
                                          study_description=DESCRIPTION))
    assert checked.rules == 1 and checked.outcomes[0].action == "unmatched"
    with pytest.raises(SandboxError, match=r"\(edited text\):1: .*anchors and aliases"):
        check_text(ALIAS_BOMB, timezone="UTC", profiles=[], destinations=[])

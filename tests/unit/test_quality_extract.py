"""The label extractor on real-style report sentences (tests/data/quality/sentences.tsv):
negation, uncertainty, history, indications, pertinent negatives (issue 21)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from radraft.reporting.codes import FINDING_TYPES
from radraft.reporting.quality.extract import (
    LexiconError,
    default_lexicon,
    extract,
    lexicon_from_data,
    load_lexicon,
)

FOLDER = Path(__file__).resolve().parents[1] / "data" / "quality"
DATA = FOLDER / "sentences.tsv"  # used while writing the lexicon
HELD_OUT = FOLDER / "heldout.tsv"  # written before the extractor ever ran on them
BY_NAME = {c.meaning.lower(): c.key for c in FINDING_TYPES}


def _cases(path: Path = DATA) -> list[tuple[str, str, dict[str, str]]]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    cases = []
    for row in rows:
        expected = {}
        for item in filter(None, row["expected"].split(";")):
            name, state = item.split("=")
            expected[BY_NAME[name]] = state
        cases.append((row["id"], row["text"], expected))
    return cases


def _score(cases: list[tuple[str, str, dict[str, str]]]) -> tuple[float, int, list[Any]]:
    right = total = exact = 0
    wrong = []
    for ident, text, expected in cases:
        got = {k: v.value for k, v in extract(text).items()}
        keys = set(expected) | set(got)
        right += sum(expected.get(k) == got.get(k) for k in keys)
        total += len(keys)
        exact += expected == got
        if expected != got:
            wrong.append((ident, expected, got))
    accuracy = right / total
    print(f"labels {right}/{total} = {accuracy:.3f}; sentences {exact}/{len(cases)}; "
          f"wrong: {wrong}")
    return accuracy, exact, wrong


def test_accuracy_on_the_sentences() -> None:
    """The figures quoted in README ("The label extractor"): 168/169 labels on the
    development sentences, 37/42 on the held-out ones."""
    cases = _cases()
    assert len(cases) >= 150
    accuracy, exact, wrong = _score(cases)
    assert accuracy >= 0.97, wrong
    assert exact >= len(cases) - 3, wrong
    held_out = _cases(HELD_OUT)
    accuracy, exact, wrong = _score(held_out)
    assert accuracy >= 0.85, wrong
    assert exact >= len(held_out) - 6, wrong


@pytest.mark.parametrize(("text", "expected"), [
    ("No pneumothorax.", {"SCT:36118008": "absent"}),
    ("Pneumothorax cannot be excluded.", {"SCT:36118008": "uncertain"}),
    ("History of prior hemorrhage.", {}),
    ("No pneumothorax, but a small pleural effusion.",
     {"SCT:36118008": "absent", "SCT:60046008": "present"}),
])
def test_the_four_kinds(text: str, expected: dict[str, str]) -> None:
    assert {k: v.value for k, v in extract(text).items()} == expected


def test_default_lexicon_covers_every_finding_type() -> None:
    assert set(default_lexicon().vocabulary) == {c.key for c in FINDING_TYPES}


def test_lexicon_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match=r"findings\.SCT:1: not a finding type"):
        lexicon_from_data({"findings": {"SCT:1": ["x"]}}, "site.yaml")
    with pytest.raises(LexiconError, match=r"modifiers\.negated\.sideways"):
        lexicon_from_data({"findings": {"SCT:36118008": ["ptx"]},
                           "modifiers": {"negated": {"sideways": ["no"]}}}, "site.yaml")
    bad = tmp_path / "lexicon.yaml"
    bad.write_text("findings: [unclosed\n")
    with pytest.raises(LexiconError, match=str(bad)):
        load_lexicon(bad)

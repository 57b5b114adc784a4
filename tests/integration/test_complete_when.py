"""A rule's `complete_when`: the study is complete once its expected series are there and
quiet, without waiting for stable_seconds; and the rules file's errors name their line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from node_helpers import ct_phase_study
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.errors import ConfigError
from radraft.core.settings import DicomSettings
from radraft.core.types import StudyStable
from radraft.dicom_node.completeness import CompletenessMonitor
from radraft.dicom_node.header import read_stored_header
from radraft.dicom_node.rules import RulesWatcher, load_rules
from radraft.dicom_node.stability import StabilityMonitor
from radraft.dicom_node.storage.index import begin_write, index_instance

RULES = """rules:
  - name: ct-two-phase
    match: {modality: [CT]}
    action: draft
    profile: ct-generic
    on_discontinued: draft
    complete_when:
      series_count: 2
      modalities: [CT]
      series_descriptions: ["(?i)arterial", "(?i)venous"]
"""


def _index(sessions: sessionmaker[Session], paths: list[Path]) -> None:
    for path in paths:
        with sessions() as session:
            begin_write(session)
            index_instance(session, read_stored_header(path), path, path.stat().st_size,
                           calling_aet="CT1", uid_root="2.25")
            session.commit()


def test_expected_series_make_the_study_complete(
    tmp_path: Path, sessions: sessionmaker[Session],
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    rules = RulesWatcher(rules_file)
    [rule] = rules.current().rules
    assert rule.on_discontinued == "draft" and rule.complete_when is not None
    files = ct_phase_study(tmp_path / "s", phases=("NATIVE", "ARTERIAL", "VENOUS"), slices=2)
    announced: list[StudyStable] = []
    timer = StabilityMonitor(sessions, announced.append, stable_seconds=3600)
    monitor = CompletenessMonitor(sessions, timer.announce_now,
                                  DicomSettings(complete_when_quiet_s=0.2), rules=rules)
    _index(sessions, files[:4])  # native and arterial: no venous series yet
    time.sleep(0.4)
    assert monitor.check_once() == []
    _index(sessions, files[4:])
    time.sleep(0.4)
    [stable] = monitor.check_once()
    assert stable.image_count == 6 and announced == [stable]
    assert monitor.check_once() == []  # once per version


def test_complete_when_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("series_count: 2", "series_count: two")
                    .replace("on_discontinued: draft", "on_discontinued: maybe"))
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    text = str(err.value)
    assert "rules.yaml:6" in text and "on_discontinued must be draft or ignore" in text
    assert "rules.yaml:8" in text and "series_count" in text

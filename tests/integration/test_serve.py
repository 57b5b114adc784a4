"""`radraft serve` end to end: storescu sends, the rules decide, the decision is recorded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import free_port
from node_helpers import ct_phase_study, storescu
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import RuleDecision, Study, StudyAnnouncement

RULES = """\
rules:
  - name: ct-abdomen
    match: {modality: CT, study_description: "(?i)abdomen"}
    action: draft
    profile: ct-generic
    priority: urgent
    destinations: [pacs]
"""


def _wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def _decisions(sessions: sessionmaker[Session], study_uid: str) -> list[RuleDecision]:
    with sessions() as session:
        return list(session.scalars(
            select(RuleDecision).where(RuleDecision.study_uid == study_uid)
        ))


def test_serve_records_decisions_and_reloads_rules(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    config = tmp_path / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"), "database_url": db_url, "rules_file": "rules.yaml",
        "dicom": {"port": port, "host": "127.0.0.1", "stable_seconds": 1, "min_free_bytes": 0},
        "destinations": {"pacs": {"kind": "folder", "path": str(tmp_path / "out")}},
    }))
    log = tmp_path / "serve.log"
    radraft = Path(sys.executable).parent / "radraft"
    process = subprocess.Popen([str(radraft), "--config", str(config), "serve"],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        _wait_for(listening, 60)

        abdomen = ct_phase_study(tmp_path / "a", phases=("A",), slices=2)
        for path in abdomen:
            assert storescu(path, port).status == 0x0000
        uid_a = str(dcmread(abdomen[0]).StudyInstanceUID)
        _wait_for(lambda: _decisions(sessions, uid_a))
        [decision] = _decisions(sessions, uid_a)
        assert (decision.action, decision.rule_name, decision.profile, decision.priority) == (
            "draft", "ct-abdomen", "ct-generic", "urgent")
        assert decision.destinations == ["pacs"]

        # An invalid edit is refused (logged) and the old rules stay in force.
        rules.write_text("rules:\n  - name: x\n    action: explode\n")
        os.utime(rules, (1, 1))
        _wait_for(lambda: "keeping the previous rules" in log.read_text())
        head = ct_phase_study(tmp_path / "h", phases=("A",), slices=1, description="CT HEAD")
        assert storescu(head[0], port).status == 0x0000
        uid_h = str(dcmread(head[0]).StudyInstanceUID)
        _wait_for(lambda: _decisions(sessions, uid_h))
        [unmatched] = _decisions(sessions, uid_h)
        assert unmatched.action == "unmatched"
        assert any("does not match" in r for r in unmatched.reasons)
        with sessions() as session:
            study = session.scalars(select(Study).where(Study.study_uid == uid_h)).one()
            assert study.admin_flag == "no routing rule matched"
            assert len(session.scalars(select(StudyAnnouncement)).all()) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-2000:]

"""`radraft serve` end to end: storescu sends, the rules decide, the decision is recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import hl7
import yaml
from helpers.net import free_port, wait_port
from helpers.waiting import wait_for
from hl7.client import MLLPClient
from node_helpers import ct_phase_study, storescu
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Hl7Message, Job, Order, RuleDecision, Study, StudyAnnouncement
from radraft.ehr.samples import demo_messages

RULES = """\
rules:
  - name: ct-abdomen
    match: {modality: CT, study_description: "(?i)abdomen"}
    action: draft
    profile: ct-generic
    priority: urgent
    destinations: [pacs]
"""


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
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "destinations": {"pacs": {"kind": "folder", "path": str(tmp_path / "out")}},
    }))
    log = tmp_path / "serve.log"
    radraft = Path(sys.executable).parent / "radraft"
    process = subprocess.Popen([str(radraft), "--config", str(config), "serve"],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=60, process=process)

        abdomen = ct_phase_study(tmp_path / "a", phases=("A",), slices=2)
        for path in abdomen:
            assert storescu(path, port).status == 0x0000
        uid_a = str(dcmread(abdomen[0]).StudyInstanceUID)
        wait_for("the decision for study A", lambda: _decisions(sessions, uid_a), timeout=30)
        [decision] = _decisions(sessions, uid_a)
        assert (decision.action, decision.rule_name, decision.profile, decision.priority) == (
            "draft", "ct-abdomen", "ct-generic", "urgent")
        assert decision.destinations == ["pacs"]

        # An invalid edit is refused (logged) and the old rules stay in force.
        rules.write_text("rules:\n  - name: x\n    action: explode\n")
        os.utime(rules, (1, 1))
        wait_for("the bad rules refused", lambda: "keeping the previous rules" in log.read_text(),
                 timeout=30)
        head = ct_phase_study(tmp_path / "h", phases=("A",), slices=1, description="CT HEAD")
        assert storescu(head[0], port).status == 0x0000
        uid_h = str(dcmread(head[0]).StudyInstanceUID)
        wait_for("the decision for study H", lambda: _decisions(sessions, uid_h), timeout=30)
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


ED_RULES = """\
rules:
  - name: ed-ct
    match: {modality: CT, order_department: "(?i)emergency"}
    action: draft
    profile: ct-generic
    priority: stat
    destinations: [pacs]
"""


def test_serve_answers_mllp_and_a_late_order_reruns_the_rules(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    """`radraft serve` runs the HL7 listener: a message sent by the `hl7` package's client is
    stored and AA'd; an order for a study that is stable already re-runs the rules (the
    listener's orders hook) and the rule that wants the order's department gets its Job."""
    port, hl7_port = free_port(), free_port()
    (tmp_path / "rules.yaml").write_text(ED_RULES)
    config = tmp_path / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"), "database_url": db_url, "rules_file": "rules.yaml",
        "dicom": {"port": port, "host": "127.0.0.1", "stable_seconds": 1, "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": hl7_port},
        "destinations": {"pacs": {"kind": "folder", "path": str(tmp_path / "out")}},
    }))
    log = tmp_path / "serve.log"
    radraft = Path(sys.executable).parent / "radraft"
    process = subprocess.Popen([str(radraft), "--config", str(config), "serve"],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(hl7_port, timeout=60, process=process)
        files = ct_phase_study(tmp_path / "c", phases=("A",), slices=1, accession="ACC-LATE",
                               description="CT CHEST", body_part="CHEST")
        assert storescu(files[0], port).status == 0x0000
        uid = str(dcmread(files[0]).StudyInstanceUID)
        wait_for("the decision", lambda: _decisions(sessions, uid), timeout=30)
        assert [d.action for d in _decisions(sessions, uid)] == ["unmatched"]  # no order yet

        order = demo_messages(accession="ACC-LATE", patient_id="P1")[0].replace(
            b"ORC|NW|PACC-LATE|FACC-LATE||SC||^^^^^S",
            b"ORC|NW|PACC-LATE|FACC-LATE||SC||^^^^^S||||||||||^Emergency Department")
        with MLLPClient("127.0.0.1", hl7_port) as client:
            client.socket.settimeout(20)
            reply = hl7.parse(client.send_message(order)[1:-2].decode())
        assert (str(reply.segment("MSA")[1]), str(reply.segment("MSA")[2])) == (
            "AA", "ORMACC-LATE")
        with sessions() as session:
            stored = session.scalars(select(Hl7Message)).one()
            assert stored.raw == order and stored.ack_code == "AA"
            assert session.scalars(select(Order)).one().department == "Emergency Department"

        def job() -> Job | None:
            with sessions() as session:
                return session.scalars(select(Job).where(Job.study_uid == uid)).first()
        wait_for("the job", job, timeout=30)
        found = job()
        assert found is not None and (found.rule_name, found.priority) == ("ed-ct", "stat")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-2000:]

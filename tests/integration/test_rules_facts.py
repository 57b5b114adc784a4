"""Rule facts from the database: Study/Series rows plus the HL7 order (by UID or accession)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from node_helpers import ct_phase_study
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Order, db_now
from radraft.dicom_node.header.reading import read_stored_header
from radraft.dicom_node.rules import facts_for_study, load_rules
from radraft.dicom_node.storage.index import index_instance

RULES = """\
rules:
  - name: ed-stroke
    match:
      modality: CT
      order_department: "(?i)emergency"
      order_priority: [stat]
      order_reason: "(?i)stroke"
      order_location: "^ED"
    action: draft
    profile: ct-generic
    priority: stat
"""


def test_facts_join_the_order_by_accession(
    tmp_path: Path, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A", "B"), slices=1, accession="ACC77")
    with sessions() as session:
        for path in files:
            index_instance(session, read_stored_header(path), path, 1, calling_aet="CT_ED",
                           uid_root="2.25")
        session.commit()
        study_uid = read_stored_header(files[0]).study_uid
        before = facts_for_study(session, study_uid)
        now = db_now(session)
        session.add(Order(accession="ACC77", reason="suspected stroke, left weakness",
                          department="Emergency Department", location="ED-3",
                          priority="stat", received_at=now, updated_at=now))
        session.commit()
        after = facts_for_study(session, study_uid, now=datetime(2024, 1, 1, tzinfo=UTC))

    assert before.order_department is None and before.series_count == 2
    assert before.modalities == frozenset({"CT"}) and before.calling_aet == "CT_ED"
    assert before.patient_age_years == 54 and before.body_parts == frozenset({"ABDOMEN"})
    assert (after.order_department, after.order_priority, after.order_location) == (
        "Emergency Department", "stat", "ED-3")
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(RULES)
    rules = load_rules(rules_path)
    assert rules.decide(before)[0].action == "unmatched"
    [decision] = rules.decide(after)
    assert (decision.rule_name, decision.action) == ("ed-stroke", "draft")

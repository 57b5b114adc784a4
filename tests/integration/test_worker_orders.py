"""Order updates from the RIS: a late order re-runs the rules; a cancelled or final order
stops queued jobs and drops pending deliveries (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.worker import index_folder, stable_of, worker_settings
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Delivery, Draft, Job, Order, Study, db_now
from radraft.dicom_node.rules import RulesWatcher, facts_for_study
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.jobs import create_jobs
from radraft.worker.outbox import OutboxItem, add_deliveries
from radraft.worker.serve.orders import order_changed

RULES = """rules:
  - name: ed-ct
    match: {modality: [CT], order_department: "(?i)emergency"}
    action: draft
    profile: ct-generic
    priority: stat
"""


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    write_phantom_study(out, slices=2, size=32, phases=["portal venous"], accession="ACC-7")
    return out


def _rules(tmp: Path) -> RulesWatcher:
    path = tmp / "rules.yaml"
    path.write_text(RULES)
    return RulesWatcher(path)


def _order(session: Session, status: str, department: str = "Emergency") -> None:
    now = db_now(session)
    session.add(Order(accession="ACC-7", status=status, department=department,
                      received_at=now, updated_at=now))
    session.commit()


def test_late_order_creates_the_job_its_rule_wants(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    rules = _rules(tmp_path)
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        # Stable without an order: the ED rule does not match, no job.
        outcomes = rules.current().decide(facts_for_study(session, study.study_uid))
        assert create_jobs(session, settings, stable_of(study), outcomes) == []
        session.execute(update(Study).values(announced_version="v1",
                                             announced_at=db_now(session)))
        session.commit()
        _order(session, "active")
        wakes = order_changed(session, settings, rules, accession="ACC-7")
        session.commit()
        again = order_changed(session, settings, rules, accession="ACC-7")
        session.commit()
        jobs = session.scalars(select(Job)).all()
    assert len(wakes) == 1 and again == []
    assert [(j.rule_name, j.priority, j.version) for j in jobs] == [("ed-ct", "stat", "v1")]


def test_cancelled_order_stops_jobs_and_deliveries(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url)
    rules = _rules(tmp_path)
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        now = db_now(session)
        done = Job(study_uid=study.study_uid, version="v1", profile="ct-generic",
                   state="done", created_at=now)
        queued = Job(study_uid=study.study_uid, version="v2", profile="ct-generic",
                     state="queued", created_at=now)
        session.add_all([done, queued])
        session.flush()
        draft = Draft(job_id=done.id, study_uid=study.study_uid, version="v1",
                      profile="ct-generic", report={}, created_at=now)
        add_deliveries(session, settings, draft, [OutboxItem("text", b"x", "T")], ["folder"],
                       now)
        session.commit()
        _order(session, "cancelled")
        assert order_changed(session, settings, rules, accession="ACC-7") == []
        session.commit()
        states = sorted(session.scalars(select(Job.state)).all())
        delivery = session.scalars(select(Delivery)).one()
    assert states == ["cancelled", "done"]
    assert delivery.state == "cancelled" and "cancelled" in delivery.last_error

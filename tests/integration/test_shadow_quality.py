"""Shadow mode and the quality loop on the database (SQLite and PostgreSQL): a shadow rule's
draft is built and kept but only shadow destinations get it; a final report pairs with the
draft and is scored; a late draft is paired by the sweep; rule mode changes are audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.worker import index_folder, stable_of, worker_settings
from quality_helpers import final_oru, store_message
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, QualityPair, QualityScore, Study
from radraft.core.settings import Settings
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome, load_rules
from radraft.reporting.model.stand_in import StandInBackend
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.draft_job import draft_job
from radraft.worker.enqueue import WakeUp
from radraft.worker.escalation import escalate_due
from radraft.worker.jobs import create_jobs
from radraft.worker.outbox import deliver
from radraft.worker.quality_pairing import pair_due, score_accession
from radraft.worker.serve.rule_modes import record_modes
from radraft.worker.sweeper import sweep_once

FINAL = ("INDICATION: fall, rule out fracture.\nFINDINGS: Small right apical pneumothorax.\n"
         "No pleural effusion.\nIMPRESSION: Right pneumothorax, communicated to Dr Lee.")


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    write_phantom_study(out, slices=4, size=48, phases=["portal venous"])
    return out


def _settings(tmp: Path, db_url: str, **extra: object) -> Settings:
    return worker_settings(tmp, db_url, destinations={
        "live-folder": {"kind": "folder", "path": str(tmp / "live")},
        "shadow-folder": {"kind": "folder", "path": str(tmp / "shadow"), "shadow": True},
        "ris": {"kind": "hl7", "host": "127.0.0.1", "port": 1, "role": "ris"},
        "ed": {"kind": "hl7", "host": "127.0.0.1", "port": 1, "role": "ed"},
    }, **extra)


def _draft(sessions: sessionmaker[Session], settings: Settings, folder: Path, accession: str,
           mode: str = "shadow", version: str = "v1") -> tuple[int, list[WakeUp]]:
    outcome = RuleOutcome("ct-shadow", "draft", profile="ct-generic",
                          priority=Priority.URGENT, mode=mode)  # type: ignore[arg-type]
    wakes: list[WakeUp] = []
    with sessions() as session:
        study = index_folder(session, folder, accession=accession)
        [job_wake] = create_jobs(session, settings, stable_of(study, version), [outcome])
        session.commit()
    assert draft_job(sessions, settings, StandInBackend(), job_wake.row_id, 0,
                     wakes.append) == "done"
    with sessions() as session:
        draft_id = session.scalars(select(Draft.id).where(Draft.job_id == job_wake.row_id)).one()
    return draft_id, wakes


def test_shadow_rule_keeps_everything_and_sends_only_to_shadow_destinations(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = _settings(tmp_path, db_url)
    draft_id, wakes = _draft(sessions, settings, phantom_dir, "ACC-SH1")
    with sessions() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None and draft.mode == "shadow" and draft.triage_level == "urgent"
        rows = session.scalars(select(Delivery).where(Delivery.draft_id == draft_id)).all()
        by_dest: dict[str, set[str]] = {}
        for row in rows:
            by_dest.setdefault(row.destination, set()).add(row.state)
        # Everything was built (ORU for the RIS, the ED alert) and is kept, not sent.
        assert {(r.destination, r.payload_kind) for r in rows} >= {("ris", "oru"), ("ed", "alert")}
        assert by_dest["ris"] == by_dest["ed"] == by_dest["live-folder"] == {"shadow"}
        assert by_dest["shadow-folder"] == {"pending"}
        shadow_ids = {r.id for r in rows if r.destination == "shadow-folder"}
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "draft.created")).one()
        assert event.details["mode"] == "shadow"
    # Only the shadow destination's rows are woken, and the sweeper never sends the rest.
    assert {w.row_id for w in wakes} == shadow_ids
    with sessions() as session:
        session.execute(Delivery.__table__.update().values(next_attempt_at=None))
        session.commit()
        assert not [w for w in sweep_once(session, settings) if w.row_id not in shadow_ids]
    for row_id in shadow_ids:
        assert deliver(sessions, settings, row_id, 0) == "delivered"
    assert any((tmp_path / "shadow").rglob("sr-*.dcm"))
    assert not (tmp_path / "live").exists()
    # An urgent shadow draft alerted nobody, so nobody is reminded.
    settings.web.escalate_after_minutes = 0.0001
    with sessions() as session:
        assert escalate_due(session, settings) == []


def test_profile_in_shadow_mode_shadows_a_live_rule(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = _settings(tmp_path, db_url, profiles={"ct-generic": {"mode": "shadow"}})
    draft_id, _ = _draft(sessions, settings, phantom_dir, "ACC-SH2", mode="live")
    with sessions() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None and draft.mode == "shadow"
        states = {r.destination: r.state for r in session.scalars(select(Delivery))}
        assert states["ris"] == "shadow" and states["shadow-folder"] == "pending"


def test_final_report_pairs_and_scores_the_draft(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _settings(tmp_path, db_url)
    draft_id, _ = _draft(sessions, settings, phantom_dir, "ACC-Q1")
    with sessions() as session:
        assert score_accession(session, settings, "ACC-Q1") == 0  # no final report yet
        ack = store_message(session, final_oru("ACC-Q1", FINAL, "CTRL-Q1"))
        assert b"MSA|AA" in ack
    caplog.set_level("INFO")
    with sessions() as session:
        assert score_accession(session, settings, "ACC-Q1") == 1
        assert score_accession(session, settings, "ACC-Q1") == 0  # once per (accession, draft)
        pair = session.scalars(select(QualityPair)).one()
        assert (pair.accession, pair.draft_id, pair.mode) == ("ACC-Q1", draft_id, "shadow")
        assert pair.final_labels == {"SCT:36118008": "present", "SCT:60046008": "absent"}
        # The stand-in draft (triage urgent) names no pneumothorax; the final is critical.
        assert pair.final_critical and pair.triage == "TP"
        assert pair.modality == "CT" and pair.draft_ready_at is not None
        scores = {s.name: s for s in session.scalars(select(QualityScore))}
        assert {"bleu4.findings", "rougeL.findings", "chrf.findings", "bleu4.impression",
                "triage.correct", "time.draft_s", "time.lead_s"} <= set(scores)
        assert scores["triage.correct"].value == 1.0
        assert scores["triage.correct"].counts["outcome"] == "TP"
        assert all(s.accession == "ACC-Q1" and s.draft_id == draft_id for s in scores.values())
    assert "pneumothorax" not in caplog.text.lower()  # no report text in the logs


def test_late_draft_is_paired_by_the_sweep(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = _settings(tmp_path, db_url)
    with sessions() as session:
        store_message(session, final_oru("ACC-LATE", FINAL, "CTRL-LATE"))
    draft_id, _ = _draft(sessions, settings, phantom_dir, "ACC-LATE", mode="live")
    assert pair_due(sessions, settings) == 1
    assert pair_due(sessions, settings) == 0
    with sessions() as session:
        pair = session.scalars(select(QualityPair)).one()
        assert pair.draft_id == draft_id and pair.mode == "live"


def test_switching_a_rule_between_shadow_and_live_is_audited(
    sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    rule = ("rules:\n  - name: ct-all\n    match: {{modality: [CT]}}\n    action: draft\n"
            "    profile: ct-generic\n    mode: {mode}\n")
    path.write_text(rule.format(mode="shadow"))
    with sessions() as session:
        assert record_modes(session, load_rules(path)) == []  # first snapshot
        session.commit()
        assert record_modes(session, load_rules(path)) == []  # unchanged: nothing written
        session.commit()
    path.write_text(rule.format(mode="live"))
    with sessions() as session:
        changes = record_modes(session, load_rules(path))
        session.commit()
        assert changes == [{"rule": "ct-all", "was": "shadow", "now": "live"}]
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "rules.mode_changed")).one()
        assert event.details["rule"] == "ct-all" and event.details["now"] == "live"


def test_rule_mode_errors_name_the_line(tmp_path: Path) -> None:
    from radraft.core.errors import ConfigError

    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: a\n    action: draft\n    profile: ct-generic\n"
                    "    mode: quiet\n")
    with pytest.raises(ConfigError, match=r"rules.yaml:5: rules\[0\]\.mode: mode must be live"):
        load_rules(path)


def test_migration_0004_down_and_up(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from radraft.core.db import make_engine
    from radraft.core.db.migrate import alembic_config, schema_drift, upgrade

    config = alembic_config(db_url)
    command.downgrade(config, "0003")
    engine = make_engine(db_url)
    try:
        assert not {"quality_pair", "quality_score"} & set(inspect(engine).get_table_names())
        assert "mode" not in {c["name"] for c in inspect(engine).get_columns("job")}
        engine.dispose()
        upgrade(db_url)
        assert {"quality_pair", "quality_score"} <= set(inspect(engine).get_table_names())
        assert schema_drift(engine) == []
    finally:
        engine.dispose()


def test_a_redrafted_study_counts_once_in_the_estimates(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    from datetime import timedelta

    from radraft.core.db import db_now
    from radraft.worker.console.quality_queries import scored_pairs

    settings = _settings(tmp_path, db_url)
    first, _ = _draft(sessions, settings, phantom_dir, "ACC-RE")
    outcome = RuleOutcome("ct-shadow", "draft", profile="ct-generic", mode="shadow")
    with sessions() as session:
        study = session.scalars(select(Study)).one()
        [wake] = create_jobs(session, settings, stable_of(study, "v2"), [outcome])
        session.commit()
    assert draft_job(sessions, settings, StandInBackend(), wake.row_id, 0,
                     lambda _w: None) == "done"
    with sessions() as session:
        store_message(session, final_oru("ACC-RE", FINAL, "CTRL-RE"))
        assert score_accession(session, settings, "ACC-RE") == 2  # both drafts paired
        items = scored_pairs(session, db_now(session) - timedelta(days=1))
        newest = max(session.scalars(select(Draft.id)).all())
        assert newest != first and [i.pair.draft_id for i in items] == [newest]

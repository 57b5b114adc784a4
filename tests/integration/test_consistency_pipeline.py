"""The consistency check through the draft task (real frames, SR, HL7, database, outbox and
real-TCP MLLP delivery), with a stand-in backend whose answers are chosen:
- inconsistent, then consistent: asked again once with the reasons, the second answer kept,
  the ED alert names its finding by series/image and is filed beside the ORU (not over it)
  by a receiver that files one result per (order, service), also after a re-draft;
- always inconsistent: `alerts.unsupported: hold` sends no alert, the draft is
  `inconsistent` (row, audit, console board and study page, ORU note); `send` sends the
  alert, which says why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hl7
import pytest
from alembic import command
from console_helpers import PASSWORDS, ROLES, login, running_console
from helpers.net import free_port
from helpers.worker import index_folder, stable_of, worker_settings
from mllp_peer import MllpPeer
from pydicom import dcmread
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, Instance, Order, Study, make_engine
from radraft.core.db.migrate import alembic_config, upgrade
from radraft.core.settings import Settings
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.frames import TokenBudget
from radraft.reporting.model import DraftResult
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.prompts import Prompt
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence
from radraft.worker.checking import UNSUPPORTED_BOARD_TEXT
from radraft.worker.console.auth import create_user
from radraft.worker.console.ops_queries import ed_rows
from radraft.worker.console.queries import draft_view
from radraft.worker.draft_job import draft_job
from radraft.worker.escalation import escalate_due
from radraft.worker.jobs import create_jobs
from radraft.worker.outbox import deliver

ACCESSION = "ACC-CHK-1"
# What the tiny model answered on real studies: urgent, "normal", PE at Bone.
INCONSISTENT = {
    "exam": "normal", "technique": "", "comparison": "", "clinical_history": "",
    "findings": [{"system": "normal", "text": "normal", "severity": "normal",
                  "finding_type": "SCT:59282003", "finding_site": "SCT:272673000",
                  "frames": [0]}],
    "impression": [{"rank": 2, "text": "normal"}] * 4, "recommendations": ["normal"],
    "triage": {"level": "urgent", "reasons": ["normal"], "critical_findings": ["normal"]},
    "limitations": "",
}
CONSISTENT = {
    "exam": "CT abdomen", "technique": "portal venous", "comparison": "none",
    "clinical_history": "",
    "findings": [{"system": "liver", "text": "laceration of segment VII with active bleeding",
                  "severity": "critical", "finding_type": "SCT:50960005",
                  "finding_site": "SCT:10200004", "frames": [2]}],
    "impression": [{"rank": 1, "text": "Liver laceration with active bleeding."}],
    "recommendations": [], "limitations": "",
    "triage": {"level": "critical", "reasons": ["active bleeding"],
               "critical_findings": ["hepatic bleeding"]},
}


@dataclass
class ScriptedBackend:
    """Answers from a script (the last one repeats); records what it was asked. The
    `ModelBackend` contract, like `radraft.reporting.model.stand_in`."""

    answers: list[dict[str, Any]]
    prompts: list[str] = field(default_factory=list)

    def draft(self, seq: FrameSequence, prompt: Prompt) -> DraftResult:
        self.prompts.append(prompt.text)
        answer = self.answers[min(len(self.prompts) - 1, len(self.answers) - 1)]
        return DraftResult(report=DraftReport.model_validate(answer), model_id="stand-in",
                           model_version="", attempts=1)

    def token_budget(self) -> TokenBudget:
        return lambda _h, _w, wanted: wanted


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    write_phantom_study(out, slices=4, size=48, phases=["portal venous"], accession=ACCESSION)
    return out


def _index(session: Session, folder: Path) -> Study:
    """The study in the index with its Series/Instance Numbers (the alert's references) and
    an order with placer/filler numbers."""
    study = index_folder(session, folder)
    for instance in session.scalars(select(Instance).where(Instance.study_id == study.id)):
        ds = dcmread(instance.path, stop_before_pixels=True)
        instance.instance_number = int(ds.InstanceNumber)
        instance.series.series_number = int(ds.SeriesNumber)
    now = datetime.now(UTC)
    session.add(Order(accession=ACCESSION, placer_order_number="PL-9", filler_order_number="FI-9",
                      study_uid=study.study_uid, procedure_code="CTABD",
                      procedure_text="CT abdomen", received_at=now, updated_at=now))
    session.commit()
    return study


def _settings(tmp: Path, db_url: str, port: int, **extra: Any) -> Settings:
    return worker_settings(tmp, db_url, destinations={
        "ris": {"kind": "hl7", "host": "127.0.0.1", "port": port, "role": "ris"},
        "ed": {"kind": "hl7", "host": "127.0.0.1", "port": port, "role": "ed"},
    }, alerts={"console_url": "https://radraft.example.org", **extra.pop("alerts", {})},
        web={"host": "127.0.0.1", "port": free_port()}, **extra)


def _draft(sessions: sessionmaker[Session], settings: Settings, study: Study,
           backend: ScriptedBackend, version: str = "v1") -> None:
    outcome = RuleOutcome("all", "draft", profile="ct-abdomen-multiphase",
                          priority=Priority.URGENT, destinations=("ris", "ed"))
    with sessions() as session:
        [wake] = create_jobs(session, settings, stable_of(study, version), [outcome])
        session.commit()
    assert draft_job(sessions, settings, backend, wake.row_id, 0, lambda _w: None) == "done"


def _deliver_all(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    with sessions() as session:
        ids = session.scalars(select(Delivery.id).where(Delivery.state == "pending")).all()
    return [deliver(sessions, settings, i, 0) for i in ids]


def _obr(msg: hl7.Message, n: int) -> str:
    return str(msg.segment("OBR")[n])


def test_reask_then_alert_filed_beside_the_oru_by_order_and_service(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, study_dir: Path,
) -> None:
    peer = MllpPeer()  # one receiver both as RIS and ED: results filed per order+service
    try:
        settings = _settings(tmp_path, db_url, peer.port)
        with sessions() as session:
            study = _index(session, study_dir)
        backend = ScriptedBackend([INCONSISTENT, CONSISTENT])
        _draft(sessions, settings, study, backend)
        # Asked twice; the second prompt carries the first answer's reasons.
        assert len(backend.prompts) == 2
        assert "failed radraft's consistency check" in backend.prompts[1]
        assert "Pulmonary embolism cannot be at Bone" in backend.prompts[1]
        with sessions() as session:
            draft = session.scalars(select(Draft)).one()
            assert (draft.consistency, draft.reasks, draft.alert_decision) == (
                "consistent", 1, "send")
            assert draft.triage_level == "critical" and draft.consistency_reasons == []
            event = session.scalars(select(AuditEvent).where(
                AuditEvent.kind == "draft.checked")).one()
            assert event.details["reasks"] == 1 and event.details["state"] == "consistent"
            assert len(event.details["reask_prompts"][0]) == 64
            assert any("says nothing" in r for r in event.details["earlier_reasons"][0])
            [board] = ed_rows(session, settings)
            assert board.board_text == "" and board.alert_findings[0].startswith(
                "liver: laceration")
        assert _deliver_all(sessions, settings) == ["delivered", "delivered"]
        filed = peer.received.filed_results()
        assert len(filed) == 2
        oru = next(m for k, m in filed.items() if k[2] == "CTABD")
        alert = next(m for k, m in filed.items() if k[2] == "RADRAFT-AIALERT")
        assert (_obr(oru, 2), _obr(oru, 3)) == ("PL-9", "FI-9")
        assert _obr(alert, 2).startswith("AL") and _obr(alert, 2) != "PL-9"
        assert _obr(alert, 4) == "RADRAFT-AIALERT^AI triage alert^L"
        assert _obr(alert, 29) == "PL-9^FI-9"  # the parent order, for the ED to relate
        assert str(alert.segment("MSH")[10]) != str(oru.segment("MSH")[10])
        obx = [alert.unescape(str(s[5])) for s in alert.segments("OBX")]
        first_frame = dcmread(sorted(study_dir.rglob("*.dcm"))[0])
        assert obx[0].startswith("liver: laceration of segment VII with active bleeding "
                                 "(critical), series ")
        assert ", image " in obx[0] and "frame 2" not in obx[0]
        assert obx[1].startswith("series ") and "https://radraft.example.org/studies/" \
            f"{first_frame.StudyInstanceUID}#frame-2" in obx[1]

        # A re-draft: its ORU and its alert replace the first ones at the receiver.
        _draft(sessions, settings, study, ScriptedBackend([CONSISTENT]), version="v2")
        assert _deliver_all(sessions, settings) == ["delivered", "delivered"]
        assert len(peer.received.raw) == 4 and len(peer.received.filed_results()) == 2
    finally:
        peer.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("policy", ["hold", "send"])
def test_an_inconsistent_answer_is_marked_and_the_alert_follows_the_policy(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, study_dir: Path,
    policy: str,
) -> None:
    peer = MllpPeer()
    try:
        settings = _settings(tmp_path, db_url, peer.port, alerts={"unsupported": policy})
        with sessions() as session:
            study = _index(session, study_dir)
        backend = ScriptedBackend([INCONSISTENT])
        _draft(sessions, settings, study, backend)
        assert len(backend.prompts) == 2  # asked again once (consistency.max_reasks: 1)
        with sessions() as session:
            draft = session.scalars(select(Draft)).one()
            assert (draft.consistency, draft.reasks) == ("inconsistent", 1)
            assert draft.alert_decision == ("held" if policy == "hold" else "sent-anyway")
            assert any("urgent triage is not supported" in r for r in draft.consistency_reasons)
            kinds = sorted(session.scalars(select(Delivery.payload_kind)))
            assert kinds == (["oru"] if policy == "hold" else ["alert", "oru"])
            [board] = ed_rows(session, settings)
            assert board.board_text.startswith(UNSUPPORTED_BOARD_TEXT)
            if policy == "hold":
                assert board.critical_findings == [] and board.alert_findings == []
            view = draft_view(session, draft)
            assert view.consistency == "inconsistent" and view.consistency_reasons
            event = session.scalars(select(AuditEvent).where(
                AuditEvent.kind == "draft.checked")).one()
            assert "triage-unsupported" in event.details["codes"]
            assert event.details["alert"] == draft.alert_decision
        # The console as served (uvicorn): the ED board and the study page.
        with sessions() as session:
            create_user(session, "ed1", PASSWORDS["ed1"], ROLES["ed1"])
            session.commit()
        with running_console(settings, sessions) as client:
            login(client, "ed1")
            board_page = client.get("/ed").text
            study_page = client.get(f"/studies/{study.study_uid}").text
        assert UNSUPPORTED_BOARD_TEXT in board_page
        assert ("(alert sent anyway)" in board_page) is (policy == "send")
        assert "Inconsistent AI answer" in study_page and "asked again 1×" in study_page
        assert "Pulmonary embolism cannot be at Bone" in study_page
        # Past the escalation time: a held draft had no first alert and gets no second one.
        with sessions() as session:
            draft = session.scalars(select(Draft)).one()
            draft.created_at = draft.created_at - timedelta(hours=2)
            session.commit()
            escalations = escalate_due(session, settings)
            assert len(escalations) == (0 if policy == "hold" else 1)
        _deliver_all(sessions, settings)
        messages = peer.received.messages()
        oru = next(m for m in messages if _obr(m, 4).startswith("CTABD"))
        assert "consistency check: INCONSISTENT" in str(oru)  # the note the RIS reads
        alerts = [m for m in messages if _obr(m, 4).startswith("RADRAFT-AIALERT")]
        if policy == "hold":
            assert alerts == []
            return
        [escalation] = [m for m in alerts if "ESCALATION" in str(m)]
        [alert] = [m for m in alerts if "ESCALATION" not in str(m)]
        assert "RADRAFT-CHECK" in str(escalation)  # rebuilt from the stored basis
        text = str(alert)
        assert "SENT ALTHOUGH UNSUPPORTED" in text and "RADRAFT-CHECK" in text
        assert "Pulmonary embolism cannot be at Bone" in text
        assert "no finding supports it" in text
    finally:
        peer.stop()


def test_migration_0003_down_and_up(db_url: str) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "0002")
    engine = make_engine(db_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("draft")}
        assert "consistency" not in columns and "alert_decision" not in columns
        engine.dispose()
        upgrade(db_url)
        columns = {c["name"] for c in inspect(engine).get_columns("draft")}
        assert {"consistency", "consistency_reasons", "reasks", "alert_decision",
                "alert_basis"} <= columns
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_tiny_models_urgent_normal_answer_is_held_or_sent_with_why(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, study_dir: Path,
    tiny_model: Path,
) -> None:
    """The real tiny model (in-process, constrained decoding) through the draft task: its
    urgent answer made of "normal" yields no ED alert and an `inconsistent` draft on the
    board; with `send` (and no re-ask, to save a model call) the alert goes and says why."""
    from radraft.reporting.model import make_backend

    peer = MllpPeer()
    try:
        settings = _settings(tmp_path, db_url, peer.port, model={"path": str(tiny_model)})
        backend = make_backend(settings)
        with sessions() as session:
            study = _index(session, study_dir)
        outcome = RuleOutcome("all", "draft", profile="ct-generic", priority=Priority.URGENT,
                              destinations=("ris", "ed"))
        with sessions() as session:
            [wake] = create_jobs(session, settings, stable_of(study, "v1"), [outcome])
            session.commit()
        assert draft_job(sessions, settings, backend, wake.row_id, 0,
                         lambda _w: None) == "done"
        with sessions() as session:
            draft = session.scalars(select(Draft)).one()
            assert draft.triage_level in ("urgent", "critical")  # what it answers today
            assert (draft.consistency, draft.reasks, draft.alert_decision) == (
                "inconsistent", 1, "held")
            assert session.scalars(select(Delivery.payload_kind)).all() == ["oru"]
            [board] = ed_rows(session, settings)
            assert board.board_text == UNSUPPORTED_BOARD_TEXT
            assert board.critical_findings == [] and board.alert_findings == []

        send = settings.model_copy(update={
            "alerts": settings.alerts.model_copy(update={"unsupported": "send"}),
            "consistency": settings.consistency.model_copy(update={"max_reasks": 0})})
        with sessions() as session:
            [wake2] = create_jobs(session, send, stable_of(study, "v2"), [outcome])
            session.commit()
        assert draft_job(sessions, send, backend, wake2.row_id, 0,
                         lambda _w: None) == "done"
        with sessions() as session:
            second = session.scalars(select(Draft).where(Draft.version == "v2")).one()
            assert (second.consistency, second.reasks, second.alert_decision) == (
                "inconsistent", 0, "sent-anyway")
        assert "delivered" in _deliver_all(sessions, send)
        [alert] = [m for m in peer.received.messages()
                   if _obr(m, 4).startswith("RADRAFT-AIALERT")]
        assert "SENT ALTHOUGH UNSUPPORTED" in str(alert) and "says nothing" in str(alert)
    finally:
        peer.stop()


@pytest.mark.parametrize(("folder", "profile", "site"), [
    ("series_mr_wrist_mesa", "mr-generic", "SCT:12738006"),  # brain on a wrist MR
    ("study_ct_wb_contrast_kos", "ct-generic", "SCT:8205005"),  # wrist on a whole-body CT
])
def test_real_studies_headers_decide_what_cited_frames_show(
    tmp_path: Path, folder: str, profile: str, site: str,
) -> None:
    """Real headers (Body Part Examined, descriptions) against a finding at a site those
    frames cannot show, then at a site they do show (`radraft draft`'s path, no database)."""
    from helpers.data import DICOM_DATA

    from radraft.worker.draft_local import draft_folder

    wrong = {**CONSISTENT, "findings": [{**CONSISTENT["findings"][0], "finding_site": site,
                                         "finding_type": "SCT:52988006", "frames": [1]}]}
    settings = Settings(data_dir=tmp_path / "data")
    product, written = draft_folder(settings, DICOM_DATA / folder, [], profile,
                                    tmp_path / "wrong", backend=ScriptedBackend([wrong]))
    assert product.checked is not None and product.alert == "held"
    assert "frame-wrong-region" in {r.code for r in product.checked.verdict.reasons}
    assert "alert" not in written
    entire_body = {**wrong, "findings": [{**wrong["findings"][0],
                                          "finding_site": "SCT:38266002"}]}
    product, written = draft_folder(settings, DICOM_DATA / folder, [], profile,
                                    tmp_path / "right",
                                    backend=ScriptedBackend([entire_body]))
    assert product.checked is not None and product.checked.verdict.consistent
    assert product.alert == "send" and "alert" in written

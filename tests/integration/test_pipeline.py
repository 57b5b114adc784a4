"""The draft task on real frames, the real prompt and real SR/HL7 building, with the stand-in
model backend: one transaction writes the Draft, its outbox rows and the audit event; a new
version re-drafts with the predecessor."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from helpers.worker import index_folder, stable_of, worker_settings
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, Job
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.model.stand_in import StandInBackend
from radraft.reporting.phantom import write_phantom_study
from radraft.reporting.prompts import SYSTEM_PROMPT, Prompt
from radraft.reporting.sequence import FrameSequence
from radraft.worker.draft_job import draft_job
from radraft.worker.enqueue import WakeUp
from radraft.worker.jobs import create_jobs
from radraft.worker.outbox import deliver


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    write_phantom_study(out, slices=4, size=48, phases=["portal venous"])
    return out


def test_draft_writes_draft_outbox_and_audit_then_redrafts(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url, destinations={
        "folder": {"kind": "folder", "path": str(tmp_path / "outbox")},
        "ris": {"kind": "hl7", "host": "127.0.0.1", "port": 1, "role": "ris"},
        "ed": {"kind": "hl7", "host": "127.0.0.1", "port": 1, "role": "ed"},
    })
    outcome = RuleOutcome("all", "draft", profile="ct-generic", priority=Priority.URGENT)
    wakes: list[WakeUp] = []
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        [job_wake] = create_jobs(session, settings, stable_of(study), [outcome])
        session.commit()
    backend = StandInBackend()
    assert draft_job(sessions, settings, backend, job_wake.row_id, 0, wakes.append) == "done"
    # A duplicate wake-up for the same attempt does nothing.
    assert draft_job(sessions, settings, backend, job_wake.row_id, 0,
                     wakes.append) == "not-due"
    assert backend.calls == 1
    with sessions() as session:
        [draft] = session.scalars(select(Draft)).all()
        rows = session.execute(select(Delivery.destination, Delivery.payload_kind)).all()
        kinds = sorted(k for d, k in rows if d == "folder")
        assert sorted((d, k) for d, k in rows if d != "folder") == [
            ("ed", "alert"), ("ris", "oru")]
        job = session.get(Job, job_wake.row_id)
        assert job is not None and job.state == "done" and "frames" in job.timings
        assert draft.sr_uid and draft.triage_level == "urgent" and draft.frame_count > 0
        assert kinds == ["alert", "html", "kos", "oru", "sheet", "sr", "text", "tid1500"]
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "draft.created")).one()
        assert event.details["prompt_sha256"] == draft.prompt_sha256
        assert event.details["prompt"].startswith(SYSTEM_PROMPT)
        assert "Frame table:" in event.details["prompt"]
        assert event.details["model"] == "stand-in"
    assert len(wakes) == len(rows) and {w.kind for w in wakes} == {"delivery"}
    with sessions() as session:
        folder_ids = session.scalars(select(Delivery.id).where(
            Delivery.destination == "folder")).all()
    for row_id in folder_ids:
        assert deliver(sessions, settings, row_id, 0) == "delivered"
    folder = tmp_path / "outbox" / study.study_uid
    sr_file = folder / f"sr-{draft.sr_uid}.dcm"
    sr = dcmread(sr_file)
    assert sr.SOPInstanceUID == draft.sr_uid
    # Evidence: every image of the study (the index's UIDs, not a re-read of each file).
    evidence = {ref.ReferencedSOPInstanceUID
                for study_item in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study_item.ReferencedSeriesSequence
                for ref in series.ReferencedSOPSequence}
    assert evidence == {dcmread(p).SOPInstanceUID for p in phantom_dir.rglob("*.dcm")}
    assert any(p.name.startswith("kos-") for p in folder.iterdir())
    [text] = [p.read_text() for p in folder.glob("text-*.txt")]
    # The exam as the header states it; cited images by the index's series/image numbers.
    assert "Exam:       CT ABDOMEN" in text
    cited = dcmread(next(phantom_dir.rglob("*.dcm")), stop_before_pixels=True)
    assert "images: series " in text and "series ?" not in text and cited.SeriesNumber
    [oru] = [p.read_bytes() for p in folder.glob("oru-*.hl7")]
    assert oru.startswith(b"MSH|") and b"ORU^R01" in oru

    # The study changes: the new version is drafted with the old SR as predecessor.
    with sessions() as session:
        [wake2] = create_jobs(session, settings, stable_of(study, "v2"), [outcome])
        session.commit()
    assert draft_job(sessions, settings, backend, wake2.row_id, 0, wakes.append) == "done"
    with sessions() as session:
        second = session.scalars(select(Draft).where(Draft.version == "v2")).one()
        assert second.predecessor_id == draft.id and second.sr_uid != draft.sr_uid
        payload = session.scalars(select(Delivery.payload).where(
            Delivery.draft_id == second.id, Delivery.payload_kind == "sr")).one()
    sr2 = dcmread(BytesIO(payload))
    [pred] = sr2.PredecessorDocumentsSequence
    assert pred.ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == draft.sr_uid
    assert pred.ReferencedSeriesSequence[0].SeriesInstanceUID == sr2.SeriesInstanceUID


def test_draft_folder_writes_every_output(tmp_path: Path, phantom_dir: Path) -> None:
    from radraft.core.settings import Settings
    from radraft.worker.draft_local import draft_folder

    settings = Settings(data_dir=tmp_path / "data")
    product, written = draft_folder(settings, phantom_dir, [], "ct-generic", tmp_path / "out",
                                    backend=StandInBackend())
    assert set(written) == {"sr", "tid1500", "kos", "oru", "alert", "text", "html", "sheet",
                            "report"}
    assert dcmread(written["sr"]).SOPInstanceUID == product.uids["sr"]
    assert written["oru"].read_bytes().startswith(b"MSH|")
    assert written["sheet"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_radraft_draft_names_a_missing_model(tmp_path: Path, phantom_dir: Path) -> None:
    from typer.testing import CliRunner

    from radraft.worker.cli.main import app

    config = tmp_path / "c.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nmodel:\n  backend: openai\n"
                      "  base_urls: ['http://127.0.0.1:9/v1']\n")
    result = CliRunner().invoke(app, ["--config", str(config), "draft", str(phantom_dir),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "radraft:" in result.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_priors_fetched_from_the_pacs(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    """No prior in the local store: C-FIND at the PACS (Orthanc) by patient, C-GET the
    newest prior into data_dir/priors, and it enters the frames as a prior segment."""
    from orthanc import OrthancServer

    from radraft.reporting.phantom import PhantomStudy

    with sessions() as session:
        study = index_folder(session, phantom_dir)
    current = PhantomStudy(study.study_uid, study.patient_id, study.accession,
                           study.study_date, "CT", phantom_dir)
    prior_dir = tmp_path / "prior"
    prior = write_phantom_study(prior_dir, slices=3, size=48, phases=["portal venous"],
                                prior_of=current)
    with OrthancServer(tmp_path / "orthanc", aet="ORTHANC", extra_config={
        "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
    }) as pacs:
        for path in sorted(prior_dir.rglob("*.dcm")):
            pacs.upload(path)
        settings = worker_settings(tmp_path, db_url, pacs={
            "host": "127.0.0.1", "port": pacs.dicom_port, "ae_title": "ORTHANC",
            "retrieve": "get", "timeout_s": 20})
        outcome = RuleOutcome("all", "draft", profile="ct-generic", priority=Priority.ROUTINE)
        with sessions() as session:
            [wake] = create_jobs(session, settings, stable_of(study), [outcome])
            session.commit()
        assert draft_job(sessions, settings, StandInBackend(), wake.row_id, 0,
                         lambda _w: None) == "done"
    fetched = settings.data_dir / "priors" / prior.study_uid
    assert len(list(fetched.glob("*.dcm"))) == 3
    with sessions() as session:
        draft = session.scalars(select(Draft)).one()
    priors = {s["study_uid"] for s in draft.segments if s["is_prior"]}
    assert priors == {prior.study_uid}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_order_closed_while_drafting_sends_nothing(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    from radraft.core.db import Order, db_now

    settings = worker_settings(tmp_path, db_url)
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        [wake] = create_jobs(session, settings, stable_of(study),
                             [RuleOutcome("all", "draft", profile="ct-generic")])
        session.commit()

    def close_order(_seq: FrameSequence, _prompt: Prompt) -> None:
        with sessions() as session:  # the RIS reports a final result meanwhile
            now = db_now(session)
            session.add(Order(accession=study.accession, study_uid=study.study_uid,
                              status="final", received_at=now, updated_at=now))
            session.commit()

    assert draft_job(sessions, settings, StandInBackend(before=close_order), wake.row_id, 0,
                     lambda _w: None) == "cancelled"
    with sessions() as session:
        assert session.scalars(select(Draft)).all() == []
        assert session.scalars(select(Delivery)).all() == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_worker_lost_mid_draft_drafts_once(
    sessions: sessionmaker[Session], tmp_path: Path, db_url: str, phantom_dir: Path,
) -> None:
    """A worker claims the job and dies (lease left behind): the sweeper queues it again,
    the next attempt drafts it; one Draft row, one set of outbox rows."""
    from datetime import timedelta

    from sqlalchemy import update

    from radraft.core.db import db_now
    from radraft.worker.jobs import claim_job
    from radraft.worker.sweeper import sweep_once

    settings = worker_settings(tmp_path, db_url)
    with sessions() as session:
        study = index_folder(session, phantom_dir)
        [wake] = create_jobs(session, settings, stable_of(study),
                             [RuleOutcome("all", "draft", profile="ct-generic")])
        session.commit()
        assert claim_job(session, wake.row_id, 0, worker="dead", lease_s=600) is not None
        session.execute(update(Job).values(lease_until=db_now(session) - timedelta(seconds=1)))
        session.commit()
        [again] = sweep_once(session, settings)
    assert again.attempts == 1
    # The dead worker's message, redelivered by the broker, finds nothing to claim.
    assert draft_job(sessions, settings, StandInBackend(), wake.row_id, 0,
                     lambda _w: None) == "not-due"
    assert draft_job(sessions, settings, StandInBackend(), wake.row_id, 1,
                     lambda _w: None) == "done"
    with sessions() as session:
        assert len(session.scalars(select(Draft)).all()) == 1
        kinds = sorted(session.scalars(select(Delivery.payload_kind)).all())
    assert kinds == ["alert", "html", "kos", "oru", "sheet", "sr", "text", "tid1500"]

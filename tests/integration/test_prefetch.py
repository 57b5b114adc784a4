"""Priors before the study: an ORM^O01 over real MLLP makes a real Celery worker C-FIND
Orthanc (holding the patient's exams) and C-GET the relevant prior into the prior cache;
the draft's prior gathering then finds it on local disk. The prefetch state is a database
row, re-sent by the sweeper when its wake-up is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.net import free_port
from helpers.waiting import wait_for
from helpers.worker import index_folder, stable_of, worker_settings
from mllp_helpers import ack_of, hl7_send, running_listener
from node_helpers import ct_phase_study
from orthanc import OrthancServer
from pydicom import dcmread
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Draft, Order, Patient, PriorPrefetch, db_now
from radraft.core.settings import Hl7Settings, load_settings
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome, RulesWatcher
from radraft.reporting.model.stand_in import StandInBackend
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.draft_job import draft_job
from radraft.worker.enqueue import WakeUp
from radraft.worker.gather import local_priors
from radraft.worker.jobs import create_jobs
from radraft.worker.prefetch import request_prefetch
from radraft.worker.serve.orders import celery_on_order_change
from radraft.worker.sweeper import sweep_once

pytestmark = [pytest.mark.slow]

RADRAFT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "radraft")


def _exam(folder: Path, *, patient: str, issuer: str, days_ago: int, modality: str = "CT",
          description: str = "CT CHEST") -> tuple[str, list[Path]]:
    files = ct_phase_study(folder, phases=("A",), slices=2, description=description)
    date = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y%m%d")
    for path in files:
        ds = dcmread(path)
        ds.PatientID, ds.IssuerOfPatientID, ds.StudyDate = patient, issuer, date
        ds.Modality = modality
        ds.save_as(path, enforce_file_format=True)
    return str(dcmread(files[0]).StudyInstanceUID), files


def _orm(accession: str, control: str) -> bytes:
    segments = [
        f"MSH|^~\\&|RIS|HOSP|RADRAFT|HOSP|||ORM^O01|{control}|P|2.3.1",
        "PID|||P77^^^HOSP||DOE^J||19600101|M",
        "PV1||E|ED^1^1",
        "ORC|NW|PL1^RIS|FL1^RIS||SC||1^once^^^^S||20240101090000",
        f"OBR|1|PL1^RIS|FL1^RIS|CTCH^CT CHEST^L|||||||||||||||{accession}|RP1|SPS1||||CT",
    ]
    return ("\r".join(segments) + "\r").encode()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_order_over_mllp_prefetches_relevant_priors_from_orthanc(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, vhost: str,
) -> None:
    relevant, _ = _exam(tmp_path / "p1", patient="P77", issuer="HOSP", days_ago=40)
    _exam(tmp_path / "p2", patient="P77", issuer="HOSP", days_ago=60, modality="MR",
          description="MR KNEE")  # another modality: not relevant to a CT profile
    _exam(tmp_path / "p3", patient="P77", issuer="HOSP", days_ago=3000)  # outside the window
    _exam(tmp_path / "p4", patient="P77", issuer="OTHER", days_ago=20)  # another patient
    with OrthancServer(tmp_path / "orthanc", extra_config={
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True}) as pacs:
        for path in sorted(tmp_path.glob("p*/*.dcm")):
            pacs.upload(path)
        data: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"), "database_url": db_url,
            "broker_url": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "pacs": {"host": "127.0.0.1", "port": pacs.dicom_port, "ae_title": "ORTHANC",
                     "timeout_s": 20, "prefetch_profile": "ct-generic"},
            "profiles": {"ct-generic": {"max_priors": 2, "prior_window_days": 365,
                                        "prior_modalities": ["CT"]}},
            "jobs": {"sweep_interval_s": 1},
        }
        config = tmp_path / "radraft.yaml"
        config.write_text(yaml.safe_dump(data))
        settings = load_settings(config)
        rules = tmp_path / "rules.yaml"
        rules.write_text("rules: []\n")
        hook = celery_on_order_change(settings, sessions, RulesWatcher(rules))
        worker = subprocess.Popen(
            [RADRAFT, "--config", str(config), "worker", "--concurrency", "1"],
            stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            with running_listener(sessions, Hl7Settings(port=free_port()), hook) as port:
                ack = ack_of(hl7_send(port, _orm("ACC-PF1", "PF1")))
                assert str(ack.segment("MSA")[1]) == "AA"

                def done() -> bool:
                    with sessions() as session:
                        row = session.scalars(select(PriorPrefetch)).first()
                        return row is not None and row.state == "done"
                wait_for("the prefetch done", done, tmp_path, timeout=180, interval=0.3)
                # The same order again: one prefetch per order.
                assert str(ack_of(hl7_send(port, _orm("ACC-PF1", "PF2"))).segment("MSA")[1]) \
                    == "AA"
                time.sleep(2)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
    with sessions() as session:
        [row] = session.scalars(select(PriorPrefetch)).all()
        assert row.chosen == [relevant]
        assert (row.retrieved, row.held, row.issuer) == (1, 0, "HOSP")
        cached = settings.data_dir / "priors" / relevant
        assert len(list(cached.glob("*.dcm"))) == 2
    # The study arrives (the PACS is gone now): its draft takes the prior from local disk
    # and cites it in its frames.
    write_phantom_study(tmp_path / "current", patient_id="P77", slices=4, size=32,
                        phases=["portal venous"], accession="ACC-PF1",
                        study_date=datetime.now(UTC).strftime("%Y%m%d"))
    with sessions() as session:
        study = index_folder(session, tmp_path / "current")
        study.issuer_of_patient_id = "HOSP"
        assert local_priors(session, settings, study, settings.profiles["ct-generic"]) == [
            cached]
        outcome = RuleOutcome("ed", "draft", profile="ct-generic", priority=Priority.URGENT,
                              destinations=())
        [wake] = create_jobs(session, settings, stable_of(study), [outcome])
        session.commit()
    assert draft_job(sessions, settings, StandInBackend(), wake.row_id, 0,
                     lambda _w: None) == "done"
    with sessions() as session:
        draft = session.scalars(select(Draft)).one()
        assert relevant in {segment["study_uid"] for segment in draft.segments}


def test_lost_prefetch_wakeup_is_resent_by_the_sweeper(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path,
) -> None:
    settings = worker_settings(tmp_path, db_url, pacs={"host": "127.0.0.1", "port": 104,
                                                       "ae_title": "PACS"})
    with sessions() as session:
        now = db_now(session)
        patient = Patient(patient_id="P1", issuer="H", updated_at=now)
        session.add(patient)
        session.flush()
        session.add(Order(accession="A1", patient_ref=patient.id, status="active",
                          received_at=now, updated_at=now))
        session.commit()
        wake = request_prefetch(session, settings, "A1")
        session.commit()
        assert wake is not None and wake.kind == "prefetch"
        assert request_prefetch(session, settings, "A1") is None  # one per order
        assert sweep_once(session, settings) == []  # its wake-up is on the way
        # The node restarted before a worker took it: the row is still there, due again.
        session.execute(update(PriorPrefetch).values(
            next_attempt_at=db_now(session) - timedelta(seconds=1)))
        session.commit()
        assert sweep_once(session, settings) == [WakeUp("prefetch", wake.row_id, 0)]
        assert sweep_once(session, settings) == []


def test_an_omi_o23_imaging_order_over_mllp_asks_for_a_prefetch(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path,
) -> None:
    """The dcm4che sample OMI^O23 (accession in IPC-1) through the real listener: one queued
    prefetch for its patient (PID-3 with its assigning authority)."""
    settings = worker_settings(tmp_path, db_url, pacs={"host": "127.0.0.1", "port": 104,
                                                       "ae_title": "PACS"})
    wakes: list[WakeUp] = []

    def hook(change: object) -> None:
        with sessions() as session:
            wake = request_prefetch(session, settings, change.accession)  # type: ignore[attr-defined]
            session.commit()
        if wake is not None:
            wakes.append(wake)

    sample = (Path(__file__).resolve().parents[1] / "data" / "hl7"
              / "omi_o23_imaging_order.hl7").read_bytes()
    with running_listener(sessions, Hl7Settings(port=free_port()), hook) as port:
        assert str(ack_of(hl7_send(port, sample)).segment("MSA")[1]) == "AA"
        wait_for("the prefetch requested", lambda: bool(wakes), tmp_path, timeout=30)
    with sessions() as session:
        [row] = session.scalars(select(PriorPrefetch)).all()
        assert (row.patient_id, row.issuer, row.state) == ("PID_1", "ADT1", "queued")
        assert wakes == [WakeUp("prefetch", row.id, 0)]

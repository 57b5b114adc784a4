"""Shared by the console tests: a database with a drafted urgent study (real frames, real
SR, stand-in model), an unmatched study, failed deliveries, and one user per role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from helpers.net import free_port
from helpers.worker import index_folder, stable_of, worker_settings
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Delivery, Patient, RuleDecision, Study
from radraft.core.settings import Settings
from radraft.core.types import Priority
from radraft.dicom_node.rules import RuleOutcome
from radraft.reporting.model.stand_in import StandInBackend
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.console import ConsoleServer
from radraft.worker.console.auth import create_user
from radraft.worker.draft_job import draft_job
from radraft.worker.enqueue import Enqueue
from radraft.worker.jobs import create_jobs

# PHI the tests look for where it must not be (logs, pages without login).
PATIENT_NAME = "Quillfeather^Aurelia"
PATIENT_ID = "PID-CONSOLE-1"
HEADER_NAME = f"PHANTOM^{PATIENT_ID}"  # what write_phantom_study puts in the headers
NAME_PARTS = ("Quillfeather", "Aurelia", "QUILLFEATHER", "AURELIA")
PASSWORDS = {"alice": "admin-password-1", "ed1": "ed-password-123", "vic": "viewer-pass-1"}
ROLES = {"alice": "admin", "ed1": "ed", "vic": "viewer"}

RULES = """\
rules:
  - name: ct-abdomen
    match: {modality: [CT]}
    action: draft
    profile: ct-generic
    priority: urgent
    destinations: [folder, ris, ed]
  - name: everything-else
    default: true
    action: ignore
"""

REPORT = {
    "exam": "CT abdomen", "technique": "portal venous", "comparison": "none",
    "clinical_history": "abdominal pain",
    "findings": [{"system": "liver", "text": "hypodense lesion, segment VII", "severity":
                  "critical", "finding_type": "SCT:52988006",
                  "finding_site": "SCT:10200004", "frames": [1, 2]}],
    "impression": [{"rank": 1, "text": "liver lesion, needs attention"}],
    "recommendations": ["MRI liver"],
    "triage": {"level": "critical", "reasons": ["possible active bleed"],
               "critical_findings": ["suspected hepatic haemorrhage"]},
    "limitations": "stand-in model",
}


@dataclass
class Seeded:
    settings: Settings
    drafted_uid: str
    unmatched_uid: str
    draft_id: int
    failed_delivery: int
    pending_delivery: int


def console_settings(tmp: Path, db_url: str, **extra: Any) -> Settings:
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    data: dict[str, Any] = {
        "destinations": {
            "folder": {"kind": "folder", "path": str(tmp / "outbox")},
            "ris": {"kind": "hl7", "host": "127.0.0.1", "port": 1, "role": "ris"},
            "ed": {"kind": "hl7", "host": "127.0.0.1", "port": 1, "role": "ed"},
        },
        "rules_file": rules,
        "web": {"host": "127.0.0.1", "port": free_port(), "escalate_after_minutes": 1},
    }
    data.update(extra)
    return worker_settings(tmp, db_url, **data)


def seed(sessions: sessionmaker[Session], tmp: Path, db_url: str) -> Seeded:
    settings = console_settings(tmp, db_url)
    drafted = tmp / "drafted"
    write_phantom_study(drafted, slices=4, size=48, phases=["portal venous"],
                        patient_id=PATIENT_ID, accession="ACC-CON-1")
    other = tmp / "other"
    write_phantom_study(other, slices=2, size=32, phases=["arterial"], patient_id="PID-2",
                        accession="ACC-CON-2", seed=1)
    outcome = RuleOutcome("ct-abdomen", "draft", profile="ct-generic",
                          priority=Priority.URGENT, destinations=("folder", "ris", "ed"))
    with sessions() as session:
        for user, password in PASSWORDS.items():
            create_user(session, user, password, ROLES[user])
        session.add(Patient(patient_id=PATIENT_ID, name=PATIENT_NAME, birth_date="19610203",
                            sex="F", updated_at=datetime.now(UTC)))
        study = index_folder(session, drafted)
        study.study_description = "CT ABDOMEN"
        [wake] = create_jobs(session, settings, stable_of(study), [outcome])
        unmatched = index_folder(session, other)
        unmatched.study_description = "CT SPINE"
        create_jobs(session, settings, stable_of(unmatched),
                    [RuleOutcome("", "unmatched", reasons=("no rules",))])
        session.commit()
        drafted_uid, unmatched_uid = study.study_uid, unmatched.study_uid
    assert draft_job(sessions, settings, StandInBackend(REPORT), wake.row_id, 0,
                     lambda _w: None) == "done"
    with sessions() as session:
        rows = {(d.destination, d.payload_kind): d for d in session.scalars(select(Delivery))}
        failed = rows[("ris", "oru")]
        failed.state, failed.last_error = "failed", "AE: application error (stand-in)"
        pending = rows[("ed", "alert")]
        pending.attempts, pending.last_error = 2, "connection refused"
        session.commit()
        assert session.scalars(select(RuleDecision).where(
            RuleDecision.study_uid == unmatched_uid)).one().action == "unmatched"
        assert session.scalars(select(Study).where(
            Study.study_uid == unmatched_uid)).one().admin_flag
        return Seeded(settings, drafted_uid, unmatched_uid, failed.draft_id, failed.id,
                      pending.id)


@contextmanager
def running_console(settings: Settings, sessions: sessionmaker[Session],
                    enqueue: Enqueue | None = None) -> Iterator[httpx.Client]:
    """The console served by uvicorn (the `radraft serve` component) on a free port, and an
    httpx client for it."""
    server = ConsoleServer(settings, sessions, enqueue=enqueue)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
            yield client
    finally:
        server.stop()


def login(client: httpx.Client, user: str) -> str:
    """Log in through the JSON API; returns the CSRF token."""
    answer = client.post("/api/login", json={"username": user, "password": PASSWORDS[user]})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["csrf_token"]
    return token

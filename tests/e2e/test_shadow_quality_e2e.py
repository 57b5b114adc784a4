"""Shadow mode and the quality loop with real processes: `radraft serve` (node, HL7
listener, console) and `radraft worker` (tiny model in process), a shadow rule, dcmtk
storescu sending two studies, Orthanc as the PACS and MLLP peers as RIS and ED. Nothing
reaches the PACS, the RIS or the ED; the shadow folder gets the outputs. Final reports
come from an MLLP client (the `hl7` package's); the drafts are paired and scored; the
Quality page shows them in a real Chromium (screenshots in tests/artifacts/quality/)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.net import free_port
from helpers.processes import stop_process
from helpers.waiting import wait_for
from mllp_helpers import hl7_send
from mllp_peer import MllpPeer
from orthanc import OrthancServer
from playwright.sync_api import expect, sync_playwright
from quality_helpers import final_oru
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, QualityPair, make_engine
from radraft.core.db import make_sessionmaker as sessionmaker_of
from radraft.core.db.migrate import upgrade
from radraft.ehr.samples import demo_messages
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.console.auth import create_user

pytestmark = pytest.mark.slow

RADRAFT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "radraft")
CHROMIUM = "/usr/bin/chromium"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
RULES = """rules:
  - name: ct-shadow
    match: {modality: [CT]}
    action: draft
    profile: ct-generic
    priority: urgent
    destinations: [pacs, ris, ed, shadow-copy]
    mode: shadow
"""
FINALS = {
    "ACC-SH-1": "FINDINGS: Small right pneumothorax. No pleural effusion.\n"
                "IMPRESSION: Right pneumothorax, communicated to Dr Lee.",
    "ACC-SH-2": "FINDINGS: No free air. No free fluid. Normal appendix.\n"
                "IMPRESSION: No acute abnormality.",
}


def _spawn(config: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([RADRAFT, "--config", str(config), *args],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _storescu(folder: Path, port: int) -> None:
    run = subprocess.run(["/usr/bin/storescu", "+sd", "+r", "-aec", "RADRAFT", "127.0.0.1",
                          str(port), str(folder)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def _config(tmp: Path, ports: dict[str, int], pacs: OrthancServer, ris: MllpPeer,
            ed: MllpPeer, model: Path, db_url: str) -> Path:
    (tmp / "rules.yaml").write_text(RULES)
    data: dict[str, Any] = {
        "data_dir": str(tmp / "data"), "database_url": db_url, "rules_file": "rules.yaml",
        "dicom": {"host": "127.0.0.1", "port": ports["dicom"], "stable_seconds": 1},
        "hl7": {"host": "127.0.0.1", "port": ports["hl7"]},
        "web": {"host": "127.0.0.1", "port": ports["web"], "escalate_after_minutes": 0.05},
        "model": {"path": str(model)},
        "profiles": {"ct-generic": {"frames": {"windows": ["abdomen"], "frame_size": 224,
                                               "max_frames": 16}}},
        "destinations": {
            "pacs": {"kind": "dicom", "host": "127.0.0.1", "port": pacs.dicom_port,
                     "ae_title": pacs.aet, "timeout_s": 30},
            "ris": {"kind": "hl7", "host": "127.0.0.1", "port": ris.port, "role": "ris"},
            "ed": {"kind": "hl7", "host": "127.0.0.1", "port": ed.port, "role": "ed"},
            "shadow-copy": {"kind": "folder", "path": str(tmp / "shadow"), "shadow": True},
        },
        "jobs": {"sweep_interval_s": 1, "redeliver_after_s": 30},
    }
    path = tmp / "radraft.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return len(session.scalars(select(model)).all())


def test_shadow_period_end_to_end(tmp_path: Path, tiny_model: Path, artifacts: Path) -> None:
    assert Path(CHROMIUM).exists(), "install the Debian package chromium"
    db_url = f"sqlite:///{tmp_path / 'radraft.db'}"
    upgrade(db_url)
    sessions = sessionmaker_of(make_engine(db_url))
    with sessions() as session:
        create_user(session, "alice", "admin-password-1", "admin")
        session.commit()
    ports = {"dicom": free_port(), "hl7": free_port(), "web": free_port()}
    ris, ed = MllpPeer(), MllpPeer()
    studies = {}
    for number, accession in enumerate(FINALS, 1):
        studies[accession] = write_phantom_study(
            tmp_path / accession, slices=4, size=48, phases=["portal venous"],
            patient_id=f"SH-PAT-{number}", accession=accession, seed=number)
    shots = artifacts / "quality"
    shots.mkdir(exist_ok=True)
    with OrthancServer(tmp_path / "orthanc", aet="ORTHANC") as pacs:
        config = _config(tmp_path, ports, pacs, ris, ed, tiny_model, db_url)
        serve = _spawn(config, ["serve"], tmp_path / "serve.log")
        worker = _spawn(config, ["worker", "--pool", "solo"], tmp_path / "worker.log")
        try:
            wait_for("serve listening", lambda: _listening(ports["dicom"])
                     and _listening(ports["hl7"]) and _listening(ports["web"]), tmp_path,
                     timeout=90)
            for number, accession in enumerate(FINALS, 1):
                for message in demo_messages(accession=accession,
                                             patient_id=f"SH-PAT-{number}"):
                    assert b"MSA|AA" in hl7_send(ports["hl7"], message)
                _storescu(tmp_path / accession, ports["dicom"])
            wait_for("two shadow drafts and their shadow copies delivered",
                     lambda: _shadow_copies_delivered(sessions) == 2, tmp_path, timeout=300)
            for number, (accession, text) in enumerate(FINALS.items(), 1):
                ack = hl7_send(ports["hl7"], final_oru(accession, text, f"FIN{number}",
                                                       patient_id=f"SH-PAT-{number}"))
                assert b"MSA|AA" in ack
            wait_for("both pairs scored", lambda: _count(sessions, QualityPair) == 2,
                     tmp_path, timeout=180)
            _browse(ports["web"], shots, studies["ACC-SH-1"].study_uid)
        finally:
            stop_process(worker)
            stop_process(serve)
        # Nothing reached the PACS, the RIS or the ED.
        assert pacs.find_studies() == []
    assert ris.received.raw == [] and ed.received.raw == []
    ris.stop()
    ed.stop()
    with sessions() as session:
        drafts = session.scalars(select(Draft)).all()
        assert len(drafts) == 2 and {d.mode for d in drafts} == {"shadow"}
        states = {(r.destination, r.state) for r in session.scalars(select(Delivery))}
        assert {s for d, s in states if d in ("pacs", "ris", "ed")} == {"shadow"}
        assert {s for d, s in states if d == "shadow-copy"} == {"delivered"}
        pairs = session.scalars(select(QualityPair)).all()
        assert {p.accession for p in pairs} == set(FINALS)
        assert all(p.mode == "shadow" and p.final_signed_at for p in pairs)
        one = next(p for p in pairs if p.accession == "ACC-SH-1")
        assert one.final_labels["SCT:36118008"] == "present" and one.final_critical
        assert not session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "alert.escalated")).all()
    assert any((tmp_path / "shadow").rglob("sr-*.dcm"))
    for log in ("worker.log", "serve.log"):  # no report text in any log
        assert "pneumothorax" not in (tmp_path / log).read_text().lower()
    for name in ("01-quality", "02-study-shadow", "03-studies"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


def _shadow_copies_delivered(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        drafts = session.scalars(select(Draft.id)).all()
        done = 0
        for draft_id in drafts:
            states = session.scalars(select(Delivery.state).where(
                Delivery.draft_id == draft_id, Delivery.destination == "shadow-copy")).all()
            done += bool(states) and all(s == "delivered" for s in states)
        return done


def _browse(port: int, shots: Path, study_uid: str) -> None:
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        page.goto(f"{base}/login?next=/quality")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "admin-password-1")
        page.click("button[type=submit]")
        page.goto(f"{base}/quality?mode=shadow")
        expect(page.locator("#pair-count")).to_have_text("2")
        expect(page.locator("#rules-evidence")).to_contain_text("ct-shadow")
        expect(page.locator("#rules-evidence")).to_contain_text("too few to judge")
        expect(page.locator("#headline")).to_contain_text("macro_f1")
        expect(page.locator("#triage")).to_contain_text("TP")
        expect(page.locator("section.worst").first).to_contain_text("ACC-SH-")
        page.screenshot(path=str(shots / "01-quality.png"), full_page=True)
        page.goto(f"{base}/studies/{study_uid}")
        expect(page.locator(".shadow-badge").first).to_have_text("SHADOW")
        page.screenshot(path=str(shots / "02-study-shadow.png"), full_page=True)
        page.goto(f"{base}/studies")
        expect(page.locator("#studies .shadow-badge").first).to_have_text("shadow")
        page.screenshot(path=str(shots / "03-studies.png"), full_page=True)
        browser.close()
        assert errors == []

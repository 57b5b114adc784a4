"""The console's JSON API over a real uvicorn server (the `radraft serve` component), with
httpx: studies, one study with its pictures, queues, deliveries (retry/cancel), rules
(validate, save, test, reload), the ED board (acknowledge), OpenAPI, metrics, health."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from console_helpers import RULES, Seeded, login, running_console, seed
from helpers.net import free_port
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core import audit
from radraft.core.db import AuditEvent, Delivery
from radraft.worker.console.deps import CSRF_HEADER
from radraft.worker.console.health import default_checks
from radraft.worker.enqueue import WakeUp
from radraft.worker.heartbeat import beat


@pytest.fixture
def seeded(sessions: sessionmaker[Session], tmp_path: Path, db_url: str) -> Seeded:
    return seed(sessions, tmp_path, db_url)


def _audit(sessions: sessionmaker[Session], kind: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def test_studies_list_filters_and_one_study_with_its_pictures(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    with running_console(seeded.settings, sessions) as client:
        login(client, "vic")
        rows = {r["study_uid"]: r for r in client.get("/api/studies").json()}
        drafted, unmatched = rows[seeded.drafted_uid], rows[seeded.unmatched_uid]
        assert (drafted["rule"], drafted["job_state"], drafted["triage"]) == (
            "draft by ct-abdomen", "done", "critical")
        assert drafted["patient_name"] == "Quillfeather Aurelia"
        assert drafted["drafted_at"] and "frames" in drafted["timings"]
        assert (unmatched["rule"], unmatched["job_state"]) == ("unmatched", "")
        assert unmatched["admin_flag"] == "no routing rule matched"

        def uids(**params: str) -> set[str]:
            return {r["study_uid"] for r in client.get("/api/studies", params=params).json()}

        assert uids(job_state="done") == {seeded.drafted_uid}
        assert uids(job_state="none") == {seeded.unmatched_uid}
        assert uids(rule="unmatched") == {seeded.unmatched_uid}
        assert uids(q="ACC-CON-2") == {seeded.unmatched_uid}
        assert uids(flagged="true") == {seeded.unmatched_uid}
        assert uids(modality="MR") == set()

        detail = client.get(f"/api/studies/{seeded.drafted_uid}").json()
        [series] = detail["series"]
        assert series["instances"] == 4 and "portal venous (abdomen)" in series["labels"]
        [draft] = detail["drafts"]
        assert set(draft["key_frames"]) == {"1", "2"}
        assert 'href="/drafts/' in draft["html"] and "hypodense lesion" in draft["html"]
        assert {(d["destination"], d["payload_kind"], d["state"]) for d in draft["deliveries"]
                } >= {("ris", "oru", "failed"), ("ed", "alert", "pending")}
        assert "draft.created" in [a["kind"] for a in detail["audit"]]
        assert client.get("/api/studies/1.2.3.4.404").status_code == 404

        sheet = client.get(draft["sheet_url"])
        frame = client.get(draft["key_frames"]["1"])
        assert sheet.headers["content-type"] == frame.headers["content-type"] == "image/png"
        assert Image.open(BytesIO(frame.content)).size == (448, 448)
        assert Image.open(BytesIO(sheet.content)).width > 448
        assert client.get(f"/drafts/{draft['id']}/frames/7.png").status_code == 404


def test_admin_retries_and_cancels_deliveries(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    woken: list[WakeUp] = []
    with running_console(seeded.settings, sessions, enqueue=woken.append) as client:
        csrf = login(client, "alice")
        listed = {r["id"]: r for r in client.get("/api/deliveries").json()}
        assert listed[seeded.failed_delivery]["state"] == "failed"
        assert seeded.pending_delivery in listed  # retrying (attempts > 0)
        assert all(r["state"] != "delivered" for r in listed.values())
        # Without the CSRF header a changing call is refused.
        assert client.post(f"/api/deliveries/{seeded.failed_delivery}/retry").status_code == 403
        answer = client.post(f"/api/deliveries/{seeded.failed_delivery}/retry",
                             headers={CSRF_HEADER: csrf})
        assert answer.json() == {"id": seeded.failed_delivery, "state": "pending"}
        assert woken == [WakeUp("delivery", seeded.failed_delivery, 0)]
        cancel = client.post(f"/api/deliveries/{seeded.pending_delivery}/cancel",
                             headers={CSRF_HEADER: csrf})
        assert cancel.json()["state"] == "cancelled"
        again = client.post(f"/api/deliveries/{seeded.pending_delivery}/retry",
                            headers={CSRF_HEADER: csrf})
        assert again.status_code == 400 and "cancelled" in again.json()["detail"]
        assert client.get("/api/deliveries", params={"state": "bogus"}).status_code == 400
    with sessions() as session:
        failed = session.get(Delivery, seeded.failed_delivery)
        cancelled = session.get(Delivery, seeded.pending_delivery)
        assert failed is not None and cancelled is not None
        assert failed.state == "pending" and failed.expires_at is not None
        assert cancelled.state == "cancelled" and "cancelled by alice" in cancelled.last_error
    [retried] = _audit(sessions, "delivery.retried")
    assert (retried.actor, retried.details["was"]) == ("alice", "failed")
    assert _audit(sessions, "delivery.cancelled")[0].actor == "alice"


def test_rules_validate_save_test_and_reload(
    seeded: Seeded, sessions: sessionmaker[Session],
) -> None:
    path = seeded.settings.rules_file
    assert path is not None
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "alice")
        view = client.get("/api/rules").json()
        assert view["valid"] and view["text"] == RULES and view["in_force_count"] == 2
        assert view["file_digest"] == view["in_force_digest"]

        bad = "rules:\n  - name: x\n    action: explode\n"
        refused = client.put("/api/rules", json={"text": bad}, headers={CSRF_HEADER: csrf})
        assert refused.status_code == 400
        assert "line 3" in refused.json()["detail"] or ":3" in refused.json()["detail"]
        assert path.read_text() == RULES  # an invalid text never replaces the file

        tried = client.post("/api/rules/test", json={"study_uid": seeded.drafted_uid},
                            headers={CSRF_HEADER: csrf}).json()
        [outcome] = tried["outcomes"]
        assert (outcome["action"], outcome["rule_name"], outcome["priority"]) == (
            "draft", "ct-abdomen", "urgent")
        # The edited text can be tried before it is saved.
        ignore_all = "rules:\n  - name: nothing\n    match: {modality: [CT]}\n    action: ignore\n"
        tried = client.post("/api/rules/test", json={"study_uid": seeded.drafted_uid,
                                                     "text": ignore_all},
                            headers={CSRF_HEADER: csrf}).json()
        assert tried["source"] == "edited text"
        assert [o["action"] for o in tried["outcomes"]] == ["ignore"]
        missing = client.post("/api/rules/test", json={"study_uid": "9.9.9"},
                              headers={CSRF_HEADER: csrf})
        assert missing.status_code == 404

        saved = client.put("/api/rules", json={"text": ignore_all},
                           headers={CSRF_HEADER: csrf}).json()
        assert path.read_text() == ignore_all
        assert saved["valid"] and saved["in_force_count"] == 1
        assert saved["in_force_digest"] == saved["file_digest"] != view["in_force_digest"]
        # An edit outside the console that breaks the file: reload keeps the rules in force.
        path.write_text(bad + "# broken by hand\n")
        kept = client.post("/api/rules/reload", headers={CSRF_HEADER: csrf}).json()
        assert not kept["valid"] and kept["in_force_count"] == 1 and kept["watcher_error"]
    assert [e.actor for e in _audit(sessions, "rules.changed")] == ["alice"]
    assert _audit(sessions, "rules.reloaded")[0].details["valid"] is False


def test_ed_board_acknowledge_and_queues(seeded: Seeded, sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        beat(session, "host-a:1", "stat,draft,delivery")
    with running_console(seeded.settings, sessions) as client:
        csrf = login(client, "ed1")
        [row] = client.get("/api/ed").json()
        assert (row["draft_id"], row["triage"], row["acknowledged_at"]) == (
            seeded.draft_id, "critical", None)
        assert row["critical_findings"] == ["suspected hepatic haemorrhage"]
        assert row["minutes_since_arrival"] >= 0 and "ed alert: pending" in row["alert_states"]
        acked = client.post(f"/api/ed/{seeded.draft_id}/ack", headers={CSRF_HEADER: csrf})
        assert acked.json()["state"] == "acknowledged by ed1"
        again = client.post(f"/api/ed/{seeded.draft_id}/ack", headers={CSRF_HEADER: csrf})
        assert again.status_code == 200  # twice is once
        [row] = client.get("/api/ed").json()
        assert row["acknowledged_by"] == "ed1" and row["acknowledged_at"]

        queues = client.get("/api/queues").json()
        assert [p["priority"] for p in queues["priorities"]] == ["stat", "urgent", "routine"]
        assert all(p["queued"] == 0 for p in queues["priorities"])
        [worker] = queues["workers"]
        assert worker["name"] == "host-a:1" and worker["alive"] is True
        ris = {d["destination"]: d for d in queues["destinations"]}["ris"]
        assert ris["failed"] == 1
    assert len(_audit(sessions, "alert.acknowledged")) == 1


def test_openapi_metrics_and_health(seeded: Seeded, sessions: sessionmaker[Session]) -> None:
    with sessions() as session:  # a purged received study still counts, a purged prior not
        audit.record(session, "study.purged", study_uid="1.2.9", source="received")
        audit.record(session, "study.purged", study_uid="1.2.8", source="prior")
        session.commit()
    with running_console(seeded.settings, sessions) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/api/openapi.json").status_code == 401
        login(client, "vic")
        schema = client.get("/api/openapi.json").json()
        assert schema["info"]["title"] == "radraft console"
        assert {"/api/studies", "/api/studies/{study_uid}", "/api/deliveries/{delivery_id}/retry",
                "/api/rules", "/api/ed/{draft_id}/ack", "/api/queues"} <= set(schema["paths"])
        text = client.get("/metrics").text
        assert "radraft_studies_received_total 3.0" in text
        assert 'radraft_drafts_total{triage="critical"} 1.0' in text
        assert 'radraft_deliveries{destination="ris",state="failed"} 1.0' in text
        assert 'radraft_queue_depth{priority="urgent",state="queued"} 0.0' in text
        assert 'radraft_stage_latency_seconds{quantile="0.5",stage="frames"}' in text
        assert "radraft_alerts_unacknowledged 1.0" in text


class _Models(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/v1/models" and self.headers.get("Authorization") == "Bearer k"
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b'{"data": []}')

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def model_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_readyz_checks_database_broker_and_model(
    seeded: Seeded, sessions: sessionmaker[Session], model_endpoint: str,
) -> None:
    settings = seeded.settings.model_copy(update={"model": seeded.settings.model.model_copy(
        update={"backend": "openai", "base_urls": [model_endpoint],
                "api_key": SecretStr("k")})})
    with running_console(settings, sessions) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert set(ready.json()["checks"]) == {"database", "broker", "model"}
    dead_model = settings.model_copy(update={"model": settings.model.model_copy(
        update={"base_urls": [f"http://127.0.0.1:{free_port()}/v1"]})})
    checks = default_checks(dead_model, sessions)
    with running_console(dead_model, sessions) as client:
        degraded = client.get("/readyz")
        assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
        assert degraded.json()["checks"]["model"]["ok"] is False
    dead_broker = dead_model.model_copy(
        update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}//"})
    with running_console(dead_broker, sessions) as client:
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["checks"]["broker"]["ok"] is False
        assert down.json()["checks"]["database"]["ok"] is True
    assert checks["database"]() == "ok"

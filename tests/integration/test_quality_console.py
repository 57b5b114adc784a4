"""The console's Quality page, its JSON and the quality gauges, on a scored pair (real
console over uvicorn; SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from console_helpers import login, running_console, seed
from quality_helpers import final_oru, store_message
from sqlalchemy.orm import Session, sessionmaker

from radraft.worker.quality_pairing import score_accession

FINAL = ("FINDINGS: Hypodense liver lesion in segment VII with active hemorrhage.\n"
         "IMPRESSION: Hepatic hemorrhage, communicated to Dr Ray.")


def test_quality_page_api_and_gauges(sessions: sessionmaker[Session], tmp_path: Path,
                                     db_url: str) -> None:
    seeded = seed(sessions, tmp_path, db_url)
    with sessions() as session:
        store_message(session, final_oru("ACC-CON-1", FINAL, "CTRL-CON-1"))
        assert score_accession(session, seeded.settings, "ACC-CON-1") == 1
    with running_console(seeded.settings, sessions) as client:
        login(client, "vic")
        refused = client.get("/quality")
        assert refused.status_code == 403 and "admins only" in refused.text
        assert "/quality" not in client.get("/studies").text  # no link for a viewer
        client.cookies.clear()
        login(client, "alice")
        page = client.get("/quality")
        assert page.status_code == 200, page.text
        assert 'id="pair-count">1<' in page.text
        assert "too few to judge" in page.text and "<svg" in page.text
        assert "ACC-CON-1" in page.text and "communicated to Dr Ray" in page.text
        assert "ct-abdomen" in page.text  # the rule's evidence row
        data = client.get("/api/quality").json()
        assert data["pairs"] == 1
        assert data["overall"]["confusion"] == {"TP": 1, "FP": 0, "FN": 0, "TN": 0}
        [rule] = data["rules"]
        assert rule["rule"] == "ct-abdomen" and rule["mode"] == "live"
        assert not rule["ready"] and "too few to judge: 1 of 30 pairs" in rule["why"]
        assert client.get("/api/quality?mode=shadow").json()["pairs"] == 0
        metrics = client.get("/metrics").text
        assert 'radraft_quality_pairs{mode="live"} 1.0' in metrics
        assert 'radraft_quality_score{mode="live",score="triage_sensitivity"} 1.0' in metrics

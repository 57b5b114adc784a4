"""`viewer.url_template`: the study page links the study to the site's viewer, the ED board
links the key image and the viewer (a real uvicorn console, httpx)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from console_helpers import login, running_console, seed
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.settings import ViewerSettings

TEMPLATE = "https://viewer.example/viewer?StudyInstanceUIDs={study_uid}"


def test_viewer_and_key_image_links(sessions: sessionmaker[Session], tmp_path: Path,
                                    db_url: str) -> None:
    seeded = seed(sessions, tmp_path, db_url)
    settings = seeded.settings.model_copy(
        update={"viewer": ViewerSettings(url_template=TEMPLATE)})
    expected = TEMPLATE.format(study_uid=quote(seeded.drafted_uid, safe=""))
    with running_console(settings, sessions) as client:
        login(client, "ed1")
        [row] = client.get("/api/ed").json()
        assert row["key_image_url"] == f"/drafts/{seeded.draft_id}/frames/1.png"
        assert client.get(row["key_image_url"]).headers["content-type"] == "image/png"
        board = client.get("/ed").text
        assert f'href="{row["key_image_url"]}"' in board
        assert f'class="viewer" href="{expected.replace("&", "&amp;")}"' in board
        page = client.get(f"/studies/{seeded.drafted_uid}").text
        assert f'id="viewer-link" href="{expected}"' in page


def test_no_template_no_viewer_link(sessions: sessionmaker[Session], tmp_path: Path,
                                    db_url: str) -> None:
    seeded = seed(sessions, tmp_path, db_url)
    with running_console(seeded.settings, sessions) as client:
        login(client, "ed1")
        assert "viewer-link" not in client.get(f"/studies/{seeded.drafted_uid}").text
        assert 'class="viewer"' not in client.get("/ed").text

"""Orthanc (a real PACS) sends a generated multi-phase CT study to the node over REST."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.net import free_port
from node_helpers import ct_phase_study, node_settings, running_node
from orthanc import Modality, OrthancServer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance, Series, Study, StudyAnnouncement
from radraft.core.types import StudyStable

# Every test here runs on the fast receive path and on pynetdicom's stock one.
pytestmark = pytest.mark.usefixtures("receive_path")


def test_orthanc_sends_a_study_and_the_node_announces_it_once(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "study", slices=3)
    port = free_port()
    announced: list[StudyStable] = []
    settings = node_settings(tmp_path / "data", db_url, port, allowed_calling_aets=["ORTHANC"])
    with (
        running_node(settings, sessions, announced.append),
        OrthancServer(
            tmp_path / "orthanc", modalities={"radraft": Modality("RADRAFT", "127.0.0.1", port)}
        ) as pacs,
    ):
        for path in files:
            pacs.upload(path)
        [study_id] = pacs.find_studies()
        assert pacs.echo("radraft")
        pacs.store_to("radraft", [study_id])
        # The monitor announces about stable_seconds (1 s) after the last image.
        for _ in range(100):
            if announced:
                break
            time.sleep(0.1)
        study_uid = pacs.study_uid(study_id)

    assert [a.study_uid for a in announced] == [study_uid]
    stable = announced[0]
    assert stable.image_count == len(files) == stable.instance_count
    assert stable.calling_aet == "ORTHANC"
    with sessions() as session:
        study = session.scalars(select(Study)).one()
        assert study.study_uid == study_uid
        assert study.announced_version == stable.version
        assert len(session.scalars(select(Series)).all()) == 3
        assert all(Path(i.path).is_file() for i in session.scalars(select(Instance)))
        [row] = session.scalars(select(StudyAnnouncement)).all()
        assert row.version == stable.version

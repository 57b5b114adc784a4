"""Two receiving processes fed by the node's dispatcher, four concurrent associations."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.net import free_port
from node_helpers import ct_phase_study, node_settings, running_node, storescu
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance, Study
from radraft.core.types import StudyStable

# Every test here runs on the fast receive path and on pynetdicom's stock one.
pytestmark = pytest.mark.usefixtures("receive_path")


def test_concurrent_associations_over_two_processes(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A", "B", "C", "D"), slices=5)
    port = free_port()
    settings = node_settings(tmp_path / "d", db_url, port, receive_processes=2)
    announced: list[StudyStable] = []
    with running_node(settings, sessions, announced.append):
        chunks = [files[i::4] for i in range(4)]

        def send(chunk: list[Path]) -> list[int | None]:
            return [storescu(path, port).status for path in chunk]

        with ThreadPoolExecutor(4) as pool:
            statuses = [s for result in pool.map(send, chunks) for s in result]
        for _ in range(100):
            if announced:
                break
            time.sleep(0.1)
    assert statuses == [0x0000] * len(files)
    sops = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}
    with sessions() as session:
        rows = session.scalars(select(Instance)).all()
        study = session.scalars(select(Study)).one()
    assert {r.sop_uid for r in rows} == sops
    assert study.image_count == study.instance_count == len(files)  # no lost counter update
    assert len(announced) == 1 and announced[0].image_count == len(files)

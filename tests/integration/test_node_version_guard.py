"""With a pynetdicom other than the pinned one, the node starts on the stock receive path,
says so once, and stores as it always does."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pynetdicom
import pynetdicom.dimse_messages
import pytest
from helpers.net import free_port
from node_helpers import ct_phase_study, node_settings, running_node, storescu
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance
from radraft.dicom_node import fast


def test_another_pynetdicom_version_runs_the_stock_path_and_says_so_once(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    fast.uninstall()
    monkeypatch.setattr(pynetdicom, "__version__", "3.0.5")
    monkeypatch.setattr(fast, "_refusal_logged", False)
    monkeypatch.setenv("RADRAFT_DICOM__FAST_RECEIVE", "true")
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=2)
    caplog.set_level(logging.WARNING, logger="radraft.dicom_node.fast")
    for run, path in enumerate(files):  # two node starts in one process
        port = free_port()
        settings = node_settings(tmp_path / "d", db_url, port)
        assert settings.dicom.fast_receive
        with running_node(settings, sessions):
            assert not fast.installed()
            assert pynetdicom.dimse_messages.NamedTemporaryFile is (  # type: ignore[attr-defined]
                tempfile.NamedTemporaryFile)
            assert storescu(path, port).status == 0x0000, f"start {run + 1}"
    refusals = [r.getMessage() for r in caplog.records if "not installed" in r.getMessage()]
    assert refusals == ["DICOM fast receive path not installed: pynetdicom 3.0.5 (written for "
                        "3.0.4); using pynetdicom's stock receive path"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 2

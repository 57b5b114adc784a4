"""MPPS SCP end to end: pynetdicom's SCU sends the steps, dcmtk's storescu the images, a real
node on real sockets stores both and announces the study when its step says it is complete."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.net import free_port
from mpps_helpers import MppsScu, completed, step_dataset
from node_helpers import ct_phase_study, node_settings, running_node, storescu
from pydicom import dcmread
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, MppsInstance, MppsStep, Study
from radraft.core.types import Priority, StudyStable
from radraft.dicom_node.rules import RuleOutcome
from radraft.worker.jobs import create_jobs

STUDY_WAIT_S = 60.0


def _until(what: str, check: object, timeout: float = STUDY_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _send(files: list[Path], port: int) -> None:
    for path in files:
        assert storescu(path, port, calling="CT1").status == 0


def test_completed_step_announces_when_every_listed_image_arrived(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("ARTERIAL", "VENOUS"), slices=2)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    announced: list[StudyStable] = []
    # stable_seconds far away: only the step can make this study complete in the test.
    settings = node_settings(tmp_path / "data", db_url, free_port(), stable_seconds=3600)
    with running_node(settings, sessions, announced.append) as node:
        scu = MppsScu(node.port)
        status, step_uid = scu.create(step_dataset(study_uid))
        assert status == 0x0000
        _send(files[:-1], node.port)
        assert scu.set(step_uid, completed(files)) == 0x0000
        time.sleep(1.5)
        assert announced == []  # one listed image is still missing
        _send(files[-1:], node.port)
        _until("the study announced", lambda: len(announced) >= 1)
        assert announced[0].study_uid == study_uid and announced[0].image_count == 4
        # A second COMPLETED: the step may no longer be updated (PS3.4 F.7.2.2.2).
        assert scu.set(step_uid, completed(files)) == 0x0110
        assert scu.create(step_dataset(study_uid), step_uid)[0] == 0x0111
        assert scu.set(generate_uid(), completed(files)) == 0x0112
        assert scu.create(step_dataset(study_uid, status="COMPLETED"))[0] == 0x0106
        no_study = step_dataset(study_uid)
        del no_study.ScheduledStepAttributesSequence[0].StudyInstanceUID
        assert scu.create(no_study)[0] == 0x0120
        bad_status = completed(files, status="FINISHED")
        assert scu.set(scu.create(step_dataset(study_uid))[1], bad_status) == 0x0106
        scu.close()
        time.sleep(1.0)
    assert len(announced) == 1
    with sessions() as session:
        step = session.scalars(select(MppsStep).where(MppsStep.sop_uid == step_uid)).one()
        assert step.status == "COMPLETED" and step.settle_note == "complete"
        assert step.calling_aet == "CT1" and step.final_at is not None
        listed = session.scalars(select(MppsInstance.sop_uid).where(
            MppsInstance.step_id == step.id)).all()
        assert len(listed) == 4


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_restart_between_n_create_and_n_set_loses_nothing(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("VENOUS",), slices=3)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    announced: list[StudyStable] = []
    # stable_seconds short: without the stored step the timer would announce at once.
    settings = node_settings(tmp_path / "data", db_url, free_port(), stable_seconds=0.5)
    with running_node(settings, sessions, announced.append) as node:
        scu = MppsScu(node.port)
        status, step_uid = scu.create(step_dataset(study_uid))
        assert status == 0x0000
        scu.close()
        _send(files, node.port)
    with running_node(settings, sessions, announced.append) as node:
        time.sleep(2.0)
        assert announced == []  # held by the step stored before the restart
        scu = MppsScu(node.port)
        assert scu.set(step_uid, completed(files)) == 0x0000
        scu.close()
        _until("the study announced after the restart", lambda: len(announced) >= 1)
        time.sleep(1.0)  # the timer is due too: it must find the version announced
    assert len(announced) == 1 and announced[0].image_count == 3


def test_two_steps_and_missing_instances_reported(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A", "B"), slices=2)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    announced: list[StudyStable] = []
    settings = node_settings(tmp_path / "data", db_url, free_port(), stable_seconds=3600,
                             mpps_instances_timeout_s=2.0)
    with running_node(settings, sessions, announced.append) as node:
        scu = MppsScu(node.port)
        _, first = scu.create(step_dataset(study_uid))
        _, second = scu.create(step_dataset(study_uid))  # a rescan, a second modality ...
        _send(files[:3], node.port)
        assert scu.set(first, completed(files[:2])) == 0x0000
        time.sleep(1.5)
        assert announced == []  # the second step is still IN PROGRESS
        # It lists an image that never comes: reported after the timeout, not waited on.
        assert scu.set(second, completed(files[2:])) == 0x0000
        _until("the study announced despite a missing image", lambda: len(announced) >= 1)
        scu.close()
    assert announced[0].image_count == 3
    with sessions() as session:
        study = session.scalars(select(Study).where(Study.study_uid == study_uid)).one()
        assert "1 listed instance(s) never received" in study.admin_flag
        kinds = session.scalars(select(AuditEvent.kind).where(
            AuditEvent.study_uid == study_uid)).all()
        assert "mpps.instances_missing" in kinds


def test_discontinued_step_follows_the_rules_on_discontinued(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=2)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    announced: list[StudyStable] = []
    settings = node_settings(tmp_path / "data", db_url, free_port(), stable_seconds=3600)
    with running_node(settings, sessions, announced.append) as node:
        scu = MppsScu(node.port)
        _, step_uid = scu.create(step_dataset(study_uid))
        _send(files, node.port)
        # CID 9300: 110514 "Incorrect worklist entry selected"
        mods = completed(files, status="DISCONTINUED",
                         reason=("110514", "Incorrect worklist entry selected"))
        assert scu.set(step_uid, mods) == 0x0000
        scu.close()
        _until("the discontinued study announced", lambda: len(announced) >= 1)
    with sessions() as session:
        step = session.scalars(select(MppsStep).where(MppsStep.sop_uid == step_uid)).one()
        assert (step.discontinued_code, step.discontinued_meaning) == (
            "DCM:110514", "Incorrect worklist entry selected")
        ignore = RuleOutcome("ct", "draft", profile="ct-generic", priority=Priority.URGENT)
        assert create_jobs(session, settings, announced[0], [ignore]) == []
        skipped = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "job.skipped")).one()
        assert skipped.details["code"] == "DCM:110514"
        draft = RuleOutcome("ct-d", "draft", profile="ct-generic", priority=Priority.URGENT,
                            on_discontinued="draft")
        assert len(create_jobs(session, settings, announced[0], [draft])) == 1


def test_step_never_ended_is_reported_and_the_timer_decides(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=2)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    announced: list[StudyStable] = []
    settings = node_settings(tmp_path / "data", db_url, free_port(), stable_seconds=0.5,
                             mpps_in_progress_timeout_s=2.0, receive_processes=2)
    with running_node(settings, sessions, announced.append) as node:
        scu = MppsScu(node.port)  # served by one of two receiving processes
        status, step_uid = scu.create(step_dataset(study_uid))
        assert status == 0x0000
        scu.close()
        _send(files, node.port)
        _until("the study announced by the timer", lambda: len(announced) >= 1)
    with sessions() as session:
        step = session.scalars(select(MppsStep).where(MppsStep.sop_uid == step_uid)).one()
        assert step.status == "IN PROGRESS" and step.settled_at is not None
        kinds = session.scalars(select(AuditEvent.kind).where(
            AuditEvent.study_uid == study_uid)).all()
        assert "mpps.no_final_state" in kinds and "study.stable" in kinds

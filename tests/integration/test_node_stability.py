"""Study stability: once per version, not moved by re-sends, late SRs or radraft's own outputs."""

from __future__ import annotations

import time
from pathlib import Path

from node_helpers import ct_phase_study
from pydicom import dcmread
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Study, StudyAnnouncement
from radraft.core.types import StudyStable
from radraft.core.uids import derived_uid
from radraft.dicom_node.header.reading import read_stored_header
from radraft.dicom_node.stability import StabilityMonitor
from radraft.dicom_node.storage.index import begin_write, index_instance

UID_ROOT = "1.2.826.0.1.3680043.10.999"
STABLE_S = 0.3


def _index(sessions: sessionmaker[Session], path: Path) -> None:
    header = read_stored_header(path)
    with sessions() as session:
        begin_write(session)
        index_instance(session, header, path, path.stat().st_size, calling_aet="CT1",
                       uid_root=UID_ROOT)
        session.commit()


def _derived(source: Path, target: Path, **changes: object) -> Path:
    ds = dcmread(source)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(target, enforce_file_format=True)
    return target


def _settle(monitor: StabilityMonitor) -> list[StudyStable]:
    time.sleep(STABLE_S + 0.2)  # past the stability window on the database clock
    return monitor.check_once()


def test_announced_once_per_version(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A", "B"), slices=2)
    announced: list[StudyStable] = []
    monitor = StabilityMonitor(sessions, announced.append, stable_seconds=STABLE_S)
    for path in files:
        _index(sessions, path)
    assert monitor.check_once() == []  # still inside the window
    [first] = _settle(monitor)
    assert first.image_count == 4 and first.calling_aet == "CT1"
    assert _settle(monitor) == []

    # Re-send of a known instance, a late dose SR, radraft's own SR: version unchanged.
    _index(sessions, files[0])
    _index(sessions, _derived(files[0], tmp_path / "dose.dcm", SOPInstanceUID=generate_uid(),
                              SOPClassUID="1.2.840.10008.5.1.4.1.1.88.67", Modality="SR",
                              SeriesInstanceUID=generate_uid()))
    own = derived_uid(UID_ROOT, "test", "sr")
    _index(sessions, _derived(files[0], tmp_path / "own.dcm", SOPInstanceUID=own,
                              SOPClassUID="1.2.840.10008.5.1.4.1.1.88.22", Modality="SR",
                              Manufacturer="radraft", SeriesInstanceUID=generate_uid()))
    assert _settle(monitor) == []

    # A new image changes the version: announced again, once.
    _index(sessions, _derived(files[0], tmp_path / "new.dcm", SOPInstanceUID=generate_uid()))
    [second] = _settle(monitor)
    assert second.version != first.version and second.image_count == 5
    assert second.instance_count == 7
    assert _settle(monitor) == []
    with sessions() as session:
        rows = session.scalars(select(StudyAnnouncement).order_by(StudyAnnouncement.id)).all()
        assert [r.version for r in rows] == [first.version, second.version]
        duplicates = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "instance.duplicate")
        ).all()
        assert len(duplicates) == 1


def test_timers_survive_a_restart(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """The state is in the database: a new monitor (a restarted node) picks up where it was."""
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=2)
    for path in files:
        _index(sessions, path)
    before_restart: list[StudyStable] = []
    StabilityMonitor(sessions, before_restart.append, stable_seconds=STABLE_S).check_once()
    assert before_restart == []
    after_restart: list[StudyStable] = []
    monitor = StabilityMonitor(sessions, after_restart.append, stable_seconds=STABLE_S)
    assert len(_settle(monitor)) == 1
    again: list[StudyStable] = []
    assert _settle(StabilityMonitor(sessions, again.append, stable_seconds=STABLE_S)) == []


def test_a_failing_callback_is_retried(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    files = ct_phase_study(tmp_path / "s", phases=("A",), slices=1)
    _index(sessions, files[0])
    calls: list[str] = []

    def flaky(stable: StudyStable) -> None:
        calls.append(stable.version)
        if len(calls) == 1:
            raise ConnectionError("broker down")

    monitor = StabilityMonitor(sessions, flaky, stable_seconds=STABLE_S)
    assert _settle(monitor) == []
    assert len(monitor.check_once()) == 1
    assert len(calls) == 2 and calls[0] == calls[1]
    with sessions() as session:
        study = session.scalars(select(Study)).one()
        assert study.announced_version == calls[0]

"""Durability: the order fsync -> rename -> dir fsync -> commit -> response, and SIGKILL crashes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.net import free_port, wait_port
from node_helpers import ct_phase_study, node_settings, running_node
from pydicom import dcmread
from pynetdicom import AE
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance
from radraft.dicom_node.storage import files as storage

# Every test here runs on the fast receive path and on pynetdicom's stock one.
pytestmark = pytest.mark.usefixtures("receive_path")

CT = "1.2.840.10008.5.1.4.1.1.2"


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_response_follows_fsync_rename_dirsync_commit(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Instrument the real calls and fail if a response precedes any durable step."""
    files = ct_phase_study(tmp_path / "study", phases=("A", "B"), slices=3)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(kind: str, detail: str) -> None:
        with lock:
            events.append((kind, detail))

    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        path = _fd_path(fd)
        real_fsync(fd)
        record("dirsync" if os.path.isdir(path) else "fsync", path)

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        record("rename", f"{src} -> {dst}")

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "replace", replace)
    port = free_port()
    with running_node(node_settings(tmp_path / "data", db_url, port), sessions) as node:
        # The receiver indexes through its own engine (see Receiver).
        assert node._receiver is not None
        event.listen(node._receiver.engine, "commit", lambda _conn: record("commit", ""))
        ae = AE(ae_title="ORDERTEST")
        ae.add_requested_context(CT, "1.2.840.10008.1.2.1")
        assoc = ae.associate("127.0.0.1", port, ae_title="RADRAFT")
        assert assoc.is_established
        for path in files:
            ds = dcmread(path)
            status = assoc.send_c_store(ds)
            assert status.Status == 0x0000
            record("response", str(ds.SOPInstanceUID))
        assoc.release()

    responses = [i for i, (kind, _) in enumerate(events) if kind == "response"]
    assert len(responses) == len(files)
    start = 0
    for end in responses:
        sop = events[end][1]
        window = events[start:end]
        start = end + 1
        renames = [
            i for i, (k, d) in enumerate(window) if k == "rename" and d.endswith(sop + ".dcm")
        ]
        assert len(renames) == 1, f"{sop}: no rename into the store before its response"
        r = renames[0]
        src, dst = window[r][1].split(" -> ")
        fsyncs = [i for i, (k, d) in enumerate(window[:r]) if k == "fsync" and d == src]
        assert fsyncs, f"{sop}: the file was not fsynced before its rename"
        dirsyncs = [i for i, (k, d) in enumerate(window) if k == "dirsync"
                    and d == str(Path(dst).parent) and i > r]
        assert dirsyncs, f"{sop}: the directory was not fsynced after the rename"
        commits = [i for i, (k, _) in enumerate(window) if k == "commit" and i > dirsyncs[0]]
        assert commits, f"{sop}: the index row was not committed before the response"
    # And the rows are really there.
    with sessions() as session:
        assert len(session.scalars(select(Instance)).all()) == len(files)


# --- SIGKILL crash test ------------------------------------------------------------------


def _start_serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    radraft = Path(sys.executable).parent / "radraft"
    return subprocess.Popen(
        [str(radraft), "--config", str(config), "serve"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def _send_until_dropped(port: int, datasets: list[Any], acked: set[str]) -> None:
    """Send every not-yet-acknowledged dataset; stop quietly when the node dies."""
    ae = AE(ae_title="CRASHTEST")
    ae.add_requested_context(CT, "1.2.840.10008.1.2.1")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="RADRAFT")
    if not assoc.is_established:
        return
    for ds in datasets:
        sop = str(ds.SOPInstanceUID)
        if sop in acked:
            continue
        status = assoc.send_c_store(ds)
        if not assoc.is_established or "Status" not in status:
            return  # killed mid-transfer: no response, so no promise was made
        if status.Status == 0x0000:
            acked.add(sop)
    assoc.release()


@pytest.mark.slow
def test_every_acknowledged_instance_survives_sigkill(tmp_path: Path, db_url: str) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    files = ct_phase_study(tmp_path / "study", phases=("A", "B", "C"), slices=200, size=16)
    datasets = [dcmread(p) for p in files]
    port = free_port()
    data_dir = tmp_path / "data"
    config = tmp_path / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(data_dir), "database_url": db_url,
        "dicom": {"port": port, "host": "127.0.0.1", "stable_seconds": 3600,
                  "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": free_port()},  # serve starts the HL7 listener too
        "web": {"port": free_port()},  # and the console: never a port another test holds
    }))
    log = tmp_path / "serve.log"
    acked: set[str] = set()
    spawned: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        spawned.append(_start_serve(config, log))
        wait_port(port, process=spawned[-1])
        return spawned[-1]

    kills = 0
    try:
        while kills < 5 and len(acked) < len(datasets):
            process = start()
            sender = threading.Thread(target=_send_until_dropped, args=(port, datasets, acked))
            sender.start()
            time.sleep(rng.uniform(0.05, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            sender.join(60)
            assert not sender.is_alive()
        assert kills >= 5, f"seed {seed}: the transfer finished before 5 kills"
        # Finish the transfer, restart once more so repair runs; stop cleanly each time.
        for finish in (True, False):
            process = start()
            if finish:
                _send_until_dropped(port, datasets, acked)
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, log.read_text()[-3000:]
    finally:
        for leftover in spawned:
            if leftover.poll() is None:
                leftover.kill()
                leftover.wait()

    assert len(acked) == len(datasets), f"seed {seed}"
    from radraft.core.db import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        rows = {i.sop_uid: Path(i.path) for i in session.scalars(select(Instance))}
    engine.dispose()
    missing = acked - set(rows)
    assert not missing, f"seed {seed}: acknowledged but not indexed: {sorted(missing)[:3]}"
    for sop in acked:
        assert str(dcmread(rows[sop]).SOPInstanceUID) == sop
    on_disk = {p.stem for p in (data_dir / "dicom").rglob("*.dcm")}
    assert on_disk == set(rows), f"seed {seed}: store and index disagree after repair"

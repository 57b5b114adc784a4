"""The servers `bench.ingest` sends to, each on a free port: radraft (fast or stock receive
path), dcmtk storescp and Orthanc. Each yields (port, pid, AE title)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ENV = dict(os.environ, TCP_NODELAY="1")
STORESCP = "/usr/bin/storescp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@contextmanager
def radraft_server(work: Path, processes: int, fast: bool) -> Iterator[tuple[int, int, str]]:
    port = free_port()
    config = work / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(work / "radraft"),
        "dicom": {"port": port, "host": "127.0.0.1", "stable_seconds": 3600,
                  "min_free_bytes": 0, "receive_processes": processes, "fast_receive": fast},
    }))
    radraft = Path(sys.executable).parent / "radraft"
    process = subprocess.Popen([str(radraft), "--config", str(config), "serve"], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.5 if processes == 1 else 2.0)  # every receiving process listening
        yield port, process.pid, "RADRAFT"
    finally:
        process.terminate()
        process.wait(60)


@contextmanager
def storescp_server(work: Path) -> Iterator[tuple[int, int, str]]:
    port = free_port()
    out = work / "storescp"
    out.mkdir()
    process = subprocess.Popen(
        [STORESCP, "+xa", "--fork", "-pdu", "131072", "-od", str(out), str(port)], env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port, process.pid, "STORESCP"
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def orthanc_server(work: Path) -> Iterator[tuple[int, int, str]]:
    from tests.orthanc import OrthancServer

    server = OrthancServer(work / "orthanc", extra_config={"MaximumPduLength": 131072})
    server.start()
    try:
        assert server.process is not None
        yield server.dicom_port, server.process.pid, "ORTHANC"
    finally:
        server.stop()

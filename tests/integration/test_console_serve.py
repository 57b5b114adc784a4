"""The console inside `radraft serve`, `radraft user add`, the worker heartbeat, and the
0002 migration going down and up again (SQLite, PostgreSQL)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from alembic import command
from helpers.net import free_port
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from radraft.core.db import User, WorkerHeartbeat, make_engine
from radraft.core.db.migrate import alembic_config, upgrade
from radraft.core.errors import ConfigError
from radraft.core.settings import Settings
from radraft.worker.cli.main import app
from radraft.worker.console import ConsoleServer
from radraft.worker.heartbeat import Heartbeat

RADRAFT = str(Path(sys.executable).parent / "radraft")


def _config(tmp: Path, db_url: str, web_port: int) -> Path:
    config = tmp / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp / "data"), "database_url": db_url,
        "dicom": {"host": "127.0.0.1", "port": free_port(), "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "web": {"host": "127.0.0.1", "port": web_port},
    }))
    return config


def _cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([RADRAFT, "--config", str(config), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_user_add_list_remove(tmp_path: Path, db_url: str,
                              sessions: sessionmaker[Session]) -> None:
    """In-process through typer's runner (the serve test below runs the real executable)."""
    config = _config(tmp_path, db_url, free_port())
    runner = CliRunner()

    def cli(*args: str, stdin: str = "") -> Result:
        return runner.invoke(app, ["--config", str(config), *args], input=stdin)

    added = cli("user", "add", "dr.ops", "--role", "admin", "--password-stdin",
                stdin="a long enough secret\n")
    assert added.exit_code == 0, added.output
    assert "user dr.ops added (admin)" in added.output
    with sessions() as session:
        user = session.scalars(select(User).where(User.username == "dr.ops")).one()
        assert user.password_hash.startswith("$argon2id$")
        assert "secret" not in user.password_hash
    # Prompted twice, not echoed.
    prompted = cli("user", "add", "ed.nurse", "--role", "ed",
                   stdin="prompted secret 1\nprompted secret 1\n")
    assert prompted.exit_code == 0 and "prompted secret" not in prompted.output
    for args, stdin, error in (
        (("user", "add", "dr.ops", "--role", "viewer"), "another long secret\n", "exists"),
        (("user", "add", "x", "--role", "root"), "another long secret\n", "unknown role"),
        (("user", "add", "y", "--role", "ed"), "short\n", "at least 10"),
    ):
        refused = cli(*args, "--password-stdin", stdin=stdin)
        assert refused.exit_code == 1 and error in refused.output
    listed = cli("user", "list").output.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["dr.ops", "admin"], ["ed.nurse", "ed"]]
    assert cli("user", "remove", "dr.ops").exit_code == 0
    assert cli("user", "remove", "dr.ops").exit_code == 1


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer; {log.read_text()[-3000:]}")


def test_radraft_serve_serves_the_console_and_stops_cleanly(
    tmp_path: Path, db_url: str,
) -> None:
    port = free_port()
    config = _config(tmp_path, db_url, port)
    assert _cli(config, "user", "add", "vic", "--role", "viewer", "--password-stdin",
                stdin="viewer password\n").returncode == 0
    log = tmp_path / "serve.log"
    process = subprocess.Popen([RADRAFT, "--config", str(config), "serve"],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/healthz", process, log)
        with httpx.Client(base_url=base) as client:
            assert client.get("/studies").status_code == 303
            assert client.post("/api/login", json={"username": "vic",
                                                   "password": "viewer password"}
                               ).status_code == 200
            page = client.get("/studies")
            assert page.status_code == 200 and "No study matches." in page.text
            assert client.get("/readyz").json()["checks"]["database"]["ok"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "started web-console" in text and "stopped web-console" in text
    assert "started ed-escalation" in text


def test_a_taken_port_fails_loudly(tmp_path: Path, db_url: str,
                                   sessions: sessionmaker[Session]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(data_dir=tmp_path / "data", database_url=db_url,
                            broker_url="memory://", web={"host": "127.0.0.1", "port": port})
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} cannot listen"):
            ConsoleServer(settings, sessions).start()
        served = _cli(_config(tmp_path, db_url, port), "serve")
        assert served.returncode != 0
        assert f"web console on 127.0.0.1:{port} cannot listen" in served.stderr


def test_heartbeat_rows_come_and_go(sessions: sessionmaker[Session]) -> None:
    beat = Heartbeat(sessions, "stat", worker_name="host-b:7", interval_s=0.05)
    beat.start()
    try:
        deadline = time.monotonic() + 10
        seen: list[WorkerHeartbeat] = []
        while time.monotonic() < deadline and len(seen) < 1:
            with sessions() as session:
                seen = list(session.scalars(select(WorkerHeartbeat)))
            time.sleep(0.05)
        [row] = seen
        assert (row.name, row.queues) == ("host-b:7", "stat")
    finally:
        beat.stop()
    with sessions() as session:
        assert session.scalars(select(WorkerHeartbeat)).all() == []


def test_migration_0002_down_and_up(db_url: str) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "0001")
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert not {"web_session", "draft_image", "worker_heartbeat"} & tables
        assert "app_user" in tables
        engine.dispose()
        upgrade(db_url)
        tables = set(inspect(engine).get_table_names())
        assert {"web_session", "draft_image", "worker_heartbeat"} <= tables
    finally:
        engine.dispose()

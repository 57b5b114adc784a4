"""RabbitMQ restarted while the worker is idle: the next wake-up is handled without a
manual step. The broker is a private RabbitMQ node on free ports (never the shared one)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.net import free_port
from helpers.processes import stop_process
from sqlalchemy.orm import Session, sessionmaker
from test_worker_celery import _config, _outbox, _start_worker, _storescp, _wait_states

from radraft.core.settings import load_settings
from radraft.worker.celery_app import make_celery
from radraft.worker.enqueue import WakeUp, celery_enqueue


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of its own (own name, ports, data folder), restartable in place."""

    folder: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "plugins").write_text("[].\n")
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        shutil.chown(self.folder, "rabbitmq")
        for path in self.folder.rglob("*"):
            shutil.chown(path, "rabbitmq")
        env = dict(
            os.environ, RABBITMQ_CONFIG_FILE=str(self.folder / "rabbitmq.conf"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.folder / "mnesia"),
            RABBITMQ_FEATURE_FLAGS_FILE=str(self.folder / "feature_flags"),
            RABBITMQ_LOG_BASE=str(self.folder / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.folder / "plugins"),
        )
        self.process = subprocess.Popen(
            ["/usr/sbin/rabbitmq-server"], env=env, start_new_session=True, cwd=self.folder,
            stdout=(self.folder / "server.out").open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"RabbitMQ did not start: {self.folder / 'server.out'}")

    @property
    def node(self) -> str:
        return f"radraft{self.port}@localhost"

    def stop(self) -> None:
        # rabbitmq-server re-executes itself as user rabbitmq in a session of its own: stop
        # the node through rabbitmqctl (waits until its OS process is gone).
        subprocess.run(["/usr/sbin/rabbitmqctl", "-q", "-n", self.node, "shutdown"],
                       check=False, timeout=120, capture_output=True)
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"RabbitMQ on port {self.port} is still answering after stop")


@pytest.fixture
def rabbit() -> Iterator[PrivateRabbit]:
    # Not under pytest's tmp_path: RabbitMQ runs as user rabbitmq, which cannot enter it.
    folder = Path(tempfile.mkdtemp(prefix="radraft-rabbit-"))
    node = PrivateRabbit(folder)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_broker_restart_while_idle(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path, rabbit: PrivateRabbit,
) -> None:
    pacs_port = free_port()
    pacs = _storescp(pacs_port, tmp_path / "pacs")
    config = _config(tmp_path, db_url, f"amqp://guest:guest@127.0.0.1:{rabbit.port}//",
                     pacs_port)
    settings = load_settings(config)
    worker = _start_worker(config, tmp_path)
    try:
        first = _outbox(sessions, config, tmp_path)
        for row_id in first:
            celery_enqueue(make_celery(settings))(WakeUp("delivery", row_id, 0))
        _wait_states(sessions, first, tmp_path)
        rabbit.stop()
        time.sleep(2)
        rabbit.start()
        # The next draft's outbox after the restart: the worker consumes it by itself.
        second = _outbox(sessions, config, tmp_path, version="v2")
        app = make_celery(settings)
        for row_id in second:
            celery_enqueue(app)(WakeUp("delivery", row_id, 0))
        _wait_states(sessions, second, tmp_path, timeout=120)
    finally:
        stop_process(worker)
        pacs.terminate()
        pacs.wait(10)

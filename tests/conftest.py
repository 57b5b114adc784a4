"""Shared fixtures: real databases (SQLite and PostgreSQL), RabbitMQ virtual hosts, models.

Tests never import this module: helpers live in the `helpers` package (tests/helpers).
PostgreSQL's driver (psycopg) is imported only by the fixtures that create PostgreSQL
databases, so the unit tests run where it is not installed."""

from __future__ import annotations

import itertools
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers.data import DATA, DICOM_DATA, HL7_DATA
from helpers.net import free_port
from helpers.processes import stop_process
from helpers.waiting import wait_for
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade

if TYPE_CHECKING:
    from psycopg import sql

# Re-exported for tests written before tests/helpers existed (new tests import helpers.*).
__all__ = ["DATA", "DICOM_DATA", "HL7_DATA", "free_port", "stop_process", "wait_for"]

ARTIFACTS = Path(__file__).parent / "artifacts"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
PG_ADMIN = os.environ.get("RADRAFT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

_counter = itertools.count()


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def _pg_admin(statement: sql.Composable) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test copies (CREATE DATABASE ... TEMPLATE)."""
    from psycopg import sql

    name = f"radraft_tpl_{os.getpid()}"
    _pg_admin(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    _pg_admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    upgrade(_pg_url(name))
    yield name
    _pg_admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database URL: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'radraft.db'}"
        upgrade(url)
        yield url
        return
    from psycopg import sql

    template = request.getfixturevalue("pg_template")
    name = f"radraft_t_{os.getpid()}_{next(_counter)}"
    _pg_admin(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    )
    yield _pg_url(name)
    _pg_admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own: queues of other tests never mix with ours."""
    name = f"radraft-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([RABBITMQCTL, "-q", "add_vhost", name], check=True, timeout=60)
    subprocess.run([RABBITMQCTL, "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
                   check=True, timeout=60)
    yield name
    subprocess.run([RABBITMQCTL, "-q", "delete_vhost", name], check=False, timeout=60)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Qwen2.5-VL model, built once per test session."""
    from radraft.reporting.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def model_serve(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`radraft model serve` over the tiny model, one per test session."""
    from model_servers import start_model_serve

    server = start_model_serve(tiny_model, tmp_path_factory.mktemp("model-serve"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _vllm_holder(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from model_servers import VllmHolder

    holder = VllmHolder(tiny_model, tmp_path_factory.mktemp("vllm"))
    yield holder
    holder.stop()


@pytest.fixture
def vllm_server(_vllm_holder: Any) -> Any:
    """The real vLLM server (its own venv, `make vllm-venv`) over the tiny model: started
    once per session, and again after a test that had to stop it (one vLLM at a time)."""
    return _vllm_holder.running()


@pytest.fixture(params=["fast", "stock"])
def receive_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a node test on both receive paths: the fast one (dicom_node/fast) and
    pynetdicom's stock one (`dicom.fast_receive` off), through the environment so that
    nodes started in subprocesses get the same."""
    fast = request.param == "fast"
    monkeypatch.setenv("RADRAFT_DICOM__FAST_RECEIVE", "true" if fast else "false")
    return str(request.param)

"""No silent placeholder secrets (issue 25, item 7): compose refuses to start without the
passwords, and radraft refuses the placeholder `change-me` naming the key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from radraft.core.errors import ConfigError
from radraft.core.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = ["/usr/bin/docker-compose", "-f", str(REPO / "deploy" / "compose.yaml"), "config"]
SECRETS = {"RADRAFT_DB_PASSWORD": "db-secret-1", "RADRAFT_RABBITMQ_PASSWORD": "mq-secret-1",
           "RADRAFT_WEB_SECRET": "web-secret-1"}


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(COMPOSE, capture_output=True, text=True, timeout=120, check=False,
                          env={**clean, **env}, cwd=REPO)


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    done = _compose({k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr


def test_compose_uses_the_given_secrets_and_no_placeholder() -> None:
    done = _compose(SECRETS)
    assert done.returncode == 0, done.stderr
    assert "change-me" not in done.stdout and "db-secret-1" in done.stdout


@pytest.mark.parametrize(("env", "key"), [
    ({"RADRAFT_WEB__SECRET_KEY": "change-me"}, "web.secret_key"),
    ({"RADRAFT_MODEL__API_KEY": "change-me"}, "model.api_key"),
    ({"RADRAFT_DATABASE_URL": "postgresql+psycopg://radraft:change-me@db:5432/radraft"},
     "database_url"),
    ({"RADRAFT_BROKER_URL": "amqp://radraft:change-me@mq:5672//"}, "broker_url"),
])
def test_radraft_refuses_the_placeholder_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], key: str,
) -> None:
    config = tmp_path / "radraft.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{key}: .*placeholder 'change-me'"):
        load_settings(config)

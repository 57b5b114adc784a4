"""deploy/: the compose file, Kubernetes manifests and systemd units validate with the real
tools, and the example config and rules load with radraft's own loaders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from radraft.core.settings import load_settings
from radraft.dicom_node.rules import load_rules
from radraft.worker.cli.main import app

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = Path(sys.executable).parent


SECRETS = {"RADRAFT_DB_PASSWORD": "db-secret-1", "RADRAFT_RABBITMQ_PASSWORD": "mq-secret-1",
           "RADRAFT_WEB_SECRET": "web-secret-1"}


def _run(*argv: str, cwd: Path = REPO,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
                          env=env)


def _compose() -> dict[str, Any]:
    result = _run("/usr/bin/docker-compose", "-f", str(DEPLOY / "compose.yaml"), "config",
                  env={**os.environ, **SECRETS})
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def test_compose_config_is_valid_and_has_every_role() -> None:
    services = _compose()["services"]
    assert {"postgres", "rabbitmq", "node", "worker", "worker-stat", "vllm"} <= set(services)
    assert services["worker-stat"]["command"][:3] == ["worker", "--queues", "stat"]
    assert "stat" not in services["worker"]["command"][2]
    vllm_args = " ".join(services["vllm"]["command"])
    assert '--media-io-kwargs={"video":{"num_frames":-1}}' in vllm_args
    assert '"backend":"guidance"' in vllm_args
    assert "--max-model-len=" in vllm_args
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    # Node and workers share the one data volume at the same path (storage contract).
    # docker-compose 1.x prints short "source:target:mode" volumes, 2.x mappings.
    mounts = {name: [v["target"] if isinstance(v, dict) else v.split(":")[1]
                     for v in services[name]["volumes"]]
              for name in ("node", "worker", "worker-stat")}
    assert all("/var/lib/radraft" in targets for targets in mounts.values())


def test_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  node:\n    image: radraft\n    ports: 11112\n")
    result = _run("/usr/bin/docker-compose", "-f", str(broken), "config", "-q")
    assert result.returncode != 0


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_manifests_validate_strictly() -> None:
    files = sorted(str(p) for p in (DEPLOY / "k8s").glob("*.yaml"))
    result = _run(str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _k8s_docs()}
    assert ("StatefulSet", "radraft-node") in kinds
    assert ("Deployment", "radraft-worker") in kinds
    assert ("Deployment", "radraft-worker-stat") in kinds
    assert ("Ingress", "radraft-console") in kinds
    assert ("ConfigMap", "radraft-config") in kinds
    assert ("Secret", "radraft-secrets") in kinds


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
                   "spec: {ports: [{port: 1}], replicas: 3}\n")
    result = _run(str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", str(bad))
    assert result.returncode != 0


def _by_name(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_kubernetes_node_probes_ports_and_gpu_requests() -> None:
    node = _by_name("StatefulSet", "radraft-node")["spec"]["template"]["spec"]["containers"][0]
    assert node["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert node["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service_ports = {p["name"] for p in _by_name("Service", "radraft-node")["spec"]["ports"]}
    assert service_ports == {"dicom", "mllp"}
    vllm = _by_name("Deployment", "vllm-0")["spec"]["template"]["spec"]["containers"][0]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert '--media-io-kwargs={"video":{"num_frames":-1}}' in vllm["args"]


def test_configmap_carries_the_example_config_verbatim() -> None:
    data = _by_name("ConfigMap", "radraft-config")["data"]
    assert data["radraft.yaml"] == (DEPLOY / "radraft.yaml").read_text()
    assert data["rules.yaml"] == (DEPLOY / "rules.yaml").read_text()


def test_example_config_base_urls_name_the_vllm_services() -> None:
    settings = load_settings(DEPLOY / "radraft.yaml")
    services = {d["metadata"]["name"] for d in _k8s_docs() if d["kind"] == "Service"}
    for url in settings.model.base_urls:
        host = url.split("//", 1)[1].split(".", 1)[0]
        assert host in services, url


def test_systemd_units_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point the units at this checkout's radraft.
    units = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text().replace("/opt/radraft/venv/bin/radraft", str(VENV_BIN / "radraft"))
        (tmp_path / unit.name).write_text(text)
        units.append(unit.name)
    assert "radraft-worker@.service" in units and "radraft-node.service" in units
    shutil.copy(tmp_path / "radraft-worker@.service", tmp_path / "radraft-worker@1.service")
    result = _run("/usr/bin/systemd-analyze", "verify", "--man=no", *units,
                  "radraft-worker@1.service", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unknown key" not in result.stderr


def test_example_config_and_rules_load() -> None:
    settings = load_settings(DEPLOY / "radraft.yaml")
    assert settings.model.backend == "openai"
    assert len(settings.model.base_urls) >= 2
    assert settings.rules_file == DEPLOY / "rules.yaml"
    rules = load_rules(settings.rules_file, timezone=settings.site.timezone,
                       profiles=settings.profiles, destinations=settings.destinations)
    drafted = [r for r in rules.rules if r.action == "draft"]
    assert drafted and all(r.profile in settings.profiles for r in drafted)
    assert any(r.priority.value == "stat" for r in drafted)


def _commands_in_deploy_files() -> list[list[str]]:
    services = _compose()["services"]
    commands = [services[n]["command"] for n in ("node", "worker", "worker-stat", "migrate")]
    for doc in _k8s_docs():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            pod = doc["spec"]["template"]["spec"]
            commands += [c["args"] for c in pod.get("initContainers", []) + pod["containers"]
                         if c["image"].startswith("radraft")]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                argv = line.split("=", 1)[1].split()[1:]
                commands.append([a.replace("%i", "1").replace("%H", "host") for a in argv])
    return commands


def test_every_radraft_command_in_deploy_files_parses() -> None:
    commands = _commands_in_deploy_files()
    assert len(commands) >= 8
    runner = CliRunner()
    for argv in commands:
        # --help after the real options: typer parses (and rejects unknown options) first.
        result = runner.invoke(app, [*argv, "--help"])
        assert result.exit_code == 0, (argv, result.output)


JSON_FLAGS = ("--media-io-kwargs", "--limit-mm-per-prompt", "--structured-outputs-config")


def test_vllm_flags_are_json_where_vllm_expects_json() -> None:
    """Each flag vLLM reads as JSON is present once (a renamed flag fails here instead of
    being skipped) and its value parses as a JSON object, in compose and in Kubernetes."""
    vllm = _by_name("Deployment", "vllm-1")["spec"]["template"]["spec"]["containers"][0]
    compose = _compose()["services"]["vllm"]["command"]
    for args in (vllm["args"], compose):
        values = {}
        for arg in args:
            name, _, value = arg.partition("=")
            if name in JSON_FLAGS:
                assert name not in values, f"{name} given twice"
                values[name] = value
        assert sorted(values) == sorted(JSON_FLAGS), args
        for name, value in values.items():
            assert isinstance(json.loads(value), dict), name


@pytest.mark.parametrize("path", ["compose.yaml", "radraft.yaml", "rules.yaml"])
def test_no_real_secret_in_deploy_examples(path: str) -> None:
    text = (DEPLOY / path).read_text()
    assert "PASSWORD=" not in text.replace("${", "")


def test_make_installs_the_tools_these_tests_and_the_lab_use() -> None:
    line = next(x for x in (REPO / "Makefile").read_text().splitlines()
                if x.startswith("APT_PACKAGES"))
    packages = set(line.split(":=", 1)[1].split())
    # docker-compose (compose config), systemd (systemd-analyze), iproute2 (ip netns), dcmtk.
    assert {"docker-compose", "systemd", "iproute2", "dcmtk"} <= packages

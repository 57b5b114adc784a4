"""Model servers the tests start: the real vLLM (its own venv) and `radraft model serve`.

One vLLM at a time on this machine (about 3.5 GiB and both cores while it starts): the
session fixture holds one, and a test that needs another configuration stops it first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from helpers.net import free_port

from radraft.reporting.model._recipe import vllm_command

VLLM_VENV = Path(os.environ.get("VLLM_VENV", Path.home() / ".cache/radraft/vllm-venv"))
SERVED_NAME = "radraft-tiny"
REPO = Path(__file__).resolve().parents[1]


def vllm_args(model: Path, port: int, *, all_frames: bool = True) -> list[str]:
    return vllm_command(VLLM_VENV / "bin/python", model, port=port, served_name=SERVED_NAME,
                        all_frames=all_frames)


class ServerProcess:
    """A server subprocess with its log file; `stop()` is idempotent."""

    def __init__(self, args: list[str], port: int, log: Path, *, env: dict[str, str],
                 ready_timeout_s: float) -> None:
        self.port = port
        self.log = log
        self.base_url = f"http://127.0.0.1:{port}/v1"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=log.parent, start_new_session=True)
        self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n"
                                   + self.log.read_text(errors="replace")[-4000:])
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout_s} s; log:\n"
                           + self.log.read_text(errors="replace")[-4000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)


def start_vllm(model: Path, workdir: Path, *, all_frames: bool = True) -> ServerProcess:
    if not (VLLM_VENV / "bin/python").exists():
        raise RuntimeError(f"no vLLM venv at {VLLM_VENV}: run `make vllm-venv`")
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_LOGGING_LEVEL="INFO")
    name = "vllm" if all_frames else "vllm-default-frames"
    return ServerProcess(vllm_args(model, port, all_frames=all_frames), port,
                         workdir / f"{name}.log", env=env, ready_timeout_s=300)


def start_model_serve(model: Path, workdir: Path) -> ServerProcess:
    port = free_port()
    args = [str(Path(sys.executable).parent / "radraft"), "model", "serve", "--model",
            str(model), "--port", str(port), "--served-model-name", SERVED_NAME]
    return ServerProcess(args, port, workdir / "model-serve.log", env=dict(os.environ),
                         ready_timeout_s=120)


class VllmHolder:
    """The session's vLLM: started on first use, restarted after a test stopped it."""

    def __init__(self, model: Path, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir
        self.server: ServerProcess | None = None

    def running(self) -> ServerProcess:
        if self.server is None or self.server.proc.poll() is not None:
            self.server = start_vllm(self.model, self.workdir)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

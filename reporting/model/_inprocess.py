"""A video-language model in this process: `from_pretrained`, constrained greedy decoding.

JSON-schema constraints are enforced token by token with llguidance (the grammar engine
vLLM ships as its `guidance` backend; here xgrammar emitted raw control characters inside
strings). Qwen2-VL-family models get their video patches from `_qwen.patchify` (the
processor's own layout, no torchvision needed); other models go through AutoProcessor.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import AutoConfig, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from radraft.core.errors import ConfigError, ModelError
from radraft.reporting.model._qwen import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    TEMPORAL,
    VideoGrid,
    patchify,
)

log = logging.getLogger(__name__)
QWEN_TYPES = {"qwen2_vl", "qwen2_5_vl"}
VIDEO_FPS = 2.0  # frames are slices, not time: any fixed rate gives the same positions


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int


class _GrammarMask(LogitsProcessor):  # type: ignore[misc]
    """Masks every token the JSON-schema grammar does not allow next."""

    def __init__(self, matcher: Any, vocab_size: int, prompt_len: int) -> None:
        from llguidance.torch import allocate_token_bitmask

        self._matcher = matcher
        self._prompt_len = prompt_len
        self._bitmask = allocate_token_bitmask(1, vocab_size)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
        from llguidance.torch import fill_next_token_bitmask

        if input_ids.shape[1] > self._prompt_len and not self._matcher.consume_token(
                int(input_ids[0, -1])):
            raise ModelError(f"grammar refused a token: {self._matcher.get_error()}")
        fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        # Unpacked with numpy rather than llguidance's torch.compile'd kernel, which costs
        # seconds to compile on first use for a saving of microseconds per token.
        bits = np.unpackbits(self._bitmask.numpy().view(np.uint8), bitorder="little")
        allowed = torch.from_numpy(bits[: scores.shape[-1]].astype(bool)).to(scores.device)
        return scores.masked_fill(~allowed, float("-inf"))


def _video_pixels(model_dir: Path) -> tuple[int, int]:
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        path = model_dir / name
        if path.exists():
            data = json.loads(path.read_text())
            return (int(data.get("min_pixels", DEFAULT_MIN_PIXELS)),
                    int(data.get("max_pixels", DEFAULT_MAX_PIXELS)))
    return DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS


class InProcessModel:
    """One loaded model; `generate` is serialised (one forward pass at a time)."""

    def __init__(self, model_dir: Path, *, device: str | None = None) -> None:
        if not (model_dir / "config.json").exists():
            raise ConfigError(f"model.path: no model in {model_dir} (config.json missing); "
                              f"build the test model with `radraft model build-tiny {model_dir}`")
        from transformers import AutoModelForImageTextToText

        self.model_dir = model_dir
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.config = AutoConfig.from_pretrained(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_dir, dtype=dtype).to(self.device).eval()
        self.is_qwen = self.config.model_type in QWEN_TYPES
        self.min_pixels, self.max_pixels = _video_pixels(model_dir)
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._processor: Any = None
        self._lock = threading.Lock()
        from llguidance.hf import from_tokenizer

        self._ll_tokenizer = from_tokenizer(self.tokenizer, n_vocab=self.vocab_size)

    def _qwen_inputs(self, messages: list[dict[str, Any]],
                     frames: npt.NDArray[np.uint8]) -> tuple[dict[str, Any], VideoGrid]:
        patches, grid = patchify(frames, min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        if text.count("<|video_pad|>") != 1:
            raise ModelError("the chat template did not place exactly one video")
        text = text.replace("<|video_pad|>", "<|video_pad|>" * grid.tokens)
        encoded = self.tokenizer(text, return_tensors="pt")
        return {
            "input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
            "pixel_values_videos": torch.from_numpy(patches),
            "video_grid_thw": torch.tensor([[grid.t, grid.h, grid.w]]),
            "second_per_grid_ts": torch.tensor([TEMPORAL / VIDEO_FPS]),
        }, grid

    def _generic_inputs(self, messages: list[dict[str, Any]],
                        frames: npt.NDArray[np.uint8]) -> dict[str, Any]:
        from transformers import AutoProcessor

        if self._processor is None:
            self._processor = AutoProcessor.from_pretrained(self.model_dir)
        text = self._processor.apply_chat_template(messages, tokenize=False,
                                                   add_generation_prompt=True)
        inputs: dict[str, Any] = dict(self._processor(text=[text], videos=[list(frames)],
                                                      return_tensors="pt"))
        return inputs

    def count_text_tokens(self, messages: list[dict[str, Any]]) -> int:
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True,
                                                 add_generation_prompt=True)
        return len(ids)

    def generate(self, system: str, text: str, frames: npt.NDArray[np.uint8],
                 schema: dict[str, Any], *, max_tokens: int) -> Generation:
        """Greedy decoding of one answer that the grammar of `schema` allows."""
        import llguidance

        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
        if self.is_qwen:
            inputs, _grid = self._qwen_inputs(messages, frames)
        else:
            inputs = self._generic_inputs(messages, frames)
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False})
        matcher = llguidance.LLMatcher(self._ll_tokenizer, grammar)
        if matcher.is_error():
            raise ModelError(f"the report schema did not compile: {matcher.get_error()}")
        prompt_len = int(inputs["input_ids"].shape[1])
        mask = _GrammarMask(matcher, self.vocab_size, prompt_len)
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **{k: v.to(self.device) for k, v in inputs.items()},
                max_new_tokens=max_tokens, do_sample=False,
                logits_processor=LogitsProcessorList([mask]),
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[0, prompt_len:]
        answer = self.tokenizer.decode(new, skip_special_tokens=True)
        return Generation(text=answer, prompt_tokens=prompt_len, completion_tokens=len(new))

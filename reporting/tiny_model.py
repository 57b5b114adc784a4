"""`radraft model build-tiny DIR`: a tiny, randomly initialised Qwen2.5-VL model.

No weights can be downloaded here, so tests and the demo use a model radraft builds itself:
`Qwen2_5_VLForConditionalGeneration` with 2 text layers of width 128 and a 2-block vision
tower (about 1 M parameters), a byte-level BPE tokenizer trained locally on report
vocabulary with Qwen's special tokens and chat template, and the image/video processor
configuration. It loads with `from_pretrained` and in vLLM. Its text is meaningless; its
structure (video tokens, rotary sections, special ids) is the real model's.

Shapes chosen for vLLM's CPU attention: head_dim must be one of 32, 64, 80, ... (64 here);
float32 weights, since most CPUs here have no bf16.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from radraft.reporting.codes import FINDING_SITES, FINDING_TYPES
from radraft.reporting.report_schema import base_schema

log = logging.getLogger(__name__)

SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
    "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
VOCAB_SIZE = 2048  # trained tokens + special tokens, rounded up in the embedding
PATCH, MERGE, TEMPORAL = 14, 2, 2
# Qwen2.5-VL's own video pixel range, so `model.video_*_pixels` defaults match it.
MIN_PIXELS, MAX_PIXELS = 128 * 28 * 28, 768 * 28 * 28
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

# Qwen2-VL's chat template, written for this tokenizer: content may be a string or a list of
# {"type": "text" | "image" | "image_url" | "video" | "video_url"} parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] in ('image', 'image_url') or 'image' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] in ('video', 'video_url') or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    """Training text for the tokenizer: the report schema, its codes, report language."""
    words = [json.dumps(base_schema())]
    words += [c.key + " " + c.meaning for c in FINDING_TYPES + FINDING_SITES]
    words.append(
        "Findings: no acute intracranial hemorrhage. The liver, spleen, pancreas and kidneys "
        "are unremarkable. Impression: no acute abnormality. Recommendation: follow-up CT in "
        "3 months. Triage routine urgent critical. normal normal normal. Comparison with "
        "the prior CT of 2025-11-20. "
        "Technique: CT abdomen and pelvis with intravenous contrast, arterial and portal "
        "venous phases. Clinical history: abdominal pain. Limitations: motion artefact. "
        '{"exam": "", "technique": "", "findings": [], "frames": [0, 1, 2], "severity": '
        '"normal", "minor", "significant", "level": "routine"}'
    )
    return words * 4


def _build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS), special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, bos_token=None, model_max_length=32768,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _config(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    hidden, heads = 128, 2  # head_dim 64
    text = {
        "vocab_size": VOCAB_SIZE, "hidden_size": hidden, "intermediate_size": 256,
        "num_hidden_layers": 2, "num_attention_heads": heads, "num_key_value_heads": 1,
        "max_position_embeddings": 32768, "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        # mrope splits head_dim/2 = 32 rotary pairs over (time, height, width).
        "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [8, 12, 12]},
    }
    vision = {
        "depth": 2, "hidden_size": hidden, "intermediate_size": 256, "num_heads": heads,
        "out_hidden_size": hidden, "patch_size": PATCH, "spatial_merge_size": MERGE,
        "temporal_patch_size": TEMPORAL, "window_size": 112, "fullatt_block_indexes": [1],
        "tokens_per_second": 2, "in_channels": 3,
    }
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=False,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"], architectures=["Qwen2_5_VLForConditionalGeneration"],
    )


# The output head's fixed preference, strongest first. A random model under a JSON-schema
# grammar otherwise fills every string to its maxLength (thousands of tokens a draft).
# Where one of these is allowed, the first allowed one wins; elsewhere the random weights
# decide. Net effect: strings that must be non-empty say "normal", others stay empty, each
# list holds one item, the one finding cites frame 0, and triage is "urgent" — short,
# valid, and exercising every output (SR image references, TID 1500, KOS, the ED alert).
PREFERRED = ('"', "normal", "urgent", "{", "0", "]")
PREFERENCE_DIM = 0  # the hidden dimension that carries the constant


def _prefer_tokens(model: Any, tokenizer: Any) -> None:
    """Give the last layer a constant output in one hidden dimension, and the output head
    a column that turns it into fixed logit offsets for PREFERRED (weights only: vLLM and
    transformers run the unmodified architecture)."""
    import torch

    text = model.model.language_model if hasattr(model.model, "language_model") else model.model
    d = PREFERENCE_DIM
    with torch.no_grad():
        text.embed_tokens.weight[:, d] = 0
        for layer in text.layers:
            layer.self_attn.o_proj.weight[d, :] = 0
            layer.mlp.down_proj.weight[d, :] = 0
        last = text.layers[-1].self_attn
        head_dim = last.head_dim
        # v's dimension d is a bias only; attention weights sum to 1, so every head emits it
        # unchanged and o_proj sums the query heads sharing that value head into dim d.
        last.v_proj.weight[d, :] = 0
        last.v_proj.bias[d] = 1.0
        last.o_proj.weight[:, d::head_dim] = 0
        last.o_proj.weight[d, d::head_dim] = 1.0
        head = model.lm_head.weight
        scale = float(head.abs().max()) * 4000
        head[:, d] = 0
        for rank, token in enumerate(PREFERRED):
            head[tokenizer.convert_tokens_to_ids(token), d] = scale * (len(PREFERRED) - rank)


def _processor_files(out: Path) -> None:
    """preprocessor_config.json and video_preprocessor_config.json, written as data: the
    transformers video processor classes need torchvision, which the lean venv lacks."""
    common = {
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": list(MEAN), "image_std": list(STD),
        "do_convert_rgb": True, "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS,
        "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        "patch_size": PATCH, "temporal_patch_size": TEMPORAL, "merge_size": MERGE,
        "resample": 3, "processor_class": "Qwen2_5_VLProcessor",
    }
    image = dict(common, image_processor_type="Qwen2VLImageProcessor")
    video = dict(common, video_processor_type="Qwen2VLVideoProcessor", do_sample_frames=False,
                 min_frames=2, max_frames=100_000, fps=2.0)
    (out / "preprocessor_config.json").write_text(json.dumps(image, indent=1))
    (out / "video_preprocessor_config.json").write_text(json.dumps(video, indent=1))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))


def build_tiny_model(out: Path, *, seed: int = 0) -> Path:
    """Write the tiny model, tokenizer and processor into `out`; returns `out`."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    # Built beside `out` and renamed into place: a half-written model directory must never
    # look complete (config.json is what callers check).
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    torch.manual_seed(seed)
    tokenizer = _build_tokenizer()
    config = _config(tokenizer)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    _prefer_tokens(model, tokenizer)
    model.save_pretrained(building, safe_serialization=True)
    tokenizer.save_pretrained(building)
    _processor_files(building)
    GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=False,
    ).save_pretrained(building)
    shutil.rmtree(out, ignore_errors=True)
    building.rename(out)
    params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %d parameters in %s", params, out)
    return out

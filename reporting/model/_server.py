"""`radraft model serve`: an OpenAI-compatible server over the in-process backend.

For machines without vLLM: it takes the request shape vLLM takes (one `video_url` part of
base64 JPEG frames, `response_format` json_schema) and answers with `usage.prompt_tokens`
counted as vLLM counts them, so the `openai` backend's checks work against it unchanged.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool

from radraft.reporting.model._inprocess import InProcessModel
from radraft.reporting.model._video import decode_video_data_url

log = logging.getLogger(__name__)


def _split_messages(messages: list[dict[str, Any]]) -> tuple[str, str, str | None]:
    """(system text, user text, video URL) from a chat request."""
    system, texts, video = "", [], None
    for message in messages:
        content = message.get("content")
        if message.get("role") == "system":
            system = content if isinstance(content, str) else " ".join(
                p.get("text", "") for p in content or [] if isinstance(p, dict))
            continue
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "video_url":
                if video is not None:
                    raise HTTPException(400, "at most one video per request")
                video = str(part.get("video_url", {}).get("url", ""))
            elif part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                raise HTTPException(400, f"unsupported content part {part.get('type')!r}")
    return system, "\n".join(texts), video


def _schema(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema" or "schema" not in (fmt.get("json_schema") or {}):
        raise HTTPException(400, "response_format must be {type: json_schema, json_schema: "
                                 "{schema: ...}}: radraft model serve only drafts reports")
    schema: dict[str, Any] = fmt["json_schema"]["schema"]
    return schema


def create_app(model: InProcessModel, *, served_name: str) -> FastAPI:
    app = FastAPI(title="radraft model serve")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": served_name, "object": "model",
                                            "owned_by": "radraft"}]}

    @app.post("/tokenize")
    def tokenize(body: dict[str, Any]) -> dict[str, Any]:
        system, text, video = _split_messages(body.get("messages") or [])
        if video is not None:
            raise HTTPException(400, "/tokenize counts text only")
        messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                    {"role": "user", "content": [{"type": "text", "text": text}]}]
        return {"count": model.count_text_tokens(messages), "max_model_len": 32768}

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("model") not in (None, served_name):
            raise HTTPException(404, f"model {body.get('model')!r} is not served here")
        system, text, video = _split_messages(body.get("messages") or [])
        if video is None:
            raise HTTPException(400, "a video_url part is required")
        try:
            frames = decode_video_data_url(video)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        schema = _schema(body)
        max_tokens = int(body.get("max_tokens") or 4096)
        started = time.perf_counter()
        generation = await run_in_threadpool(
            model.generate, system, text, frames, schema, max_tokens=max_tokens)
        log.info("answered %d frames in %.2f s (%d + %d tokens)", len(frames),
                 time.perf_counter() - started, generation.prompt_tokens,
                 generation.completion_tokens)
        finished = generation.completion_tokens < max_tokens
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": served_name,
            "choices": [{"index": 0, "finish_reason": "stop" if finished else "length",
                         "message": {"role": "assistant", "content": generation.text}}],
            "usage": {"prompt_tokens": generation.prompt_tokens,
                      "completion_tokens": generation.completion_tokens,
                      "total_tokens": generation.prompt_tokens + generation.completion_tokens},
        }

    return app


def serve_model(model_dir: Any, *, host: str, port: int, served_name: str) -> None:
    import uvicorn

    model = InProcessModel(model_dir)
    uvicorn.run(create_app(model, served_name=served_name), host=host, port=port,
                log_level="info")

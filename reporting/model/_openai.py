"""The `openai` backend: vLLM's OpenAI-compatible chat completions, JSON-schema output.

The video goes as one `video_url` part of base64 JPEG frames. vLLM keeps only 32 frames
of a video unless it runs with `--media-io-kwargs '{"video":{"num_frames":-1}}'`, so every
answer's `usage.prompt_tokens` is compared with the tokens the whole video must cost
(Qwen's resize rule) plus the text (counted by the server's `/tokenize`); a server that
dropped frames fails the call loudly with VideoTruncatedError.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from radraft.core.errors import ModelError, VideoTruncatedError
from radraft.core.settings import ModelSettings
from radraft.reporting.frames import TokenBudget, qwen_token_budget
from radraft.reporting.model._base import Answer, RetryingBackend, TransientModelError
from radraft.reporting.model._endpoints import EndpointPool
from radraft.reporting.model._qwen import video_grid
from radraft.reporting.model._video import video_data_url
from radraft.reporting.prompts import Prompt
from radraft.reporting.sequence import FrameSequence

log = logging.getLogger(__name__)

# Tokens around the video part: <|vision_start|> and <|vision_end|>.
VIDEO_WRAPPER_TOKENS = 2
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def chat_messages(prompt: Prompt, video_url: str | None) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if video_url is not None:
        content.append({"type": "video_url", "video_url": {"url": video_url}})
    content.append({"type": "text", "text": prompt.text})
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]


def chat_request(prompt: Prompt, video_url: str, *, model: str, max_tokens: int) -> dict[str, Any]:
    """The request body, the same shape for vLLM and `radraft model serve`."""
    return {
        "model": model,
        "messages": chat_messages(prompt, video_url),
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "DraftReport", "schema": prompt.schema, "strict": True}},
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }


def _root(base_url: str) -> str:
    """http://host:8000/v1 -> http://host:8000 (vLLM serves /tokenize at the root)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class EndpointUnreachableError(TransientModelError):
    """No connection to the endpoint: the request was never sent, so failing over is safe."""


class OpenAIBackend(RetryingBackend):
    """Chat completions against one or several OpenAI-compatible servers."""

    name = "openai"

    def __init__(self, settings: ModelSettings, *, backoff_s: float = 1.0) -> None:
        super().__init__(max_retries=settings.max_retries, backoff_s=backoff_s)
        self._settings = settings
        self.model_id = settings.name
        self.pool = EndpointPool(list(settings.base_urls), cooldown_s=settings.endpoint_cooldown_s)
        headers = {}
        if settings.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        # A timeout on every call: connect quickly, but give a long video its time.
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(
            settings.timeout_s, connect=min(10.0, settings.timeout_s)))

    def token_budget(self) -> TokenBudget:
        s = self._settings
        return qwen_token_budget(s.max_video_tokens, min_pixels=s.video_min_pixels,
                                 max_pixels=s.video_max_pixels)

    def expected_video_tokens(self, seq: FrameSequence) -> int:
        _, height, width, _ = seq.frames.shape
        return video_grid(seq.frame_count, height, width,
                          min_pixels=self._settings.video_min_pixels,
                          max_pixels=self._settings.video_max_pixels).tokens

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise EndpointUnreachableError(f"{url}: cannot connect ({exc or type(exc).__name__})"
                                           ) from exc
        except httpx.TimeoutException as exc:
            raise TransientModelError(f"{url}: no answer within the timeout ({exc})") from exc
        except httpx.TransportError as exc:
            raise TransientModelError(f"{url}: {exc or type(exc).__name__}") from exc
        if response.status_code in TRANSIENT_STATUS:
            raise TransientModelError(f"{url}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise ModelError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    def _text_tokens(self, root: str, prompt: Prompt) -> int | None:
        """The prompt's text tokens as the server counts them; None if it cannot say."""
        body = {"model": self._settings.name, "messages": chat_messages(prompt, None),
                "add_generation_prompt": True}
        try:
            data = self._post(f"{root}/tokenize", body)
        except ModelError as exc:
            log.info("%s: /tokenize unavailable (%s); truncation check uses a bound", root, exc)
            return None
        count = data.get("count")
        return int(count) if isinstance(count, int) else None

    def _check_video(self, seq: FrameSequence, prompt_tokens: int, text_tokens: int | None,
                     url: str) -> None:
        visual = self.expected_video_tokens(seq)
        expected = visual + VIDEO_WRAPPER_TOKENS + (text_tokens or 0)
        # Exact when the server counted the text; a lower bound otherwise.
        slack = 8 if text_tokens is not None else 0
        if prompt_tokens + slack < expected:
            raise VideoTruncatedError(
                f"{url}: the server read {prompt_tokens} prompt tokens, but {seq.frame_count} "
                f"frames cost {visual} visual tokens (+{text_tokens or 0} text): it kept fewer "
                "frames than sent. Start vLLM with --media-io-kwargs "
                "'{\"video\":{\"num_frames\":-1}}' (and check model.video_min_pixels/"
                "video_max_pixels against the served processor)")

    def _call(self, seq: FrameSequence, prompt: Prompt) -> Answer:
        video = video_data_url(seq.frames)
        body = chat_request(prompt, video, model=self._settings.name,
                            max_tokens=self._settings.max_tokens)
        unreachable: set[str] = set()
        while True:
            with self.pool.use(exclude=unreachable) as lease:
                try:
                    data = self._post(f"{lease.url}/chat/completions", body)
                    text_tokens = self._text_tokens(_root(lease.url), prompt)
                    break
                except EndpointUnreachableError as exc:
                    lease.failed = True
                    unreachable.add(lease.url)
                    # The request never reached a model: another endpoint takes it now, and
                    # a dead server among live ones costs no retry (with max_retries 0 it
                    # would otherwise fail the job's attempt on every re-probe after a rest).
                    if len(unreachable) >= len(self.pool.snapshot()):  # every URL once
                        raise
                    log.warning("%s; trying another endpoint", exc)
                except TransientModelError:
                    lease.failed = True
                    raise
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        self._check_video(seq, prompt_tokens, text_tokens, lease.url)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"{lease.url}: answer without choices[0].message") from exc
        if choice.get("finish_reason") == "length":
            log.warning("%s: answer cut at max_tokens=%d", lease.url, self._settings.max_tokens)
        # The name is the one requested (vLLM --served-model-name must match it); a server
        # reports no revision of its own, so that is the operator's to state (model.version).
        self.model_version = self._settings.version or "unstated"
        return Answer(text=text, prompt_tokens=prompt_tokens,
                      completion_tokens=int(usage.get("completion_tokens") or 0),
                      endpoint=lease.url)

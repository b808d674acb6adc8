"""Chat models: the shipped SmolLM2 on the CPU, any OpenAI-compatible server, and a scripted double.

Every backend takes a list of :class:`Message` and answers with text, whole (``generate``) or as
deltas (``stream``). The local backend lives in :mod:`crs.llm.local`, imported only when used.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from crs.config import Config

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

BACKENDS = ("local", "openai")


class LLMError(RuntimeError):
    """A chat model that cannot be loaded or reached; the message says what to do."""


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str: ...

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]: ...


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """``text`` up to the first occurrence of any stop string."""
    cuts = [i for s in stop or () if s and (i := text.find(s)) >= 0]
    return text[: min(cuts)] if cuts else text


def _held_back(text: str, stop: list[str]) -> int:
    """Length of the longest suffix of ``text`` that could still grow into a stop string."""
    return max((n for s in stop for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])), default=0)


def _stream_until_stop(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    """Pass text deltas through, ending before a stop string even when it spans deltas."""
    stop = [s for s in stop or () if s]
    buf = ""
    for piece in pieces:
        buf += piece
        if not stop:
            if buf:
                yield buf
            buf = ""
            continue
        cut = cut_at_stop(buf, stop)
        if len(cut) < len(buf):
            if cut:
                yield cut
            return
        keep = _held_back(buf, stop)
        if len(buf) > keep:
            yield buf[: len(buf) - keep]
            buf = buf[len(buf) - keep :]
    if buf:
        yield buf


# --------------------------------------------------------------------------- OpenAI-compatible server


class OpenAIChatModel:
    """Any server with an OpenAI-style ``/v1/chat/completions`` (llama.cpp, vLLM, Ollama, OpenAI)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.url = cfg.llm.base_url.rstrip("/") + "/chat/completions"
        self.name = f"openai:{cfg.llm.model}"
        key = cfg.llm.api_key or os.environ.get("OPENAI_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(cfg.llm.timeout))

    def close(self) -> None:
        self._client.close()

    def _body(
        self, messages: list[Message], max_new_tokens: int | None, temperature: float | None, stop: list[str] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.cfg.llm.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": self.cfg.llm.max_new_tokens if max_new_tokens is None else max_new_tokens,
            "temperature": self.cfg.llm.temperature if temperature is None else temperature,
        }
        if stop:
            body["stop"] = stop
        return body

    def _fail(self, exc: Exception) -> LLMError:
        if isinstance(exc, httpx.TimeoutException):
            return LLMError(f"the model server at {self.url} did not answer within {self.cfg.llm.timeout:g} s")
        return LLMError(f"cannot reach the model server at {self.url} ({exc}); is it running? see [llm] base_url")

    def _status_error(self, response: httpx.Response) -> LLMError:
        excerpt = " ".join(response.text.split())[:300]
        return LLMError(f"the model server at {self.url} answered HTTP {response.status_code}: {excerpt}")

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        try:
            response = self._client.post(self.url, json=self._body(messages, max_new_tokens, temperature, stop))
        except httpx.HTTPError as exc:
            raise self._fail(exc) from exc
        if response.status_code >= 400:
            raise self._status_error(response)
        try:
            content = response.json()["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(f"unexpected answer from {self.url}: {response.text[:300]}") from exc
        return (content or "").strip()

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        body = self._body(messages, max_new_tokens, temperature, stop) | {"stream": True}
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._status_error(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event: lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        choices = json.loads(data).get("choices") or [{}]
                        delta = (choices[0].get("delta") or {}).get("content")
                    except (ValueError, AttributeError) as exc:
                        raise LLMError(f"unexpected stream event from {self.url}: {data[:300]}") from exc
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise self._fail(exc) from exc


# --------------------------------------------------------------------------- test double and factory


@dataclass
class ScriptedChatModel:
    """Answers with queued replies and records every message list it was given."""

    name: str = "scripted"
    default: str | None = None  # answered when the queue is empty; None raises LLMError
    calls: list[list[Message]] = field(default_factory=list)
    replies: deque[str] = field(default_factory=deque)

    def enqueue(self, *texts: str) -> None:
        self.replies.extend(texts)

    def _next(self, messages: list[Message], stop: list[str] | None) -> str:
        self.calls.append(list(messages))
        if self.replies:
            return cut_at_stop(self.replies.popleft(), stop)
        if self.default is None:
            raise LLMError("ScriptedChatModel has no reply queued")
        return cut_at_stop(self.default, stop)

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        return self._next(messages, stop)

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        text = self._next(messages, stop)
        yield from re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def load_chat_model(cfg: Config) -> ChatModel:
    """The chat model ``cfg.llm.backend`` names."""
    if cfg.llm.backend == "local":
        from crs.llm.local import LocalChatModel

        return LocalChatModel(cfg)
    if cfg.llm.backend == "openai":
        return OpenAIChatModel(cfg)
    raise LLMError(f"unknown [llm] backend {cfg.llm.backend!r}; choose one of: {', '.join(BACKENDS)}")

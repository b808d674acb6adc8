"""The OpenAI-compatible backend: any server with ``/v1/chat/completions`` (llama.cpp, vLLM, Ollama, OpenAI)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

from crs.config import Config
from crs.llm.base import LLMError, Message


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

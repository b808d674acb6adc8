"""The OpenAI-compatible backend: any server with ``/v1/chat/completions`` (llama.cpp, vLLM, Ollama, OpenAI),
through the official ``openai`` client: typed errors, streaming (an error event inside a stream is an
error, not a silent end: checked here too, as newer clients pass such an event on as a chunk), and retries with backoff of what a busy server answers (429, 5xx, a dropped
connection; ``[llm] retries``). Every failure reaches the agent as an ``LLMError`` saying what to do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx

from crs.config import Config
from crs.llm.base import LLMError, Message


class OpenAIChatModel:
    """Any server with an OpenAI-style ``/v1/chat/completions``."""

    def __init__(self, cfg: Config) -> None:
        try:
            import openai
        except ImportError:
            raise LLMError("the openai backend needs the openai package: pip install openai") from None
        self.cfg = cfg
        self.url = cfg.llm.base_url.rstrip("/") + "/chat/completions"
        self.name = f"openai:{cfg.llm.model}"
        key = cfg.llm.api_key or os.environ.get("OPENAI_API_KEY", "") or "none"  # local servers take any key
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=cfg.llm.base_url, api_key=key, timeout=cfg.llm.timeout, max_retries=cfg.llm.retries
        )

    def close(self) -> None:
        self._client.close()

    def _args(
        self, messages: list[Message], max_new_tokens: int | None, temperature: float | None, stop: list[str] | None
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.cfg.llm.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": self.cfg.llm.max_new_tokens if max_new_tokens is None else max_new_tokens,
            "temperature": self.cfg.llm.temperature if temperature is None else temperature,
        }
        if stop:
            args["stop"] = stop
        return args

    def _error(self, exc: Exception) -> LLMError:
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(f"the model server at {self.url} did not answer within {self.cfg.llm.timeout:g} s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return LLMError(f"cannot reach the model server at {self.url} ({cause}); is it running? see [llm] base_url")
        if isinstance(exc, openai.APIStatusError):
            excerpt = " ".join(exc.response.text.split())[:300]
            return LLMError(f"the model server at {self.url} answered HTTP {exc.status_code}: {excerpt}")
        if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
            return LLMError(f"the model server at {self.url} failed: {exc.message}")
        return LLMError(f"unexpected answer from {self.url}: {exc}")

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        try:
            completion = self._client.chat.completions.create(**self._args(messages, max_new_tokens, temperature, stop))
            content = completion.choices[0].message.content
        except self._openai.OpenAIError as exc:
            raise self._error(exc) from exc
        except (IndexError, AttributeError, TypeError, ValueError) as exc:
            raise LLMError(f"unexpected answer from {self.url}: {exc}") from exc
        return (content or "").strip()

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        try:
            stream = self._client.chat.completions.create(
                **self._args(messages, max_new_tokens, temperature, stop), stream=True
            )
            finished = False
            with stream:
                for chunk in stream:
                    error = (chunk.model_extra or {}).get("error")  # an error event inside the stream
                    if error:
                        message = error.get("message") if isinstance(error, dict) else error
                        raise LLMError(f"the model server at {self.url} failed: {message}")
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    finished = finished or any(c.finish_reason for c in chunk.choices)
                    if delta:
                        yield delta
            if not finished:  # no chunk said why it stopped: the server went away mid-reply
                raise LLMError(f"the reply from {self.url} broke off before it finished")
        except self._openai.OpenAIError as exc:
            raise self._error(exc) from exc
        except httpx.HTTPError as exc:  # the connection broke mid-reply (a server killed, a proxy timeout)
            raise LLMError(f"the connection to the model server at {self.url} broke mid-reply ({exc})") from exc
        except (AttributeError, TypeError, ValueError) as exc:  # a chunk that is not a chat chunk
            raise LLMError(f"unexpected stream event from {self.url}: {exc}") from exc

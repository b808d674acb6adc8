"""A chat model for tests and scripted runs: answers with queued replies and records what it was asked."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from crs.llm.base import LLMError, Message, cut_at_stop


@dataclass
class ScriptedChatModel:
    """Answers with queued replies and records every message list it was given."""

    name: str = "scripted"
    default: str | None = None  # answered when the queue is empty; None raises LLMError
    calls: list[list[Message]] = field(default_factory=list)
    replies: deque[str] = field(default_factory=deque)
    continues_prefix: bool = False  # as the local engines: a last "assistant" message starts the reply

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

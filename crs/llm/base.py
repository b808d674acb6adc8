"""What every chat model shares: the :class:`ChatModel` protocol, :class:`Message`, the error type,
and cutting text or a stream of deltas at stop strings.

Every backend takes a list of :class:`Message` and answers with text, whole (``generate``) or as
deltas (``stream``). The backends are :mod:`crs.llm.local` (the shipped SmolLM2 on the CPU),
:mod:`crs.llm.openai_compat` (any OpenAI-compatible server) and :mod:`crs.llm.scripted` (a test
double); :func:`crs.llm.registry.load_chat_model` picks one from the config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

MAX_PROMPT_TOKENS = 2048  # a local model's prompt cap, for CPU speed, whatever the model's context


class LLMError(RuntimeError):
    """A chat model that cannot be loaded or reached; the message says what to do."""


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. Engines that set ``continues_prefix`` read a last message with role "assistant"
    as the start of their reply and continue it (its text is not repeated in what they return)."""

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


def stream_until_stop(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
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


def decoding_options(
    default_tokens: int,
    default_temperature: float,
    context_tokens: int,
    max_new_tokens: int | None,
    temperature: float | None,
) -> tuple[int, float]:
    """(new tokens, temperature) of a local generation: the call's, else the config's defaults; at most
    half the context is written, and a negative temperature is greedy."""
    n = default_tokens if max_new_tokens is None else max_new_tokens
    t = default_temperature if temperature is None else temperature
    return max(1, min(n, context_tokens // 2)), max(0.0, t)


def continues(messages: list[Message]) -> bool:
    """True when the last message is the start of the reply to continue (role "assistant")."""
    return bool(messages) and messages[-1].role == "assistant"


def chat_prompt(messages: list[Message], render: Callable[[list[Message]], str]) -> str:
    """The prompt text of ``messages``: ``render`` (the chat template, ending in the assistant's header)
    of all of them, or, when the last is the start of the reply, of the others followed by that start."""
    if continues(messages):
        return render(messages[:-1]) + messages[-1].content
    return render(messages)


def fit_prompt(
    messages: list[Message],
    context_tokens: int,
    max_new_tokens: int,
    encode: Callable[[list[Message]], list[int]],
    tokenize: Callable[[str], list[int]],
    detokenize: Callable[[list[int]], str],
) -> list[int]:
    """Token ids of the chat prompt (``encode``), dropping the oldest non-system turns until it fits
    beside ``max_new_tokens`` in ``context_tokens`` (and within ``MAX_PROMPT_TOKENS``).

    When one message is left and still too long, its end is kept. A last message that starts the reply
    (:func:`continues`) is never dropped. ``tokenize`` and ``detokenize`` work on plain text, without
    special tokens.
    """
    if not messages:
        raise LLMError("no messages to answer")
    budget = max(16, min(MAX_PROMPT_TOKENS, context_tokens - max_new_tokens))
    msgs = list(messages)
    ids = encode(msgs)
    pinned = len(msgs) - 1 if continues(msgs) else -1
    while len(ids) > budget:
        turns = [i for i, m in enumerate(msgs) if m.role != "system" and i != pinned]
        if len(turns) > 1:
            del msgs[turns[0]]
            if pinned >= 0:
                pinned -= 1  # it moved up by one
        else:  # one message left: keep the end of it
            i = turns[-1] if turns else len(msgs) - 1
            content = tokenize(msgs[i].content)
            over = len(ids) - budget + 8
            if over >= len(content):
                logger.warning("prompt of %d tokens cut to the last %d", len(ids), budget)
                return ids[-budget:]
            msgs[i] = Message(msgs[i].role, "…" + detokenize(content[over:]))
        ids = encode(msgs)
    if len(msgs) < len(messages) or msgs[-1] != messages[-1]:
        logger.info("prompt shortened to %d tokens (%d of %d messages)", len(ids), len(msgs), len(messages))
    return ids

"""The local chat model on llama.cpp (``llama-cpp-python``): the same GGUF weights, about 5x the tokens/s.

``[llm] engine`` picks how the local backend runs: "llamacpp" (this module), "transformers"
(:mod:`crs.llm.local`) or "auto", which takes llama.cpp when it is installed and can honour the
settings (a GGUF model; no ``repetition_penalty`` or ``no_repeat_ngram_size``, which llama.cpp
applies differently), and transformers otherwise. The reply-writer adapter is merged into a GGUF copy
once (:mod:`crs.llm.gguf_merge`), cached beside the converted models.

Greedy decoding gives the transformers engine's text on the same weights up to rounding: llama.cpp
keeps the shipped Q4_1 blocks where transformers de-quantises them to bf16.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from crs.config import Config
from crs.llm.base import (
    ChatModel,
    LLMError,
    Message,
    chat_prompt,
    cut_at_stop,
    decoding_options,
    fit_prompt,
    stream_until_stop,
)
from crs.llm.gguf_merge import merge_lora_gguf, merged_gguf_path
from crs.llm.local import adapter_dir, local_gguf

logger = logging.getLogger(__name__)

CONTEXT_TOKENS = 4096  # KV cache size: the prompt cap plus the longest reply, with room
TOP_K = 50  # sampling (temperature > 0), as the transformers engine samples


def llamacpp_installed() -> bool:
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def unusable(cfg: Config) -> str | None:
    """Why the llama.cpp engine cannot run ``cfg`` as the transformers engine would, or None if it can."""
    if not llamacpp_installed():
        return "llama-cpp-python is not installed (make llamacpp)"
    if cfg.llm.repetition_penalty != 1.0 or cfg.llm.no_repeat_ngram_size:
        return "repetition_penalty / no_repeat_ngram_size are transformers settings"
    try:
        gguf = local_gguf(cfg)
    except LLMError as exc:
        return str(exc)
    if gguf is None:
        return f"[llm] model_path {cfg.llm.model_path} is a transformers directory, not a GGUF file"
    return None


def _threads(cfg: Config) -> int:
    if cfg.llm.threads > 0:
        return cfg.llm.threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LlamaCppChatModel:
    """A GGUF chat model on llama.cpp's CPU kernels; one generation at a time per instance (a lock).
    A last "assistant" message is continued."""

    continues_prefix = True

    def __init__(self, cfg: Config) -> None:
        why = unusable(cfg)
        if why is not None:
            raise LLMError(f"the llama.cpp engine cannot run this config: {why}")
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.cfg = cfg
        self._lock = threading.Lock()
        started = time.perf_counter()
        gguf = local_gguf(cfg)
        assert gguf is not None  # unusable() said so
        self.adapter = adapter_dir(cfg)
        self.path = gguf
        if self.adapter is not None:
            self.path = merged_gguf_path(gguf, self.adapter, cfg.paths.cache_dir / "models")
            if not self.path.is_file():
                logger.info("merging the adapter %s into a GGUF copy (once; about 15 s)", self.adapter)
                merge_lora_gguf(gguf, self.adapter, self.path)
        try:
            self.llm = Llama(
                model_path=str(self.path),
                n_ctx=CONTEXT_TOKENS,
                n_threads=_threads(cfg),
                n_threads_batch=_threads(cfg),
                seed=cfg.llm.seed,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp says little: a ValueError "Failed to load model from file"
            raise LLMError(f"llama.cpp could not load {self.path}: {exc}") from exc
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError(f"the model in {self.path} has no chat template; use an instruct/chat model")
        eos_id, bos_id = self.llm.token_eos(), self.llm.token_bos()
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(eos_id) if eos_id >= 0 else "",
            bos_token=self._piece(bos_id) if bos_id >= 0 else "",
        )
        self.context_tokens = CONTEXT_TOKENS
        self.load_seconds = time.perf_counter() - started
        self.name = f"local:llama.cpp:{gguf.stem}" + (f"+{self.adapter.name}" if self.adapter else "")
        logger.info("loaded %s in %.1f s (%d threads)", self.name, self.load_seconds, _threads(cfg))

    def _piece(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def _render(self, messages: list[Message]) -> str:
        return str(self._format(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt)

    def _encode(self, messages: list[Message]) -> list[int]:
        return self.llm.tokenize(chat_prompt(messages, self._render).encode("utf-8"), add_bos=False, special=True)

    def prompt_ids(self, messages: list[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the chat prompt, dropping the oldest non-system turns until it fits."""
        return fit_prompt(
            messages,
            self.context_tokens,
            max_new_tokens,
            self._encode,
            lambda text: self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False),
            lambda ids: self.llm.detokenize(ids).decode("utf-8", errors="ignore"),
        )

    def _options(self, max_new_tokens: int | None, temperature: float | None) -> tuple[int, float]:
        llm = self.cfg.llm
        return decoding_options(llm.max_new_tokens, llm.temperature, self.context_tokens, max_new_tokens, temperature)

    def _pieces(self, ids: list[int], max_new: int, temperature: float) -> Iterator[Any]:
        return self.llm.create_completion(  # type: ignore[return-value]
            prompt=ids,
            max_tokens=max_new,
            temperature=temperature,
            top_k=TOP_K if temperature > 0 else 1,
            top_p=1.0,
            min_p=0.0,
            repeat_penalty=1.0,
            seed=self.cfg.llm.seed,
            stream=True,
        )

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        return cut_at_stop("".join(self.stream(messages, max_new_tokens, temperature, stop)), stop).strip()

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        max_new, temp = self._options(max_new_tokens, temperature)
        with self._lock:
            ids = self.prompt_ids(messages, max_new)
            chunks = self._pieces(ids, max_new, temp)
            try:
                texts = (chunk["choices"][0]["text"] for chunk in chunks)
                yield from stream_until_stop(texts, stop)
            except Exception as exc:
                raise LLMError(f"generation failed: {exc}") from exc
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()  # stops llama.cpp at once when the reader stops early


def load_local_model(cfg: Config) -> ChatModel:
    """The local model on the engine ``[llm] engine`` names ("auto": llama.cpp when it can, else transformers)."""
    from crs.llm.local import LocalChatModel

    engine = cfg.llm.engine
    if engine == "transformers":
        return LocalChatModel(cfg)
    why = unusable(cfg)
    if engine == "llamacpp":
        return LlamaCppChatModel(cfg)
    if why is None:
        try:
            return LlamaCppChatModel(cfg)
        except LLMError as exc:
            logger.warning("llama.cpp engine failed (%s); using transformers", exc)
    else:
        logger.info("local engine: transformers (%s)", why)
    return LocalChatModel(cfg)

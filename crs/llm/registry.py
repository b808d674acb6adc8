"""The registry of chat-model backends: the config's ``[llm] backend`` names one of ``BACKENDS``."""

from __future__ import annotations

from crs.config import Config
from crs.llm.base import ChatModel, LLMError

BACKENDS = ("local", "openai")


def load_chat_model(cfg: Config) -> ChatModel:
    """The chat model ``cfg.llm.backend`` names."""
    if cfg.llm.backend == "local":
        from crs.llm.llamacpp import load_local_model

        return load_local_model(cfg)
    if cfg.llm.backend == "openai":
        from crs.llm.openai_compat import OpenAIChatModel

        return OpenAIChatModel(cfg)
    raise LLMError(f"unknown [llm] backend {cfg.llm.backend!r}; choose one of: {', '.join(BACKENDS)}")

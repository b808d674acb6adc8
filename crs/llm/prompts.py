"""Prompt templates: one Jinja2 file per LLM task in ``prompts/``, rendered strictly.

A template defines ``{% block system %}`` and ``{% block user %}``; ``render`` returns the
chat messages. A variable the caller forgot is an error (``StrictUndefined``), never blank text.
"""

from __future__ import annotations

from pathlib import Path

from crs.config import PROMPTS_DIR
from crs.llm.base import Message


class PromptError(RuntimeError):
    """A template that is missing or cannot be rendered with the given variables."""


class Prompts:
    def __init__(self, directory: Path = PROMPTS_DIR) -> None:
        import jinja2

        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.j2"))

    def render(self, name: str, **variables: object) -> list[Message]:
        import jinja2

        try:
            template = self._env.get_template(f"{name}.j2")
            context = template.new_context(variables)
            parts = {block: "".join(fn(context)).strip() for block, fn in template.blocks.items()}
        except jinja2.TemplateNotFound:
            raise PromptError(f"no prompt template {name!r} in {self.directory}") from None
        except jinja2.UndefinedError as exc:
            raise PromptError(f"prompt {name!r}: {exc.message}") from None
        if "user" not in parts:
            raise PromptError(f"prompt {name!r} has no {{% block user %}}")
        messages = [Message("system", parts["system"])] if parts.get("system") else []
        messages.append(Message("user", parts["user"]))
        return messages

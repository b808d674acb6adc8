"""Tools are typed functions; ``@tool`` records each call the agent makes as a :class:`ToolEvent`.

A tool is an ordinary function with a docstring and type hints. Decorated, it is still called as
one; given ``calls=`` a :class:`ToolCalls` (the agent's record of one turn), the call is also
recorded: its name, its arguments as the UI shows them (no store or catalog objects, short
strings), a one-line summary of what it returned, and how long it took (a tool that raises is
recorded with its error, and the exception goes on to the caller)::

    @tool(summary=lambda out, args: f"{len(out)} candidates")
    def retrieve(store: ItemStore, query: str, k: int = 50) -> list[Candidate]: ...

    candidates = retrieve(store, "space horror", k=50, calls=calls)
    yield from calls.take()  # the ToolEvent, for the page to show

Without ``calls`` nothing is recorded, so tests, benches and scripts call tools directly.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar

from crs.state import ToolCall, ToolEvent, ToolResult

P = ParamSpec("P")
T = TypeVar("T")

Summary = Callable[[Any, Mapping[str, Any]], str]  # (output, the call's arguments by name) -> one line


class ToolCalls:
    """The tool events of one turn, in call order."""

    def __init__(self) -> None:
        self.events: list[ToolEvent] = []
        self._taken = 0

    def add(self, event: ToolEvent) -> None:
        self.events.append(event)

    def take(self) -> list[ToolEvent]:
        """The events recorded since the last ``take``."""
        new = self.events[self._taken :]
        self._taken = len(self.events)
        return new


class Tool(Generic[P, T]):
    """A function recorded when called with ``calls=``; ``name`` and ``summary`` say what the UI shows."""

    def __init__(self, fn: Callable[P, T], name: str, summary: Summary, hidden: Iterable[str]) -> None:
        self.fn = fn
        self.name = name
        self.summary = summary
        self.hidden = frozenset(hidden)
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, calls: ToolCalls | None = None, **kwargs: Any) -> T:
        if calls is None:
            return self.fn(*args, **kwargs)
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        shown = {k: shown_value(v) for k, v in bound.arguments.items() if k not in self.hidden}
        start = time.perf_counter()
        try:
            output = self.fn(*args, **kwargs)
        except Exception as exc:  # recorded, then raised: the caller decides what a failed tool means
            seconds = time.perf_counter() - start
            result = ToolResult(self.name, None, f"failed: {exc}", seconds, error=f"{type(exc).__name__}: {exc}")
            calls.add(ToolEvent(ToolCall(self.name, shown), result))
            raise
        seconds = time.perf_counter() - start
        result = ToolResult(self.name, output, self.summary(output, bound.arguments), seconds)
        calls.add(ToolEvent(ToolCall(self.name, shown), result))
        return output


def tool(
    summary: Summary, *, name: str | None = None, hidden: Iterable[str] = ()
) -> Callable[[Callable[P, T]], Tool[P, T]]:
    """Make ``fn`` a tool named ``name`` (default: the function's name). ``hidden`` arguments are
    not shown in the record (resources such as the store; they are still passed to ``summary``)."""

    def wrap(fn: Callable[P, T]) -> Tool[P, T]:
        return Tool(fn, name or fn.__name__, summary, hidden)

    return wrap


def shown_value(value: object) -> object:
    """An argument as the UI shows it: no store or catalog objects, strings up to 300 characters."""
    if isinstance(value, str):
        return value if len(value) <= 300 else value[:300] + "…"
    if isinstance(value, list | tuple):
        return [shown_value(v) for v in value][:50]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return type(value).__name__

"""crs: a conversational recommender agent that runs offline on a CPU.

The few names a program needs, imported on first use (``import crs`` loads no model)::

    import crs

    agent = crs.Agent.from_config(crs.load_config())
    session = crs.Session()
    final = agent.respond(session, "I loved Alien but no romance please")  # a FinalEvent
    final.reply, [item.label for item in final.items], final.belief
    saved = session.to_dict()  # JSON-able; crs.Session.from_dict(saved) goes on from there

``agent.step(session, text)`` yields the turn's events as they happen (``StateEvent``,
``ToolEvent``, ``TokenEvent``, ``NoticeEvent``, then one ``FinalEvent``).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# Nothing in crs may reach a model hub or phone home; set before any heavy import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_EXPORTS = {
    "Agent": "crs.agent",
    "Config": "crs.config",
    "load_config": "crs.config",
    "Catalog": "crs.catalog",
    "Item": "crs.catalog",
    "Session": "crs.state",
    "BeliefState": "crs.state",
    "BeliefUpdate": "crs.state",
    "Preference": "crs.state",
    "Event": "crs.state",
    "StateEvent": "crs.state",
    "ToolEvent": "crs.state",
    "TokenEvent": "crs.state",
    "NoticeEvent": "crs.state",
    "FinalEvent": "crs.state",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crs' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

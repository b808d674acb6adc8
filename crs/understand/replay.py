"""Replaying messages through the reader: ``crs read --jsonl IN --out OUT`` and the benches.

Each input line is one user message::

    {"text": "the fourth one looks good", "dialogue": "d1", "shown": ["Heat (1995)", "Alien (1979)"],
     "context": "How about Heat (1995) or Alien (1979)?"}

``text`` is required. ``dialogue`` groups consecutive lines into one conversation (the belief carries
over, as in a chat); without it every line stands alone. ``shown`` lists the films the other side
showed just before the message (labels "Title (Year)" or plain titles, resolved in the catalog);
``context`` is the other side's last words (default: a sentence listing ``shown``). Any other keys
are copied to the output unchanged (an id, gold labels), so a labelled file can be scored afterwards.
Each output line is the input's extra keys plus the reading (``Reading.to_dict``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace

from crs.state import BeliefState, apply
from crs.understand.message import Reading, Understander, agent_context

log = logging.getLogger(__name__)

_INPUT_KEYS = {"text", "dialogue", "shown", "context"}


class ReplayError(ValueError):
    """An input line that is not a JSON object with a ``text``."""


def parse_line(line: str, where: str) -> dict:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReplayError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise ReplayError(f'{where}: expected an object with a "text" string')
    shown = rec.get("shown", [])
    if not isinstance(shown, list) or not all(isinstance(s, str) for s in shown):
        raise ReplayError(f'{where}: "shown" must be a list of titles')
    return rec


def replay(understander: Understander, records: Iterable[dict]) -> Iterator[tuple[dict, Reading]]:
    """Read each record's message in its conversation; yields the record and its reading."""
    belief = BeliefState()
    dialogue: object = object()
    turn = 0
    for rec in records:
        if rec.get("dialogue") is None or rec.get("dialogue") != dialogue:
            belief, turn = BeliefState(), 0
        dialogue = rec.get("dialogue")
        turn += 1
        shown = [it.id for it in (understander.linker.resolve(s) for s in rec.get("shown") or []) if it is not None]
        if rec.get("shown") is not None:
            belief = replace(belief, last_shown=tuple(shown), focus=None)
        context = rec.get("context") or agent_context(belief, understander.catalog)
        reading = understander.read(rec["text"], belief, turn, context=context)
        belief = apply(belief, reading.update)
        yield rec, reading


def reading_lines(understander: Understander, records: Iterable[dict]) -> Iterator[dict]:
    """The output records of ``crs read``."""
    for rec, reading in replay(understander, records):
        extra = {k: v for k, v in rec.items() if k not in _INPUT_KEYS}
        yield extra | {"dialogue": rec.get("dialogue")} | reading.to_dict(understander.catalog)

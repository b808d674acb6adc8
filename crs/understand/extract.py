"""The LLM's reading of a message: JSON likes, dislikes and seen films, validated and linked.

A second pass beside the rules in ``crs.understand.nlu``: the LLM may catch phrasings the rules miss,
but what it returns must parse, fit the schema, and name catalog entities; anything else is
dropped. Where the two disagree about the same thing, the rules win.
"""

from __future__ import annotations

import json
import logging
import re

from crs.llm.base import ChatModel
from crs.llm.prompts import Prompts
from crs.state import BeliefUpdate, Preference
from crs.tools import tool
from crs.understand.linker import Linker, Mention

log = logging.getLogger(__name__)

SCHEMA_KEYS = ("liked", "disliked", "seen")
MAX_ENTRIES = 20
MAX_CHARS = 120


class ExtractionError(ValueError):
    """LLM output that is not a JSON object of the expected shape."""


def parse_extraction(raw: str) -> dict[str, list[str]]:
    """The first JSON object in ``raw``, checked against the schema
    ``{"liked": [str], "disliked": [str], "seen": [str]}`` (every key optional)."""
    start = raw.find("{")
    if start < 0:
        raise ExtractionError("no JSON object in the output")
    try:
        data, _ = json.JSONDecoder().raw_decode(raw[start:])
    except json.JSONDecodeError as exc:
        raise ExtractionError(f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ExtractionError("the JSON is not an object")
    unknown = sorted(set(data) - set(SCHEMA_KEYS))
    if unknown:
        raise ExtractionError(f"unknown keys: {', '.join(unknown)}")
    out: dict[str, list[str]] = {}
    for key in SCHEMA_KEYS:
        values = data.get(key, [])
        if values is None:
            values = []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ExtractionError(f"{key!r} must be a list of strings")
        if len(values) > MAX_ENTRIES or any(len(v) > MAX_CHARS for v in values):
            raise ExtractionError(f"{key!r} is too long")
        out[key] = [v.strip() for v in values if v.strip()]
    return out


def link_extraction(data: dict[str, list[str]], linker: Linker, turn: int) -> BeliefUpdate:
    """Keep only entries that name a catalog title, genre or person."""
    prefs: list[Preference] = []
    seen: list[str] = []
    for key, polarity in (("liked", 1), ("disliked", -1), ("seen", 0)):
        for text in data.get(key, []):
            mentions = linker.mentions(text)
            if not mentions and (item := linker.index.resolve(text, fuzzy=False)) is not None:
                # An entry is a name on its own ("Alien"): no sentence around it to say it is a film.
                mentions = [Mention("item", item.id, text, 0, len(text.split()))]
            if not mentions:
                log.debug("extraction entry %r names nothing in the catalog; dropped", text)
                continue
            m = mentions[0]
            if polarity == 0:
                if m.kind == "item":
                    seen.append(m.value)
                continue
            prefs.append(Preference(m.kind, m.value, polarity, turn=turn, source="llm", text=text))  # type: ignore[arg-type]
    return BeliefUpdate(preferences=tuple(prefs), seen=tuple(dict.fromkeys(seen)))


def merge_rules_first(rules: BeliefUpdate, llm: BeliefUpdate) -> BeliefUpdate:
    """Everything the rules found, plus what only the LLM found."""
    said = {p.key for p in rules.preferences}
    extra = tuple(p for p in llm.preferences if p.key not in said and p.value not in rules.seen)
    return BeliefUpdate(
        preferences=rules.preferences + extra,
        seen=tuple(dict.fromkeys(rules.seen + tuple(s for s in llm.seen if ("item", s) not in said))),
        retract=rules.retract,
        constraints=rules.constraints,
        accepted=rules.accepted,
    )


@tool(
    summary=lambda out, a: f"{len(out.preferences)} preferences, {len(out.seen)} seen",
    name="extract",
    hidden=("llm", "prompts", "linker", "turn"),
)
def llm_extract(text: str, llm: ChatModel, prompts: Prompts, linker: Linker, turn: int) -> BeliefUpdate:
    """Ask the LLM for the message's likes and dislikes; an unusable answer gives nothing."""
    messages = prompts.render("extract", message=re.sub(r"\s+", " ", text)[:1500])
    raw = llm.generate(messages, max_new_tokens=96, temperature=0.0)
    try:
        data = parse_extraction(raw)
    except ExtractionError as exc:
        log.info("LLM extraction ignored: %s (%r)", exc, raw[:200])
        return BeliefUpdate()
    return link_extraction(data, linker, turn)

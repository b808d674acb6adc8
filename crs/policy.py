"""The dialogue policy: which act to take next. Deterministic; the LLM only phrases it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crs.intents import Intent
from crs.lexicon import COMMON_WORDS, NEGATORS, POSITIVE
from crs.nlu import tokenize
from crs.state import BeliefState

ActKind = Literal["ask", "recommend", "no_results", "answer", "explain"]

# Words that carry no taste on their own: "recommend me a good movie please".
_FILLER = (
    COMMON_WORDS
    | NEGATORS
    | POSITIVE
    | frozenset(
        "im id ive recommend recommendation recommendations suggestion suggestions watch something anything good "
        "newer older recent different else another one ones ideas idea help pick choose should bored tonight "
        "suggest give tell".split()
    )
)


@dataclass(frozen=True)
class Act:
    kind: ActKind
    reason: str
    item_id: str | None = None  # the item an answer or explanation is about


def content_words(text: str) -> list[str]:
    return [t.norm for t in tokenize(text) if t.norm not in _FILLER and len(t.norm) > 2]


def decide(belief: BeliefState, text: str, intent: Intent | None = None) -> Act:
    """Answer a question about an item; explain a pick when asked why; ask while nothing
    positive is known and the message says nothing to search on; else recommend."""
    if intent is not None and intent.item_id:
        if intent.kind == "question":
            return Act("answer", f"the user asks about the {intent.about} of {intent.item_id}", intent.item_id)
        if intent.kind == "explain":
            return Act("explain", f"the user asks why {intent.item_id} fits", intent.item_id)
    knows_likes = any(p.polarity > 0 for p in belief.preferences)
    reacts = intent is not None and (intent.critique or bool(intent.update.constraints))
    if not knows_likes and not content_words(text) and not (reacts and belief.last_shown):
        return Act("ask", "nothing known yet about what the user likes")
    return Act("recommend", "enough is known to search the catalog")

"""The dialogue policy: which act to take next. Deterministic; the LLM only phrases it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crs.lexicon import COMMON_WORDS, NEGATORS, POSITIVE
from crs.nlu import tokenize
from crs.state import BeliefState

ActKind = Literal["ask", "recommend", "no_results"]

# Words that carry no taste on their own: "recommend me a good movie please".
_FILLER = (
    COMMON_WORDS
    | NEGATORS
    | POSITIVE
    | frozenset(
        "im id ive recommend recommendation recommendations suggestion suggestions watch something anything good".split()
    )
)


@dataclass(frozen=True)
class Act:
    kind: ActKind
    reason: str


def content_words(text: str) -> list[str]:
    return [t.norm for t in tokenize(text) if t.norm not in _FILLER and len(t.norm) > 2]


def decide(belief: BeliefState, text: str) -> Act:
    """Ask while nothing positive is known and the message says nothing to search on."""
    knows_likes = any(p.polarity > 0 for p in belief.preferences)
    if not knows_likes and not content_words(text):
        return Act("ask", "nothing known yet about what the user likes")
    return Act("recommend", "enough is known to search the catalog")

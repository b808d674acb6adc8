"""The dialogue policy: which act to take next. Deterministic; the LLM only phrases it.

Every act is decided here: ``ask`` (too little is known, a greeting, a vague opener), ``recommend``,
``no_results`` (after a search that every exclusion emptied), ``answer`` and ``explain`` (a question
about a film, or why it was picked), ``acknowledge`` (the user took a pick and asked for nothing
more), and the profile acts ``show_profile`` / ``edit_profile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from crs.state import BeliefState
from crs.understand.text import content_words

if TYPE_CHECKING:
    from crs.understand.message import Reading

ActKind = Literal["ask", "recommend", "no_results", "answer", "explain", "acknowledge", "show_profile", "edit_profile"]
ACT_KINDS: tuple[ActKind, ...] = (
    "ask", "recommend", "no_results", "answer", "explain", "acknowledge", "show_profile", "edit_profile",
)  # fmt: skip


@dataclass(frozen=True)
class Act:
    kind: ActKind
    reason: str
    item_id: str | None = None  # the item an answer, explanation or acknowledgement is about
    about: str = "general"  # what an answer tells: director, cast, plot, year, genre or general


def decide(
    belief: BeliefState,
    reading: Reading,
    *,
    profile_request: str | None = None,
    found: int | None = None,
) -> Act:
    """The next act for a message read as ``reading``, with ``belief`` already updated by it.

    ``profile_request``: "show" or an edit the message asks of the saved profile. ``found``: how
    many films a search for this turn returned (0: nothing fits, say so)."""
    if profile_request is not None:
        if profile_request == "show":
            return Act("show_profile", "the user asks to see their profile")
        return Act("edit_profile", "the user asks to change their profile")
    if found == 0:
        return Act("no_results", "every candidate was excluded")
    acts = set(reading.acts)
    referent = reading.referent
    if referent and ("ask_item" in acts or reading.intent.kind == "question") and "ask_why" not in acts:
        about = reading.question or (reading.intent.about if reading.intent.kind == "question" else "general")
        return Act("answer", f"the user asks about the {about} of {referent}", referent, about)
    if referent and ("ask_why" in acts or reading.intent.kind == "explain"):
        return Act("explain", f"the user asks why {referent} fits", referent)
    update = reading.update
    taste = any(p.polarity > 0 for p in update.preferences) or bool(update.constraints)
    wants_more = bool(acts & {"request", "critique", "preference"}) or taste or reading.intent.critique
    if update.accepted and not wants_more and acts <= {"accept", "chitchat"}:
        return Act("acknowledge", "the user took a pick and asked for nothing more", update.accepted[0])
    knows_likes = any(p.polarity > 0 for p in belief.preferences)
    reacts = bool(belief.last_shown) and (
        bool(acts & {"critique", "reject", "seen"}) or reading.intent.critique or bool(update.constraints)
    )
    content = taste or bool(content_words(_words_besides_mentions(reading)))
    if acts <= {"chitchat"} and not taste and not reading.intent.critique:
        return Act("ask", "a greeting or small talk: ask what they are in the mood for")
    if not knows_likes and not content and not reacts:
        return Act("ask", "nothing known yet about what the user likes")
    return Act("recommend", "enough is known to search the catalog")


def _words_besides_mentions(reading: Reading) -> str:
    """The message without the words that name films, people or genres (already in the update)."""
    text = reading.text
    for m in reading.mentions:
        text = text.replace(m.text, " ")
    return text

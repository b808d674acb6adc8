"""What a reader would find wrong with the agent's replies in a scripted run: talk about "the user",
an experience or taste the agent cannot have, a repeated sentence, or a film, person, genre, year,
theme or plot the records do not support; and whether a recommendation names its top pick with a
reason. Counted per turn in the scripted report (``crs eval scripted``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crs.reply.grounding import GroundingGuard

if TYPE_CHECKING:
    from crs.state import FinalEvent
    from crs.understand.linker import Linker

PICKS = "\n\nMy picks:"  # the list the agent adds after its words


def reply_problems(final: FinalEvent, linker: Linker) -> list[str]:
    """The problems of one reply's words (the picks list apart). It may name this turn's picks and any
    film the conversation has named: liked, rejected, seen, shown before, or asked about."""
    belief = final.belief
    named = {p.value for p in belief.preferences if p.kind == "item"} | set(belief.seen) | set(belief.shown)
    named |= {belief.focus} if belief.focus else set()  # the film an answer is about
    allowed = {i.id for i in final.items} | named
    return GroundingGuard(linker, allowed).review(final.reply.split(PICKS)[0])


def names_top_pick_with_reason(final: FinalEvent) -> bool | None:
    """For a recommendation: whether its words name the top pick and say why (None for other turns)."""
    if final.act != "recommend" or not final.items:
        return None
    words = final.reply.split(PICKS)[0]
    title = getattr(final.items[0], "title", "")
    return bool(title) and title.casefold() in words.casefold() and "because" in words

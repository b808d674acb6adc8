"""Fact-level grounding: what a sentence says of a film must be in that film's record.

The reply guard already checks that every film named is one the reply may name. A sentence can name
the right film and still say something false of it: "Die Hard (1988) is a funny Tom Hanks film from
the 90s about a haunted house". Here each person, genre, year, decade, theme and plot claim of a
sentence is checked against the records of the films the sentence is about (those it names, else the
one named just before when it says "it" or "this film"). A claim none of them supports makes the
sentence unsupported; the guard drops it and counts why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crs.understand.lexicon import THEMES

if TYPE_CHECKING:
    from crs.catalog import Item
    from crs.understand.linker import Mention

# A sentence about the film named before it: "It stars ...", "This one is a comedy".
_ANAPHOR = re.compile(r"^\W*(?:it|it's|its|this|that|the film|the movie|this one|that one|both)\b", re.I)
BRACKETED_YEAR = re.compile(r"\((?:19|20)\d{2}\)")  # a title's year: "Heat (1995)"
_YEAR = re.compile(r"(?<![\w(])((?:19|20)\d{2})(?![\w)])")
_DECADE = re.compile(r"(?<![\w'])(?:'|(19|20))?(\d)0'?s\b", re.I)
# Where a plot claim starts: what follows should be told by the record's summary.
_PLOT = re.compile(
    r"\b(?:is about|it's about|are about|about (?:a|an|the|two|three|how|what)|follows|tells the story of|"
    r"the story of|centers on|centres on|revolves around|in which|set in)\b",
    re.I,
)
_NEGATION = re.compile(r"\b(?:no|not|none|without|nor|never|neither|isn't|aren't|doesn't)\b[^.;]{0,40}$", re.I)
_WORD = re.compile(r"[a-z][a-z'\-]+")
_STOP = frozenset(
    """
    a an the and or but of to in on at for with from by as is are was were be been being it its it's this that
    these those who whom whose which what when where how why he she they them his her their him we you your our
    i me my not no so very really just also too more most much many some any all both each other another such
    than then there here into onto over under about after before while during through out up down off again
    one two three own same only even ever still yet can could would should will may might must has have had do
    does did get gets got make makes made take takes find finds try tries go goes going come comes way lot lots
    great good best better fun funny film films movie movies story stories life man men woman women people
    world time times thing things something someone everyone new old young
    """.split()
)


def subject_films(sentence: str, named: Sequence[Item], previous: Item | None) -> list[Item]:
    """The films a sentence speaks of: those it names, else the one named before when it points back."""
    if named:
        return list(named)
    if previous is not None and _ANAPHOR.search(sentence):
        return [previous]
    return []


def unsupported(sentence: str, films: Sequence[Item], mentions: Sequence[Mention]) -> str:
    """What a sentence claims of ``films`` that none of their records supports ("" when nothing):
    a person, a genre, a year or decade, a theme, or a plot."""
    if not films:
        return ""
    people = {p.casefold() for it in films for p in it.people}
    summaries = " ".join(f"{it.title} {it.summary}".casefold() for it in films)
    for m in mentions:
        if m.kind == "person" and m.value.casefold() not in people and m.value.casefold() not in summaries:
            return "unsupported person"
        has = any(it.has_genre(m.value) for it in films) or m.value.casefold() in summaries
        if m.kind == "genre" and has == _negated(sentence, m.text):  # "a comedy" of no comedy, "no horror" of one
            return "unsupported genre"
        if m.kind == "keyword":
            stems = THEMES.get(m.value.casefold(), ((), (m.value.casefold(),)))[1]
            if not any(stem in summaries for stem in stems):
                return "unsupported theme"
    years = {it.year for it in films if it.year}
    undated = BRACKETED_YEAR.sub(" ", sentence)
    for m in mentions:
        if m.kind == "item":
            undated = undated.replace(m.text, " ")  # "1941 (1979)": a title, not a year
    if any(int(y) not in years for y in _YEAR.findall(undated)):
        return "unsupported year"
    for century, decade in _DECADE.findall(undated):
        start = int((century or ("20" if decade in "01" else "19")) + decade + "0")
        if not any(start <= y < start + 10 for y in years):
            return "unsupported year"
    if (plot := _PLOT.search(sentence)) and not _plot_supported(sentence[plot.end() :], films):
        return "unsupported plot"
    return ""


def _negated(sentence: str, words: str) -> bool:
    """Whether a mention is said not to hold: "it has no horror", "none of what you ruled out (Horror)"."""
    at = sentence.find(words)
    return at >= 0 and _NEGATION.search(sentence[:at]) is not None


def _plot_supported(claim: str, films: Sequence[Item]) -> bool:
    """Whether the record tells at least half of a plot claim's content words (by their first five
    letters: "travels" is told by "travel"): a paraphrase passes, an invented story does not."""
    words = [w for w in _WORD.findall(BRACKETED_YEAR.sub(" ", claim.casefold())) if w not in _STOP and len(w) > 2]
    if len(words) < 2:
        return True
    record = " ".join(f"{it.title} {it.summary} {' '.join(it.genres)} {' '.join(it.people)}" for it in films)
    stems = {w[:5] for w in _WORD.findall(record.casefold())}
    told = sum(w[:5] in stems for w in words)
    return told * 2 >= len(words)

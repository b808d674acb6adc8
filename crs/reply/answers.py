"""Grounded facts for answers and explanations, read from an item's catalog record.

The LLM phrases these; when its phrasing drops the fact or names another film, the agent
falls back to the plain sentence built here, so an answer is always true to the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from crs.catalog import Catalog, Item, director_of
from crs.rank.embed import first_sentences
from crs.state import BeliefState, BeliefUpdate
from crs.understand.intents import Field
from crs.understand.lexicon import THEMES


@dataclass(frozen=True)
class Facts:
    text: str  # the plain answer, true to the record
    key: str  # a string a phrased answer must contain ("" when none is required)
    context: str  # the record as the LLM sees it


def record(item: Item) -> str:
    parts = [f"Title: {item.label}", f"Genres: {', '.join(item.genres) or 'unknown'}"]
    if item.cast:
        parts.append(f"Starring: {', '.join(item.cast[:6])}")
    if director := director_of(item.summary):
        parts.append(f"Directed by: {director}")
    if item.summary:
        parts.append(f"Summary: {first_sentences(item.summary, 4)[:700]}")
    return "\n".join(parts)


def answer_facts(item: Item, about: Field) -> Facts:
    """The plain answer to a question about ``item``."""
    context = record(item)
    if about == "director":
        director = director_of(item.summary)
        if director:
            return Facts(f"{item.label} was directed by {director}.", director, context)
        return Facts(
            f"My catalog doesn't name the director of {item.label}. {first_sentences(item.summary, 1)}", "", context
        )
    if about == "cast":
        if item.cast:
            return Facts(f"{item.label} stars {_join(list(item.cast[:5]))}.", item.cast[0], context)
        return Facts(f"My catalog has no cast for {item.label}.", "", context)
    if about == "year":
        if item.year:
            return Facts(f"{item.title} came out in {item.year}.", str(item.year), context)
        return Facts(f"My catalog has no release year for {item.title}.", "", context)
    if about == "genre":
        genres = _join(list(item.genres)) or "no genre"
        return Facts(f"{item.label} is listed as {genres}.", item.genres[0] if item.genres else "", context)
    summary = first_sentences(item.summary, 3) or f"{item.label} is listed as {_join(list(item.genres))}."
    return Facts(summary, "", context)


def reasons(item: Item, belief: BeliefState, catalog: Catalog) -> list[str]:
    """Why ``item`` fits what the user said: the liked attributes it shares."""
    out = []
    genres = [g for g in item.genres if g.casefold() in {x.casefold() for x in belief.liked_genres}]
    if genres:
        out.append(f"it is {_join(genres)}, which you said you like")
    liked_people = {x.casefold() for x in belief.values("person", 1)}
    people = [c for c in item.cast if c.casefold() in liked_people]
    if people:
        out.append(f"it stars {_join(people)}")
    directors = [d for d in item.directors if d.casefold() in liked_people and d not in people]
    if directors:
        out.append(f"{_join(directors)} directed it")
    for liked_id in belief.liked_items:
        liked = catalog.get(liked_id)
        if liked is None:
            continue
        shared = [g for g in item.genres if liked.has_genre(g)]
        if shared:
            out.append(f"like {liked.label}, it is {_join(shared)}")
    text = item.summary.casefold()
    themes = [
        k for k in belief.values("keyword", 1) if any(stem in text for stem in THEMES.get(k.casefold(), ((), (k,)))[1])
    ]
    if themes:
        out.append(f"it has {_join(themes)}, which you asked for")
    year_min, year_max = belief.year_min, belief.year_max
    if item.year and (year_min or year_max):
        out.append(f"it is from {item.year}, within the years you asked for")
    avoided = [g for g in belief.disliked_genres if not item.has_genre(g)]
    if avoided:
        out.append(f"it has none of what you ruled out ({_join(avoided)})")
    return out


def explanation(item: Item, belief: BeliefState, catalog: Catalog, named: bool = False) -> str:
    """Why ``item`` was picked, in one or two plain sentences: the strongest match first (a liked
    actor, a liked film it resembles, the genre or theme asked for), then the limits it keeps.
    ``named``: the reply has named the film already ("I picked it because ...")."""
    subject = "it" if named else item.label
    liked_people = {x.casefold() for x in belief.values("person", 1)}
    people = [c for c in item.cast if c.casefold() in liked_people]
    directors = [d for d in item.directors if d.casefold() in liked_people and d not in people]
    genres = [g for g in item.genres if g.casefold() in {x.casefold() for x in belief.liked_genres}]
    text = item.summary.casefold()
    themes = [
        k for k in belief.values("keyword", 1) if any(stem in text for stem in THEMES.get(k.casefold(), ((), (k,)))[1])
    ]
    similar = None
    for liked_id in reversed(belief.liked_items):  # the film named last is on the user's mind
        liked = catalog.get(liked_id)
        shared = [g for g in item.genres if liked is not None and liked.has_genre(g)]
        if liked is not None and shared:
            similar = (liked, shared)
            break
    if people:
        main = f"it stars {_join(people)}, and you said you like {'them' if len(people) > 1 else 'their films'}"
    elif directors:
        main = f"{_join(directors)} directed it, and you asked for {'them' if len(directors) > 1 else 'their films'}"
    elif similar is not None:
        main = f"it is {_a(_join(similar[1]).lower())} film like {similar[0].label}, which you liked"
    elif genres:
        main = f"it is {_a(_join(genres).lower())} film, as you asked"
    elif themes:
        main = f"it is about {_join(themes)}, as you asked"
    else:
        plot = first_sentences(item.summary, 1)
        return f"I picked {subject} because it is close to what you described: {plot}"
    first = f"I picked {subject} because {main}."
    keeps = []
    if item.year and (belief.year_min or belief.year_max):
        keeps.append(f"it is from {item.year}, within the years you asked for")
    avoided = [g.lower() for g in belief.disliked_genres if not item.has_genre(g)]
    if avoided:
        keeps.append(f"it has no {_join(avoided)}")
    return first + (f" Also, {_join(keeps)}." if keeps else "")


def _a(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def reason_keys(item: Item, belief: BeliefState, catalog: Catalog) -> list[str]:
    """The liked things ``item`` shares, as short names ("Thriller", "Tom Hanks", "Alien",
    "time travel"): an explanation the LLM words must name at least the first."""
    keys = [g for g in item.genres if g.casefold() in {x.casefold() for x in belief.liked_genres}]
    keys += [c for c in item.cast if c.casefold() in {x.casefold() for x in belief.values("person", 1)}]
    for liked_id in belief.liked_items:
        liked = catalog.get(liked_id)
        if liked is not None and any(item.has_genre(g) for g in liked.genres):
            keys.append(liked.title)
    text = item.summary.casefold()
    keys += [
        k for k in belief.values("keyword", 1) if any(stem in text for stem in THEMES.get(k.casefold(), ((), (k,)))[1])
    ]
    return keys


def critique_change(update: BeliefUpdate) -> str:
    """What a critique asked to change, in words: "more Comedy, less violent, from 2001 on"."""
    parts = []
    for p in update.preferences:
        if p.kind == "item":
            continue
        parts.append(("more " if p.polarity > 0 else "less ") + p.value)
    for c in update.constraints:
        parts.append(f"from {c.value} on" if c.kind == "year_min" else f"up to {c.value}")
    return ", ".join(parts) or "something else"

"""The title and person index over the real demo catalog: forgiving of case and typos, guarded against
everyday phrases."""

from __future__ import annotations

import pytest

from crs.catalog import Catalog, Item
from crs.understand.linker import Linker
from crs.understand.text import PhraseStats, title_key
from crs.understand.titles import TitleIndex


def linked(linker: Linker, text: str) -> set[tuple[str, str]]:
    return {(m.kind, m.value) for m in linker.mentions(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I loved Gladiater", {("item", "gladiator-2000")}),  # a typo, and the better-known namesake
        ("the matrix is my favourite", {("item", "the-matrix-1999")}),  # lower case, with its article
        ("anything with jim carey?", {("person", "Jim Carrey")}),  # a misspelt full name
        ("nolan films", {("person", "Christopher Nolan")}),  # a surname alone
        ("the one with Keanu sounds good", {("person", "Keanu Reeves")}),  # the actor, not Keanu (2016)
        ("what is Heat about?", {("item", "heat-1995")}),  # no article typed: not The Heat (2013)
        ("I want a horroe movie", {("genre", "Horror")}),  # a misspelt genre
        ("Black Panhter was great", {("item", "black-panther-2018")}),  # two letters swapped
    ],
)
def test_typed_the_way_people_type(text: str, expected: set, linker: Linker) -> None:
    assert linked(linker, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "anything else?",
        "i'm in the mood for something",
        "oh yeah",
        "love",
        "haven't I'll",  # no rapper T.I. across a contraction
        "something for friday night",
        "i love it",
        "It was good",  # a sentence may start with "It"
        "I watched it in 2012",  # a year is no film
        "a horror film by someone",  # "a horror film" is no misspelt "The Last Horror Film"
        "no more superhero movies",  # the genre, not Superhero Movie (2008)
        "lyou should see something",  # a typo of a word is no film
    ],
)
def test_everyday_phrases_are_no_films(text: str, linker: Linker) -> None:
    assert not {v for k, v in linked(linker, text) if k == "item"}


def test_evidence_makes_a_title_of_ordinary_words(linker: Linker) -> None:
    assert ("item", "anything-else-2003") in linked(linker, 'I liked "Anything Else" by Woody Allen')
    assert ("item", "it-2017") in linked(linker, "did you see It (2017)?")
    assert ("item", "2012-2009") in linked(linker, "2012 (2009) was silly")


def test_resolve_forgives_typos_years_and_articles(linker: Linker) -> None:
    index = linker.index
    assert index.resolve("Gladiator", 1992).id == "gladiator-1992"
    assert index.resolve("Gladiator (2000)").id == "gladiator-2000"
    assert index.resolve("Matrix, The (1999)").id == "the-matrix-1999"
    assert index.resolve("Jurasic Park").id == "jurassic-park-1993"
    assert index.resolve("Gladiator", 1950) is None
    assert index.resolve("Qzxv Wplk") is None
    assert index.person("jim carey") == "Jim Carrey"
    assert title_key("Rocky II") == title_key("rocky 2")


def test_popularity_picks_between_namesakes() -> None:
    items = [Item("a", "Crash", 1996, popularity=2.0), Item("b", "Crash", 2004, popularity=40.0)]
    index = TitleIndex(Catalog(items), PhraseStats())
    assert index.resolve("Crash").id == "b"
    assert index.resolve("Crash", 1996).id == "a"


def test_phrase_counts_guard_titles_of_a_custom_catalog() -> None:
    items = [Item("x", "Anything Else", 2003), Item("y", "Nebraska", 2013)]
    counts = PhraseStats(plain={"anything else": 20}, marked={})
    linker = Linker(Catalog(items), TitleIndex(Catalog(items), counts))
    assert linked(linker, "anything else?") == set()
    assert linked(linker, "I liked Nebraska") == {("item", "y")}

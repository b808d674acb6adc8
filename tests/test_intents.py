from __future__ import annotations

import pytest

from crs.catalog import Catalog, director_of
from crs.policy import decide
from crs.reply.answers import answer_facts, explanation
from crs.state import BeliefState, Preference, apply
from crs.understand.intents import read_intent
from crs.understand.linker import Linker
from crs.understand.message import Understander

SHOWN = BeliefState(last_shown=("aliens-1986", "paul-2011"))


@pytest.mark.parametrize(
    ("text", "kind", "item", "about"),
    [
        ("who directed Alien?", "question", "alien-1979", "director"),
        ("What is Heat about?", "question", "heat-1995", "plot"),
        ("who stars in Titanic?", "question", "titanic-1997", "cast"),
        ("when was Jaws released?", "question", "jaws-1975", "year"),
        ("tell me about The Matrix", "question", "the-matrix-1999", "general"),
        ("why did you recommend Aliens?", "explain", "aliens-1986", "general"),
        ("why that one?", "explain", "aliens-1986", "general"),
        ("I loved Alien", "none", None, "general"),
    ],
)
def test_questions_and_explanations(text: str, kind: str, item: str | None, about: str, linker: Linker) -> None:
    intent = read_intent(text, linker, SHOWN, 2)
    assert (intent.kind, intent.item_id, intent.about) == (kind, item, about)


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        ("nothing before 1980 please", {"year_min": 1980}),
        ("films after 2000 but before 2010", {"year_min": 2001, "year_max": 2009}),
        ("nothing after 1999", {"year_max": 1999}),
        ("since 1995", {"year_min": 1995}),
        ("something from the 90s", {"year_min": 1990, "year_max": 1999}),
        ("comedies from the eighties", {"year_min": 1980, "year_max": 1989}),
        ("something newer", {"year_min": 2012}),  # newer than the newest shown (Paul, 2011)
        ("older ones please", {"year_max": 1985}),
        ("a thriller", {}),
    ],
)
def test_year_constraints(text: str, bounds: dict[str, int], linker: Linker) -> None:
    update = read_intent(text, linker, SHOWN, 2).update
    assert {c.kind: c.value for c in update.constraints} == bounds


def test_critiques(linker: Linker) -> None:
    prefs = lambda text: {(p.kind, p.value, p.polarity) for p in read_intent(text, linker, SHOWN, 2).update.preferences}  # noqa: E731
    assert prefs("less violent please") == {("keyword", "violent", -1)}
    assert prefs("funnier") == {("genre", "Comedy", 1)}
    # Reactions to a shown film are read here and applied to the film they point at by the Understander.
    assert read_intent("not that one", linker, SHOWN, 2).reaction == "reject"
    assert read_intent("not that one", linker, BeliefState(), 1).reaction is None
    assert read_intent("I'll watch it", linker, SHOWN, 2).reaction == "accept"
    understander = Understander(linker)
    assert understander.read("not that one", SHOWN, 2).update.disliked_keys() == {("item", "aliens-1986")}
    assert understander.read("I'll watch it", SHOWN, 2).update.accepted == ("aliens-1986",)


def test_policy_acts(linker: Linker) -> None:
    understander = Understander(linker)

    def act(text: str, belief: BeliefState) -> str:
        reading = understander.read(text, belief, 1)
        return decide(apply(belief, reading.update), reading).kind

    assert act("who directed Alien?", BeliefState()) == "answer"
    assert act("something newer", SHOWN) == "recommend"
    assert act("something newer", BeliefState()) == "ask"
    assert act("hello there", BeliefState()) == "ask"
    assert act("what's the second one about?", SHOWN) == "answer"
    assert act("I'll watch it", SHOWN) == "acknowledge"


def test_answers_come_from_the_record(catalog: Catalog) -> None:
    assert director_of(catalog["alien-1979"].summary) == "Ridley Scott"
    assert director_of(catalog["titanic-1997"].summary) == "James Cameron"  # "directed, written, produced ... by"
    assert director_of(catalog["heat-1995"].summary) == "Michael Mann"
    facts = answer_facts(catalog["titanic-1997"], "cast")
    assert (
        facts.text.startswith("Titanic (1997) stars Leonardo DiCaprio, Kate Winslet")
        and facts.key == "Leonardo DiCaprio"
    )
    assert answer_facts(catalog["jaws-1975"], "year").text == "Jaws came out in 1975."
    assert answer_facts(catalog["jaws-1975"], "plot").text.startswith("Jaws is a 1975 American thriller")


def test_explanation_names_matching_likes(catalog: Catalog) -> None:
    belief = BeliefState(
        preferences=(
            Preference("genre", "Thriller", 1),
            Preference("item", "alien-1979", 1),
            Preference("genre", "Horror", -1),
        )
    )
    text = explanation(catalog["seven-1995"], belief, catalog)
    assert text == "I picked Seven (1995) because it is a thriller film, as you asked. Also, it has no horror."
    fan = BeliefState(preferences=(Preference("person", "Ridley Scott", 1),))
    assert explanation(catalog["alien-1979"], fan, catalog) == (
        "I picked Alien (1979) because Ridley Scott directed it, and you asked for their films."
    )


def test_topic_shift_and_forget(linker: Linker) -> None:
    from crs.state import apply
    from crs.understand.intents import shift_topic, without_forgotten
    from crs.understand.nlu import understand

    before = BeliefState(preferences=(Preference("genre", "Thriller", 1), Preference("item", "heat-1995", 1)))
    text = "actually, let's do comedies instead"
    intent = read_intent(text, linker, before, 2)
    assert intent.shift
    after = apply(before, shift_topic(understand(text, linker, 2).merged(intent.update), before))
    assert after.liked_genres == ["Comedy"] and after.liked_items == []
    assert "heat-1995" in after.excluded_items  # a film they liked is still never recommended
    forget = read_intent("forget horror, I'd rather watch something romantic", linker, before, 2)
    assert ("genre", "Horror") in forget.update.retract
    assert "horror" not in without_forgotten("forget horror, I'd rather watch something romantic")
    boring = "westerns are boring actually. Let's do musicals"
    b2 = BeliefState(preferences=(Preference("genre", "Western", 1),))
    i2 = read_intent(boring, linker, b2, 2)
    after2 = apply(b2, shift_topic(understand(boring, linker, 2).merged(i2.update), b2))
    assert after2.disliked_genres == ["Western"] and after2.liked_genres == ["Musical"]


def test_newer_than_a_pick_from_the_latest_year_still_leaves_films(linker: Linker) -> None:
    # One pick is from the catalog's newest years: "newer than all" would leave nothing, so
    # "newer" means newer than most of the picks.
    recent = next(i.id for i in linker.catalog if i.year == 2023)
    shown = BeliefState(last_shown=("aliens-1986", "paul-2011", recent))
    (constraint,) = read_intent("something newer", linker, shown, 2).update.constraints
    assert constraint.kind == "year_min" and constraint.value == 2012

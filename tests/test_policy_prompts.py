from __future__ import annotations

import pytest

from crs.catalog import Item
from crs.policy import decide
from crs.prompts import PromptError, Prompts
from crs.state import BeliefState, Preference


def test_asks_when_nothing_is_known() -> None:
    assert decide(BeliefState(), "recommend me something please").kind == "ask"
    assert decide(BeliefState(), "hi").kind == "ask"
    assert decide(BeliefState(), "a movie about space pirates").kind == "recommend"
    liked = BeliefState(preferences=(Preference("genre", "Horror", 1),))
    assert decide(liked, "more please").kind == "recommend"


# Variables each template is rendered with; a new template must be added here.
ITEM = Item("alien-1979", "Alien", 1979, ("Horror",), summary="A crew meets a monster.")
VARIABLES = {
    "recommend": {"message": "hi", "top": ITEM, "blurb": "A crew meets a monster.", "profile": "likes Horror"},
    "profile_block": {"items": ["Alien (1979) [Horror]: 5/5", "Titanic (1997) [Romance]: 1/5"]},
    "profile_merge": {"summaries": ["Likes horror.", "Dislikes romance."]},
    "profile_recurrent": {"summary": "Likes horror.", "items": ["Heat (1995) [Crime]: 4/5"]},
    "ask": {"message": "hi", "genres": ["Drama", "Comedy"]},
    "extract": {"message": 'I said "hi"'},
    "answer": {"question": "who directed it?", "facts": "Title: Alien (1979)", "answer": "Ridley Scott directed it."},
    "explain": {"question": "why that one?", "item": ITEM, "reasons": ["it is Horror, which you said you like"]},
    "critique": {
        "message": "something newer",
        "change": "newer films",
        "top": ITEM,
        "blurb": "A crew meets a monster.",
    },
}


def test_every_template_renders() -> None:
    prompts = Prompts()
    assert set(prompts.names()) == set(VARIABLES), "add new templates to VARIABLES"
    for name, variables in VARIABLES.items():
        messages = prompts.render(name, **variables)
        assert messages[-1].role == "user" and messages[-1].content
        assert "{{" not in messages[-1].content


def test_missing_variable_fails_loudly() -> None:
    with pytest.raises(PromptError, match="'top' is undefined"):
        Prompts().render("recommend", message="x", blurb="y")
    with pytest.raises(PromptError, match="no prompt template"):
        Prompts().render("nope")

from __future__ import annotations

import pytest

from crs.catalog import Item
from crs.llm.prompts import PromptError, Prompts
from crs.policy import decide
from crs.state import BeliefState, Preference, apply
from crs.understand.linker import Linker
from crs.understand.message import Understander


def test_asks_when_nothing_is_known(linker: Linker) -> None:
    understander = Understander(linker)

    def act(text: str, belief: BeliefState = BeliefState()) -> str:  # noqa: B008
        reading = understander.read(text, belief, 1)
        return decide(apply(belief, reading.update), reading).kind

    assert act("recommend me something please") == "ask"
    assert act("hi") == "ask"
    assert act("something for friday night") == "ask"  # when and with whom says nothing about taste
    assert act("a movie about space pirates") == "recommend"
    liked = BeliefState(preferences=(Preference("genre", "Horror", 1),))
    assert act("more please", liked) == "recommend"
    reading = understander.read("a comedy", BeliefState(), 1)
    assert decide(BeliefState(), reading, found=0).kind == "no_results"
    assert decide(BeliefState(), reading, profile_request="show").kind == "show_profile"


# Variables each template is rendered with; a new template must be added here.
ITEM = Item("alien-1979", "Alien", 1979, ("Horror",), summary="A crew meets a monster.")
VARIABLES = {
    "reply": {
        "act": "recommend",
        "message": "hi",
        "likes": ["Alien (1979)", "Horror"],
        "dislikes": ["Romance"],
        "films": ["Aliens (1986); genres Horror"],
        "note": "",
        "profile": "likes Horror",
    },
    "profile_phrase": {
        "likes": ["Horror"],
        "loved": ["Alien (1979)"],
        "dislikes": ["Romance"],
        "plain": "You most often enjoy Horror films, such as Alien (1979). You tend to dislike Romance films.",
    },
    "extract": {"message": 'I said "hi"'},
    "answer": {"question": "who directed it?", "facts": "Title: Alien (1979)", "answer": "Ridley Scott directed it."},
    "explain": {"question": "why that one?", "item": ITEM, "reasons": ["it is Horror, which you said you like"]},
}


def test_every_template_renders() -> None:
    prompts = Prompts()
    assert set(prompts.names()) == set(VARIABLES), "add new templates to VARIABLES"
    for name, variables in VARIABLES.items():
        messages = prompts.render(name, **variables)
        assert messages[-1].role == "user" and messages[-1].content
        assert "{{" not in messages[-1].content


def test_missing_variable_fails_loudly() -> None:
    with pytest.raises(PromptError, match="'films' is undefined"):
        Prompts().render("reply", act="ask", message="x", likes=[], dislikes=[], note="", profile="")
    with pytest.raises(PromptError, match="no prompt template"):
        Prompts().render("nope")

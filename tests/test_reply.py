"""What replies are built from: the writer's fact lines and examples, the questions, and the adapter
merged into the local model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crs.catalog import Catalog
from crs.llm.prompts import Prompts
from crs.reply import compose
from crs.reply.writer_data import fact_line, well_grounded, writer_examples
from crs.state import BeliefState, BeliefUpdate, Preference
from crs.understand.intents import Intent
from crs.understand.linker import Linker


def test_fact_line_holds_only_the_record(catalog: Catalog) -> None:
    line = fact_line(catalog["heat-1995"])
    assert line.startswith("Heat (1995); genres Crime, Drama, Action; starring Al Pacino")
    assert "directed by Michael Mann" in line and "LAPD detective" in line
    assert fact_line(catalog["heat-1995"], brief=True) == "Heat (1995); genres Crime, Drama, Action"


def test_questions_ask_for_what_is_missing(catalog: Catalog) -> None:
    empty = BeliefState()
    assert compose.missing(empty) == "taste"
    asked = {compose.ask_question(empty, catalog, turn) for turn in range(3)}
    assert len(asked) == 3  # varied, not the same sentence each time
    genre = BeliefState(preferences=(Preference("genre", "Horror", 1),))
    assert compose.missing(genre) == "film" and "a film they loved" in compose.ask_note(genre)


def test_a_rejection_this_turn_asks_what_was_wrong(catalog: Catalog) -> None:
    belief = BeliefState(preferences=(Preference("item", "heat-1995", -1, turn=3),), shown=("heat-1995",))
    assert (
        compose.recommend_note(Intent(), belief, catalog, 3)
        == "they turned down Heat (1995); ask what they did not like about it"
    )
    assert (
        compose.why_not_question(Intent(), belief, catalog, 3)
        == "What put you off Heat (1995), so I can steer away from it?"
    )
    assert compose.recommend_note(Intent(), belief, catalog, 4) == ""
    named = BeliefState(preferences=belief.preferences)  # "didn't care for Heat": named, never shown
    assert (
        compose.recommend_note(Intent(), named, catalog, 3)
        == compose.why_not_question(Intent(), named, catalog, 3)
        == ""
    )
    asked = BeliefState(preferences=belief.preferences, shown=belief.shown, focus="heat-1995")  # asked already
    assert compose.why_not_question(Intent(), asked, catalog, 3) == ""
    critique = Intent(critique=True, update=BeliefUpdate(preferences=(Preference("genre", "Comedy", 1),)))
    assert compose.recommend_note(critique, belief, catalog, 3) == "they asked for more Comedy than the last picks"


def test_writer_examples_come_from_real_turns(linker: Linker) -> None:
    dialogue = {
        "conversationId": "1",
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"10": "Alien (1979)", "11": "Heat (1995)"},
        "initiatorQuestions": {},
        "messages": [
            {"senderWorkerId": 2, "text": "Hi! What kind of movies do you like?"},
            {"senderWorkerId": 1, "text": "I loved @10 and anything scary"},
            {"senderWorkerId": 2, "text": "You should see @11 , it is a great heist film with Al Pacino."},
        ],
    }
    labels = {"1:1": {"movies": {"10": "like"}, "other": [["scary", "like"]]}}
    (ex,) = writer_examples([dialogue], linker.index, labels)
    assert ex.act == "recommend" and ex.likes == ("Alien (1979)", "scary")
    assert ex.message == "I loved Alien (1979) and anything scary"
    assert ex.target == "You should see Heat (1995) , it is a great heist film with Al Pacino."
    assert ex.films[0].startswith("Heat (1995)") and ex.item_ids == ("heat-1995",)
    assert well_grounded(ex, linker)
    rendered = Prompts().render("reply", **ex.variables())[-1].content
    assert "Film 1: Heat (1995)" in rendered and 'User: "I loved Alien (1979)' in rendered
    invented = dataclasses.replace(ex, target="You should see Heat (1995), or The Midnight Zebra Returns tonight.")
    assert not well_grounded(invented, linker)
    assert not well_grounded(dataclasses.replace(ex, target="The user wants Heat (1995) now."), linker)


@pytest.mark.slow
def test_the_adapter_is_merged_into_the_local_model(local_llm, tmp_path: Path) -> None:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model

    from crs.llm.base import LLMError, Message
    from crs.llm.local import LocalChatModel
    from tests.conftest import test_config

    peft_model = get_peft_model(local_llm.model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(str(tmp_path / "writer"))
    local_llm.model = peft_model.unload()  # leave the shared fixture as it was
    cfg = test_config(tmp_path, llm={"adapter": str(tmp_path / "writer")})
    tuned = LocalChatModel(cfg)
    assert tuned.adapter == tmp_path / "writer" and "+writer" in tuned.name
    assert isinstance(tuned.generate([Message("user", "hi")], max_new_tokens=4), str)
    with pytest.raises(LLMError, match="no adapter_config.json"):
        LocalChatModel(test_config(tmp_path, llm={"adapter": str(tmp_path)}))

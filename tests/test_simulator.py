"""The user simulator: the leakage check, the rule-based user's messages (never the target's
title, always something the agent reads), the LLM rewording's fallbacks, and whole simulated
dialogues with a real agent (real Chroma store and embedder, scripted LLM)."""

from __future__ import annotations

import importlib
import json
import random
from pathlib import Path

import pytest

from crs.agent import Agent
from crs.catalog import Catalog, Item
from crs.eval.sim_users import RulesUser, Say, Utterance, leaks_target, llm_prompt, llm_utterance
from crs.eval.simulator import pick_targets, run_simulation
from crs.llm.scripted import ScriptedChatModel
from crs.understand.linker import Linker
from crs.understand.nlu import understand
from tests.conftest import test_config

ALIEN = Item("alien-1979", "Alien", 1979, ("Horror", "Science Fiction"), ("Sigourney Weaver", "Tom Skerritt"))
TOP_LEVEL = {"success_rate", "avg_turns", "recall@1", "recall@10", "violations", "success_by_turn", "n_targets"}


# ---- the leakage check ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utterance", "title", "leaks"),
    [
        ("I want Alien", "Alien", True),
        ("something like ALIEN please", "Alien", True),
        ("Something like Aliens.", "Alien", True),  # a near-copy: an inflection
        ("I'm looking for an alien movie.", "Aliens", True),
        ("Something with Sigourney Weaver.", "Alien", False),
        ("I'm looking for a science fiction movie.", "Alien", False),
        ("Something from the 1970s.", "Alien", False),
        ("No romance.", "Alien", False),
        ("a film about lambs", "The Silence of the Lambs", True),  # a distinctive word
        ("silence and lambs", "The Silence of the Lambs", True),
        ("a star is born", "Star Wars", False),  # half the words, and short ones
        ("star wars fans", "Star Wars", True),
        ("I loved Heat!", "Heat", True),
        ("Something with Al Pacino.", "Heat", False),
        ("Something with Tom Hanks.", "Big", False),
        ("Something big.", "Big", True),
        ("The Lord of the Rings", "Lord of the Rings: The Fellowship of the Ring", True),  # 60%
        ("I'm looking for a comedy movie.", "Scary Movie", False),  # "movie" is no title word
        ("", "Alien", False),
    ],
)
def test_leaks_target(utterance: str, title: str, leaks: bool) -> None:
    assert leaks_target(utterance, title) is leaks
    assert leaks_target(utterance, Item("x", title)) is leaks


def test_cast_and_genres_that_name_the_target_are_never_said() -> None:
    target = Item("sigourney", "Sigourney", 1990, ("Horror", "Drama"), ("Sigourney Weaver", "Tom Skerritt"))
    user = RulesUser(target, random.Random(0))
    assert user.cast == ["Tom Skerritt"]
    express = Item("he", "Horror Express", 1972, ("Horror", "Science Fiction"), ("Christopher Lee", "Peter Cushing"))
    user = RulesUser(express, random.Random(0))
    assert user.opening().text == "I'm looking for a science fiction movie."
    assert not any("horror" in s.casefold() for s in user.possible_sentences(["Horror", "Comedy"]))


# ---- the rule-based user --------------------------------------------------------------------


def test_the_rules_user_never_leaks_over_real_items(catalog: Catalog, linker: Linker) -> None:
    """Every sentence each of 50 real targets could say, and whole dialogues against random
    recommendations (including films with similar titles), never name the target."""
    rng = random.Random(7)
    pool = [it for it in catalog if it.genres and it.year]
    targets = pick_targets(catalog.filter(1970, 380), 50, seed=3)
    genres = catalog.genres()
    for target in targets:
        user = RulesUser(target, random.Random(target.id), linker=linker)
        leaked = [s for s in user.possible_sentences(genres) if leaks_target(s, target)]
        assert not leaked, (target.label, leaked)
        words = set(target.title.casefold().split())
        similar = [it for it in pool if it.id != target.id and words & set(it.title.casefold().split())][:20]
        said = [user.opening()]
        for _ in range(6):
            shown = rng.sample(similar, min(2, len(similar))) + rng.sample(pool, 3)
            said.append(user.react("recommend", [it for it in shown if it.id != target.id]))
        assert not [u.text for u in said if leaks_target(u.text, target)], target.label


def test_the_agent_reads_what_the_rules_user_says(linker: Linker) -> None:
    heat = Item("heat-1995", "Heat", 1995, ("Crime", "Thriller"), ("Al Pacino", "Robert De Niro", "Val Kilmer"))
    user = RulesUser(heat, random.Random(1), linker=linker)
    opening = user.opening()
    update = understand(opening.text, linker)
    assert [(p.kind, p.value, p.polarity) for p in update.preferences] == [("genre", user.genres[0], 1)]

    comedy = Item("c-1980", "Airplane!", 1980, ("Comedy",), ("Leslie Nielsen", "Robert Hays"))
    reply = user.react("recommend", [comedy])
    kinds = [s.kind for s in reply.says]
    assert kinds[:2] == ["not_that", "want_genre"] and "decade" in kinds and "no_genre" in kinds
    update = understand(reply.text, linker)
    assert ("genre", "Comedy", -1) in [(p.kind, p.value, p.polarity) for p in update.preferences]
    assert not update.preferences or all(p.kind != "item" for p in update.preferences)

    accept = user.react("recommend", [comedy, heat])
    assert accept.text == "I'll watch Heat (1995)." and accept.says[0].kind == "accept"


def test_pick_targets_is_seeded_and_eligible(small_catalog: Catalog) -> None:
    first = pick_targets(small_catalog, 10, seed=1)
    assert [t.id for t in first] == [t.id for t in pick_targets(small_catalog, 10, seed=1)]
    assert [t.id for t in first] != [t.id for t in pick_targets(small_catalog, 10, seed=2)]
    assert all(t.genres and t.cast and t.year for t in first)
    assert len(pick_targets(Catalog([ALIEN, Item("x", "No Genres", 1990)]), 5, seed=0)) == 1


# ---- the LLM variant ------------------------------------------------------------------------


def test_llm_wording_is_used_only_when_clean_and_complete() -> None:
    planned = Utterance(
        "Not that one. Something from the 1970s.",
        (Say("not_that", "x", "Not that one.", "not that one"), Say("decade", "1970", "", "1970s")),
    )
    llm = ScriptedChatModel()
    llm.enqueue(
        "Hmm, not that one. Maybe something from the 1970s?",
        "Not that one, I want something like Aliens from the 1970s.",  # leaks
        "Something older, please.",  # drops the phrases the agent needs
    )
    first = llm_utterance(llm, ALIEN, planned, [])
    assert first.source == "llm" and first.text == "Hmm, not that one. Maybe something from the 1970s?"
    assert first.says == planned.says
    for _ in range(2):
        fallback = llm_utterance(llm, ALIEN, planned, [])
        assert fallback.source == "rules-fallback" and fallback.text == planned.text
    assert llm_utterance(ScriptedChatModel(), ALIEN, planned, []).source == "rules-fallback"  # LLM error
    prompt = " ".join(m.content for m in llm.calls[0])
    assert "Alien" not in prompt and "Science Fiction" in prompt and '"1970s"' in prompt
    assert llm_prompt(ALIEN, [Say("want_person", "Tom Skerritt", "", "")], ["x"])[-1].content.count("Tom Skerritt") == 1


# ---- with a real agent ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, embedder):  # noqa: ANN001, ANN201
    from crs.rank.store import ItemStore

    store = ItemStore(test_config(tmp_path_factory.mktemp("simulator")), embedder=embedder)
    store.index(small_catalog.items, progress=False)
    return store


def test_simulation_with_a_real_agent(store, catalog: Catalog, small_catalog: Catalog, tmp_path: Path) -> None:  # noqa: ANN001
    agent = Agent(test_config(tmp_path), catalog, store, ScriptedChatModel(default="Here you go."))
    targets = pick_targets(small_catalog, 8, seed=0)
    report = run_simulation(agent, targets, tmp_path / "out", max_turns=5, seed=0, progress=False)

    data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "out" / "success_by_turn.png").read_bytes()[:4] == b"\x89PNG"
    assert set(data) >= TOP_LEVEL and data["simulator"] == "rules" and data["n_targets"] == 8
    rates = [data["success_rate"], data["recall@1"], data["recall@10"], *data["success_by_turn"].values()]
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert list(data["success_by_turn"]) == ["1", "2", "3", "4", "5"]
    assert list(data["success_by_turn"].values()) == sorted(data["success_by_turn"].values())  # cumulative
    assert data["success_by_turn"]["5"] == data["success_rate"] > 0
    assert data["recall@1"] <= data["recall@10"] == data["success_rate"]  # 5 items a turn
    assert 1 <= data["avg_turns"] <= 5
    assert data["violations"] == 0
    for d in data["dialogues"]:
        assert all(not leaks_target(t["user"], d["target"].rsplit(" (", 1)[0]) for t in d["turns"])
        assert d["success"] == (d["rank"] is not None) == bool(d["closing"])
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| success rate |" in md and md.count("\n| ") >= 8 + 4
    assert report.success_rate == data["success_rate"]

    # The LLM variant: the scripted model's "Here you go." lacks the phrases, so every
    # message falls back to the rules wording, and the dialogues are the same.
    llm_report = run_simulation(agent, targets[:2], tmp_path / "llm", simulator="llm", progress=False)
    assert llm_report.simulator == "llm" and llm_report.llm_fallbacks == sum(len(d.turns) for d in llm_report.dialogues)
    assert [d.turns_used for d in llm_report.dialogues] == [d.turns_used for d in report.dialogues[:2]]
    with pytest.raises(ValueError, match="unknown simulator"):
        run_simulation(agent, targets, tmp_path / "x", simulator="gpt")  # type: ignore[arg-type]

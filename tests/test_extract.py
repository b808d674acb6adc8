from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crs.agent import Agent
from crs.catalog import Catalog
from crs.llm.prompts import Prompts
from crs.llm.scripted import ScriptedChatModel
from crs.state import Session, ToolEvent
from crs.understand.extract import ExtractionError, link_extraction, llm_extract, merge_rules_first, parse_extraction
from crs.understand.linker import Linker
from crs.understand.nlu import understand
from tests.conftest import test_config


def test_parse_valid_output_with_prose_around_it() -> None:
    raw = 'Sure! {"liked": ["Heat", " "], "disliked": ["musicals"]} Hope that helps.'
    assert parse_extraction(raw) == {"liked": ["Heat"], "disliked": ["musicals"], "seen": []}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("I think they like Heat.", "no JSON object"),
        ('{"liked": ["Heat",}', "invalid JSON"),
        ('{"liked": "Heat"}', "must be a list of strings"),
        ('{"liked": [1, 2]}', "must be a list of strings"),
        ('{"likes": ["Heat"]}', "unknown keys: likes"),
        ('{"liked": ["' + "x" * 500 + '"]}', "too long"),
    ],
)
def test_parse_rejects_what_does_not_fit_the_schema(raw: str, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        parse_extraction(raw)


def test_link_keeps_only_catalog_entities_and_rules_win(linker: Linker) -> None:
    data = {"liked": ["Heat", "The Zorblax Chronicles"], "disliked": ["musicals", "Heat"], "seen": ["Alien"]}
    update = link_extraction(data, linker, turn=3)
    assert {(p.kind, p.value, p.polarity, p.source) for p in update.preferences} == {
        ("item", "heat-1995", 1, "llm"),
        ("genre", "Musical", -1, "llm"),
        ("item", "heat-1995", -1, "llm"),
    }
    assert update.seen == ("alien-1979",)
    rules = understand("I loved Heat", linker, 3)
    merged = merge_rules_first(rules, update)
    assert [(p.value, p.polarity, p.source) for p in merged.preferences if p.value == "heat-1995"] == [
        ("heat-1995", 1, "rule")
    ]
    assert ("genre", "musical") in {p.key for p in merged.preferences}


def test_agent_merges_the_llm_reading(tmp_path: Path, small_catalog: Catalog, catalog: Catalog, embedder) -> None:  # noqa: ANN001
    from crs.rank.store import ItemStore

    cfg = test_config(tmp_path, nlu={"llm_extract": "on"})
    store = ItemStore(cfg, embedder=embedder)
    store.index([i for i in small_catalog if i.has_genre("Crime")], progress=False)
    llm = ScriptedChatModel(default="A fine pick.")
    llm.enqueue('{"liked": ["crime"], "disliked": ["Al Pacino"]}')  # the rules cannot read this message
    agent = Agent(cfg, catalog, store, llm)
    events = list(agent.step(Session(), "gimme cops and robbers, minus that Pacino guy"))
    assert any(isinstance(e, ToolEvent) and e.call.name == "extract" for e in events)
    final = events[-1]
    assert final.belief.liked_genres == ["Crime"] and final.belief.values("person", -1) == ["Al Pacino"]
    assert final.items and not [i for i in final.items if "Al Pacino" in i.cast]
    off = Agent(dataclasses.replace(cfg, nlu=dataclasses.replace(cfg.nlu, llm_extract="auto")), catalog, store, llm)
    assert not off.use_llm_extraction  # auto: only with a served LLM


@pytest.mark.slow
def test_real_local_model_extraction_is_safe(local_llm, linker: Linker) -> None:  # noqa: ANN001
    update = llm_extract("I really enjoyed Jaws but I hate horror movies", local_llm, Prompts(), linker, 1)
    # Whatever the small model says, only catalog entities come through.
    for p in update.preferences:
        assert p.kind in {"item", "genre", "person"} and p.source == "llm"
        if p.kind == "item":
            assert linker.catalog.get(p.value) is not None

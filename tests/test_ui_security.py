"""The served page under attack and under many sessions (issue 13, items 3, 7 and 8), through
the page's own API with gradio_client, the client that ships with Gradio.

The agent is real (real Chroma over a small slice of the demo catalog plus one film whose
title is an HTML attack, the real embedder, a real SQLite profile store); the LLM is a
scripted stand-in whose reply carries a script tag, since what is tested is what the page does
with such a reply, not its wording.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crs.agent import Agent
from crs.app.sessions import SUMMARY_ACT, SessionReaper, bound_turns
from crs.app.ui import FOREIGN_SESSION, launch
from crs.catalog import Catalog, Item
from crs.llm.scripted import ScriptedChatModel
from crs.profiles.db import ProfileStore
from crs.profiles.text import ProfileEdit
from crs.state import BeliefUpdate, Session, ToolCall, ToolEvent, ToolResult, Turn
from tests.conftest import free_port, test_config

EVIL_TITLE = "<img src=x onerror=alert(1)>"
EVIL_REPLY = "<script>alert('x')</script> Here is [a link](javascript:alert(1)) and ![p](http://evil.example/p.png)."


SERVE = {"auth": "ann:pw-ann,bob:pw-bob", "max_turns": 3}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, catalog: Catalog, embedder: Any) -> Agent:
    from crs.rank.store import ItemStore

    tmp = tmp_path_factory.mktemp("served")
    cfg = test_config(tmp, serve=SERVE)
    evil = Item(
        "evil-1979",
        EVIL_TITLE,
        1979,
        ("Horror", "Science Fiction"),
        summary="A crew in deep space answers a distress call and meets a deadly alien creature.",
    )
    items = Catalog([*catalog.items, evil], name="demo+evil")
    store = ItemStore(cfg, embedder=embedder)
    store.index([*small_catalog.items, evil], progress=False)
    return Agent(cfg, items, store, ScriptedChatModel(default=EVIL_REPLY), profiles=ProfileStore(tmp / "crs.db"))


def serve(agent: Agent, **settings: object) -> Iterator[tuple[str, Agent, Any]]:
    if settings:
        cfg = agent.cfg
        cfg = dataclasses.replace(cfg, serve=dataclasses.replace(cfg.serve, **settings))
        agent = Agent(cfg, agent.catalog, agent.store, agent.llm, linker=agent.linker, profiles=agent.profiles)
    port = free_port()
    served = launch(agent, "127.0.0.1", port, prevent_thread_lock=True)
    try:
        yield f"http://127.0.0.1:{port}/", agent, served.blocks
    finally:
        served.close()


@pytest.fixture(scope="module")
def served(agent: Agent) -> Iterator[tuple[str, Agent, Any]]:
    yield from serve(agent)


@pytest.fixture()
def short_lived(agent: Agent) -> Iterator[tuple[str, Agent, Any]]:
    """Sessions forgotten after 1.2 s idle, at most 20 held."""
    yield from serve(agent, session_idle_minutes=0.02, max_sessions=20)


def client(url: str, user: str) -> Any:
    from gradio_client import Client

    return Client(url, auth=(user, f"pw-{user}"), verbose=False)


def everything(outputs: object) -> str:
    return repr(outputs)


def test_bob_holding_anns_session_gets_nothing_and_writes_nothing(served: tuple[str, Agent, Any]) -> None:
    url, agent, _ = served
    profiles = agent.profiles
    ann = client(url, "ann")
    saved = ann.predict("I love westerns and Clint Eastwood. Dislikes: horror", api_name="/save_profile")
    assert saved[-1] == "Saved as version 1."
    turn = ann.predict("I loved Alien", [], api_name="/chat")
    history = turn[0]
    assert len(profiles.turns("ann")) == 1

    bob = client(url, "bob")
    bob.session_hash = ann.session_hash  # the id leaked: bob presents it with his own login
    attempts = {
        "/reload_profile": (),
        "/save_profile": ("Bob was here. Likes: musicals",),
        "/profile_version": (1,),
        "/chat": ("show my profile", []),
        "/card_0_down": (),
        "/chips_likes": ([],),
        "/new_conversation": (),
        "/load": (),
    }
    for api_name, args in attempts.items():
        out = bob.predict(*args, api_name=api_name)
        text = everything(out)
        assert FOREIGN_SESSION in text, api_name
        assert "westerns" not in text and "Clint" not in text and "Alien" not in text, api_name
    assert [p.version for p in profiles.history("ann")] == [1]  # nothing written to ann's profile
    assert profiles.get("bob") is None and profiles.turns("bob") == []
    assert len(profiles.turns("ann")) == 1  # no turn was run or logged in her name

    # Ann's conversation is untouched: her like is still there and the next turn builds on it.
    nxt = ann.predict("more like that", history, api_name="/chat")
    assert len(profiles.turns("ann")) == 2
    assert "Alien (1979)" in everything(nxt[-4])  # the "You like" chips
    # Bob in his own session is served normally, as bob.
    own = client(url, "bob")
    assert own.predict("I like musicals", api_name="/save_profile")[-1] == "Saved as version 1."
    assert profiles.get("bob").text == "I like musicals"


def test_catalog_titles_and_model_output_are_escaped_on_the_server(served: tuple[str, Agent, Any]) -> None:
    url, agent, _ = served
    ann = client(url, "ann")
    out = ann.predict("a space horror film about a crew meeting a deadly alien creature", [], api_name="/chat")
    chat, cards, chips = out[0], [c for c in out[4:9] if c], out[9:13]
    assert "&lt;img src=x onerror=alert(1)&gt;" in repr(chat)  # the title is in the reply's picks, as text
    assert any("&lt;img src=x onerror=alert(1)&gt;" in c for c in cards)  # and on a card
    page = repr(out)
    assert "<img" not in page and "<script" not in page
    assert not re.search(r"(?<!\\)\]\(", page)  # no unescaped "](": no Markdown link or image can form
    slot = next(n for n, c in enumerate(out[4:9]) if c and "evil-1979" in c)
    liked = ann.predict(api_name=f"/card_{slot}_up")  # a notice and a chip naming the title
    assert "&lt;img" in liked[0] and "<img" not in liked[0]  # the notice (Markdown) escapes it
    # The chip is a Dropdown choice, which the page shows as plain text (tests/test_browser.py checks it).
    assert any("evil-1979" in repr(c) for c in liked[-4:]) and chips is not None
    # The model's own words reach the chat escaped when the grounding guard lets them through.
    agent.llm.enqueue("<script>alert(1)</script> enjoy it")
    again = ann.predict("another space horror film", out[0], api_name="/chat")
    assert "<script" not in repr(again[0])


def test_turns_are_bounded_and_idle_sessions_expire(short_lived: tuple[str, Agent, Any]) -> None:
    url, agent, demo = short_lived
    ann = client(url, "ann")
    history: list = []
    for text in ("I loved Alien", "something with Tom Hanks", "forget Tom Hanks", "a comedy", "a western"):
        history = ann.predict(text, history, api_name="/chat")[0]
    assert len(history) <= 2 * agent.cfg.serve.max_turns  # the chat shows the last max_turns exchanges
    session = demo.state_holder.session_data[ann.session_hash]
    sess = next(v for v in session.state_data.values() if isinstance(v, Session))
    assert len(sess.turns) == agent.cfg.serve.max_turns + 1 and sess.turns[0].act == SUMMARY_ACT

    # Open many sessions and abandon them: never more than max_sessions are held ...
    opener = client(url, "ann")
    for _ in range(3 * agent.cfg.serve.max_sessions):
        opener.session_hash = uuid.uuid4().hex
        opener.predict(api_name="/card_0_up")
    assert len(demo.state_holder.session_data) <= agent.cfg.serve.max_sessions
    queue = demo._queue
    grown = len(queue.pending_messages_per_session), len(queue.pending_event_ids_session)
    # ... and once they have been idle past session_idle_minutes (1.2 s here), they go.
    time.sleep(agent.cfg.serve.session_idle_minutes * 60 + 1.5)
    opener.session_hash = uuid.uuid4().hex
    opener.predict(api_name="/card_0_up")
    assert len(demo.state_holder.session_data) <= 2
    # Gradio's per-session queue maps (only cleared on a disconnect mid-event) go with them.
    assert max(grown) < 3 * agent.cfg.serve.max_sessions  # reaped while they were opened, too
    assert len(queue.pending_messages_per_session) <= 2 and len(queue.pending_event_ids_session) <= 2
    # The page that outlived its session is told so, and goes on with a fresh one.
    out = ann.predict("a thriller", history, api_name="/chat")
    assert "idle for more than" in everything(out[0][-1])


def _turn(n: int, retract: tuple[tuple[str, str], ...] = (), output: object = "big") -> Turn:
    event = ToolEvent(ToolCall("retrieve", {}), ToolResult("retrieve", output, "50 candidates"))
    return Turn(n, f"message {n}", "reply", "recommend", ("a",), BeliefUpdate(retract=retract), (event,))


def test_bound_turns_keeps_what_later_turns_need() -> None:
    from crs.profiles.text import suppressed_keys

    edit = ProfileEdit("ann", "add that I like horror", ("horror",), (), (), (("genre", "horror"),), None, "ok")
    session = Session(turns=[_turn(1, (("genre", "horror"),)), _turn(2, (("person", "tom hanks"),))])
    session.turns.append(
        Turn(
            3,
            "add horror",
            "ok",
            "edit_profile",
            (),
            BeliefUpdate(),
            (ToolEvent(ToolCall("edit_profile", {}), ToolResult("edit_profile", edit, "ok")),),
            lifted=edit.keys,
        )
    )
    session.turns += [_turn(n) for n in range(4, 9)]
    before = suppressed_keys(session.turns, BeliefUpdate())
    bound_turns(session, 3)
    assert [t.index for t in session.turns] == [5, 6, 7, 8] and session.turns[0].act == SUMMARY_ACT
    assert suppressed_keys(session.turns, BeliefUpdate()) == before == {("person", "tom hanks")}
    assert session.turns[-1].tools[0].result.output == "big" and session.turns[1].tools[0].result.output is None
    for n in range(9, 30):  # it stays bounded, folding into the one summary
        session.turns.append(_turn(n))
        bound_turns(session, 3)
    assert len(session.turns) == 4 and suppressed_keys(session.turns, BeliefUpdate()) == before


def test_reaper_is_throttled_and_survives_a_missing_holder() -> None:
    reaper = SessionReaper(idle_seconds=0.0, interval=3600)
    assert reaper.reap(None) == 0

    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.session_data = {"a": 1, "b": 2}
            self.time_last_used = {
                "a": datetime.now() - timedelta(seconds=5),
                "b": datetime.now() - timedelta(seconds=5),
            }
            self.deleted: list[str] = []

        def delete_state(self, sid: str) -> None:
            self.deleted.append(sid)

    holder = Holder()
    assert reaper.reap(holder) == 2 and holder.session_data == {} and holder.deleted == ["a", "b"]
    holder.session_data["c"] = 3
    holder.time_last_used["c"] = datetime(2000, 1, 1)
    assert reaper.reap(holder) == 0  # throttled: once per interval
    assert reaper.reap(holder, force=True) == 1

    # Queue entries of sessions the holder evicted on its own (past its capacity, so never idle
    # in its books) go too, unless an event of theirs is still pending.
    holder.session_data["d"] = 4
    holder.time_last_used["d"] = datetime.now() + timedelta(hours=1)  # not idle
    messages = {"d": "queue", "evicted": "queue", "queued": "queue"}
    event_ids = {"d": set(), "evicted": set(), "queued": {"event-1"}}
    reaper.reap(holder, force=True, per_session=[messages, event_ids], busy=lambda sid: bool(event_ids.get(sid)))
    assert set(messages) == {"d", "queued"} and set(event_ids) == {"d", "queued"}


def test_store_failure_mid_turn_is_a_clear_notice(
    served: tuple[str, Agent, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crs.app.ui import respond
    from crs.rank.metadata import StoreError

    _, agent, _ = served

    def broken(*args: object, **kwargs: object) -> object:
        raise StoreError("the item index at /x is damaged (query: boom); rebuild it with `crs index --rebuild`")

    monkeypatch.setattr(agent.store, "search", broken)
    view = list(respond(agent, "I loved Alien", [], None))[-1]
    message = view.history[-1]["content"]
    assert view.final and "The item index failed" in message and "crs index --rebuild" in message


def test_config_rejects_unbounded_sessions(tmp_path: Path) -> None:
    from crs.app.cli import main

    for env in (
        {"CRS_SERVE__MAX_SESSIONS": "0"},
        {"CRS_SERVE__MAX_TURNS": "0"},
        {"CRS_SERVE__SESSION_IDLE_MINUTES": "0"},
    ):
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            assert main(["serve"]) == 2

from __future__ import annotations

import re
import socket
import urllib.request
from pathlib import Path

import pytest

from crs.agent import Agent
from crs.app.ui import build_app, card_action, load_profile, parse_auth, respond, save_profile, user_of
from crs.app.ui_render import card_html, compose_message, profile_history
from crs.catalog import Catalog, Item
from crs.config import ConfigError
from crs.llm.scripted import ScriptedChatModel
from crs.state import Session
from tests.conftest import test_config


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, catalog: Catalog, embedder) -> Agent:  # noqa: ANN001
    from crs.rank.store import ItemStore

    cfg = test_config(tmp_path_factory.mktemp("ui"))
    store = ItemStore(cfg, embedder=embedder)
    store.index(small_catalog.items, progress=False)
    return Agent(cfg, catalog, store, ScriptedChatModel(default="Here are a few films you may like."))


def test_app_builds_without_launching(agent: Agent) -> None:
    import gradio as gr
    from gradio.utils import get_type_hints

    demo = build_app(agent)
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    slots = agent.cfg.retrieval.show
    expected = {"crs-chat", "crs-input", "crs-new", "crs-likes", "crs-dislikes", "crs-seen", "crs-limits"}
    expected |= {"crs-profile-text", "crs-profile-save", "crs-profile-history"}
    expected |= {f"crs-card-{i}{s}" for i in range(slots) for s in ("", "-up", "-down", "-seen")}
    assert expected <= ids
    # Every handler that needs the logged-in user gets the request injected by Gradio.
    takes_request = [f.fn for f in demo.fns.values() if f.fn and "request" in f.fn.__code__.co_varnames]
    assert len(takes_request) >= 3 * slots
    assert all(get_type_hints(fn).get("request") is gr.Request for fn in takes_request)
    # Chat turns share a concurrency limit; the quick buttons never wait behind a turn.
    turns = [f for f in demo.fns.values() if f.fn and f.fn.__name__ == "on_message"]
    assert len(turns) == 3 and {f.concurrency_id for f in turns} == {"turn"}
    assert {f.concurrency_limit for f in turns} == {agent.cfg.serve.concurrency}
    quick = [f for f in demo.fns.values() if f.fn and f.fn.__name__ == "handler"]
    assert len(quick) == 3 * slots + 4 and all(f.concurrency_limit is None for f in quick)
    assert demo._queue.max_size == agent.cfg.serve.max_queue


def test_respond_streams_history_cards_and_belief(agent: Agent) -> None:
    views, lengths = [], []
    for view in respond(agent, "I loved Alien but no romance please", [], None):
        views.append(view)
        lengths.append(len(view.history[-1]["content"]))  # the same list is updated in place
    final = views[-1]
    assert final.final and isinstance(final.session, Session)
    assert final.history[0] == {"role": "user", "content": "I loved Alien but no romance please"}
    assert "Here are a few films" in final.history[-1]["content"]
    assert "<details><summary>Tool steps" in final.history[-1]["content"]
    assert len(final.cards) >= 3 and final.cards == final.session.turns[-1].item_ids
    assert any(v.belief is not None and not v.final for v in views)  # the belief is shown before the reply
    assert len(set(lengths)) >= 3 and lengths == sorted(lengths)  # the reply streams in, growing
    assert "alien-1979" in final.session.belief.liked_items and "Romance" in final.session.belief.disliked_genres
    # Another tab gets its own session.
    other = list(respond(agent, "hello", [], None))[-1].session
    assert other is not final.session and other.belief.preferences == ()


def test_card_buttons_change_only_that_sessions_belief(agent: Agent) -> None:
    session = list(respond(agent, "I loved Alien", [], None))[-1].session
    cards = session.turns[-1].item_ids
    other = Session(id="other")
    assert card_action(session, cards, 1, "down") == (cards[1], "down")
    assert cards[1] in session.belief.disliked_items and other.belief.preferences == ()
    assert session.belief.preferences[-1].source == "ui"
    card_action(session, cards, 0, "seen")
    assert cards[0] in session.belief.seen
    # The next turn never recommends them again.
    nxt = list(respond(agent, "more like that please", [], session))[-1]
    assert not {cards[0], cards[1]} & set(nxt.cards)
    # A click on an empty slot (a stale page) changes nothing.
    before = session.belief
    assert card_action(session, cards, 99, "up") == ("", "") and session.belief == before


def test_respond_survives_a_crashing_agent(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(agent, "step", boom)
    view = list(respond(agent, "hi", [], None))[-1]
    assert "something went wrong" in view.history[-1]["content"] and view.final


def test_cards_and_messages_escape_html() -> None:
    item = Item("x", "<script>alert(1)</script>", 2000, url="javascript:alert(1)", genres=("<b>",))
    html_text = card_html(item, "<img src=x onerror=alert(1)>")
    assert "<script>" not in html_text and "javascript:" not in html_text and "<img" not in html_text
    assert "<b>" not in html_text
    assert "<script>" not in compose_message("ok", ["<script>"], ["<script>x</script>"])
    # The reply (model output naming catalog titles) is text too: no HTML, no Markdown link or image.
    shown = compose_message(
        "<script>x</script> [go](javascript:alert(1)) ![i](http://e/i.png)\n1. Alien (1979)", [], []
    )
    assert "<script>" not in shown and not re.search(r"(?<!\\)\]\(|(?<!\\)!(?<!\\)\[", shown)  # no unescaped ]( or ![
    assert "&lt;script&gt;" in shown and "\n1. Alien (1979)" in shown  # still readable, lists still lists


def test_parse_auth_and_user_of() -> None:
    assert parse_auth("") == [] and parse_auth(" , ") == []
    assert parse_auth("ann:s3cret, bob:pa:ss") == [("ann", "s3cret"), ("bob", "pa:ss")]
    for bad in ("ann", "ann:", ":pw", "ann:x,ann:y"):
        with pytest.raises(ConfigError):
            parse_auth(bad)
    with pytest.raises(ConfigError) as err:
        parse_auth("ann:topsecret,broken")
    assert "topsecret" not in str(err.value)

    class Req:
        username = "ann"

    assert user_of(Req()) == "ann" and user_of(None) == "local"


def test_profile_tab_without_a_store_says_so(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "profiles", None, raising=False)
    text, status, table, choices = load_profile(agent, "ann")
    assert "not available" in status and choices == [] and text == ""
    assert "not available" in save_profile(agent, "ann", "I like heist films")


def test_profile_history_table_escapes_and_orders() -> None:
    from crs.profiles.text import Profile

    versions = [
        Profile("ann", "likes | pipes <b>", 1, "2026-01-01T00:00:00Z", "edit:ui"),
        Profile("ann", "second", 2, "2026-01-02T00:00:00Z", "edit:chat"),
    ]
    table = profile_history(versions)
    lines = table.splitlines()
    assert lines[2].startswith("| 2 |") and lines[3].startswith("| 1 |")
    assert "<b>" not in table and "&#124;" in table


def test_save_profile_validates_before_the_store(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    class Store:
        saved: list = []

        def save(self, user: str, text: str, source: str) -> object:
            self.saved.append((user, text, source))
            raise ValueError("too long for the store")

    monkeypatch.setattr(agent, "profiles", Store(), raising=False)
    assert "empty" in save_profile(agent, "ann", "   ")
    assert "limit" in save_profile(agent, "ann", "x" * 100_000)
    assert save_profile(agent, "ann", "I like heist films") == "Not saved: too long for the store"
    assert Store.saved == [("ann", "I like heist films", "edit:ui")]


def test_launch_serves_the_page(agent: Agent, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(agent)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200
            assert b"crs" in resp.read()
    finally:
        demo.close()


def test_serve_rejects_bad_settings_before_loading_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crs.app.cli import main

    assert main(["serve", "--max-queue", "0"]) == 2
    assert "crs: error: [serve] max_queue = 0: must be at least 1" in capsys.readouterr().err
    monkeypatch.setenv("CRS_SERVE__AUTH", "ann:secret-pw,bob")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crs: error: [serve] auth") and "secret-pw" not in err

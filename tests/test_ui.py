from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from crs.agent import Agent
from crs.catalog import Catalog, Item
from crs.llm import ScriptedChatModel
from crs.state import Session
from crs.ui import build_app, render_cards, respond
from tests.conftest import test_config


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, catalog: Catalog, embedder) -> Agent:  # noqa: ANN001
    from crs.store import ItemStore

    cfg = test_config(tmp_path_factory.mktemp("ui"))
    store = ItemStore(cfg, embedder=embedder)
    store.index(small_catalog.items, progress=False)
    return Agent(cfg, catalog, store, ScriptedChatModel(default="Here are a few films you may like."))


def test_app_builds_without_launching(agent: Agent) -> None:
    import gradio as gr

    demo = build_app(agent)
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"crs-chat", "crs-input", "crs-cards", "crs-belief", "crs-new"} <= ids


def test_respond_streams_history_cards_and_belief(agent: Agent) -> None:
    outputs = list(respond(agent, "I loved Alien but no romance please", [], None))
    history, cards, belief, session, textbox = outputs[-1]
    assert isinstance(session, Session) and textbox == ""
    assert history[0] == {"role": "user", "content": "I loved Alien but no romance please"}
    assert "Here are a few films" in history[-1]["content"]
    assert "Tool steps" in history[-1]["content"]
    shown = session.turns[-1].item_ids
    assert len(shown) >= 3 and all(f'data-item-id="{i}"' in cards for i in shown)
    assert "https://en.wikipedia.org/wiki/" in cards
    assert "Alien (1979)" in belief and "Romance" in belief
    # Another tab gets its own session.
    other = list(respond(agent, "hello", [], None))[-1][3]
    assert other is not session and other.belief.preferences == ()


def test_respond_survives_a_crashing_agent(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(agent, "step", boom)
    history = list(respond(agent, "hi", [], None))[-1][0]
    assert "something went wrong" in history[-1]["content"]


def test_cards_escape_html() -> None:
    html_text = render_cards([Item("x", "<script>alert(1)</script>", 2000, url="javascript:alert(1)")])
    assert "<script>" not in html_text and "javascript:" not in html_text


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

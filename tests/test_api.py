"""The HTTP API of ``crs serve``, on a real server (uvicorn, the page mounted beside it), called with the
official ``openai`` client and with plain HTTP: the real Chroma store and embedder over a slice of the
demo catalog, a scripted LLM (the reply's wording is not what is tested here)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crs.agent import Agent
from crs.app.ui import launch
from crs.catalog import Catalog
from crs.llm.scripted import ScriptedChatModel
from crs.profiles.db import ProfileStore
from tests.conftest import free_port, test_config

openai = pytest.importorskip("openai")
LOGINS = "ann:pw-ann,bob:pw-bob"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, catalog: Catalog, embedder: Any) -> Agent:
    from crs.rank.store import ItemStore

    tmp = tmp_path_factory.mktemp("api")
    cfg = test_config(tmp, serve={"auth": LOGINS, "max_sessions": 4})
    store = ItemStore(cfg, embedder=embedder)
    store.index(small_catalog.items, progress=False)
    llm = ScriptedChatModel(default="Here are some picks for you.")
    return Agent(cfg, catalog, store, llm, profiles=ProfileStore(tmp / "crs.db"))


@pytest.fixture(scope="module")
def url(agent: Agent) -> Iterator[str]:
    port = free_port()
    served = launch(agent, "127.0.0.1", port, prevent_thread_lock=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.close()


def client(url: str, login: str = "ann:pw-ann") -> Any:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=login, max_retries=0, timeout=120)


def test_openai_client_chats_and_gets_items_and_belief(url: str) -> None:
    ann = client(url)
    assert [m.id for m in ann.models.list().data] == ["crs"]
    first = ann.chat.completions.create(
        model="crs", messages=[{"role": "user", "content": "I loved Alien but no romance please"}], user="ann-1"
    )
    extra = first.model_extra["crs"]
    assert first.choices[0].message.content.strip() and extra["session"] == "ann-1" and extra["act"] == "recommend"
    assert extra["items"] and not [i for i in extra["items"] if "Romance" in i["genres"]]
    assert {"kind": "genre", "value": "Romance"}.items() <= next(
        p for p in extra["belief"]["preferences"] if p["value"] == "Romance"
    ).items()
    # The conversation lives on the server: the next message of the same session keeps the dislike.
    second = ann.chat.completions.create(
        model="crs", messages=[{"role": "user", "content": "more like that, no horror either"}], user="ann-1"
    )
    items2 = second.model_extra["crs"]["items"]
    assert items2 and not {i["id"] for i in items2} & {i["id"] for i in extra["items"]}
    assert not [i for i in items2 if {"Romance", "Horror"} & set(i["genres"])]


def test_openai_client_streams_the_reply(url: str) -> None:
    stream = client(url).chat.completions.create(
        model="crs",
        messages=[{"role": "user", "content": "a funny crime movie from the 90s"}],
        stream=True,
        extra_headers={"X-Session-Id": "ann-stream"},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert text.strip() and last.choices[0].finish_reason == "stop"
    extra = last.model_extra["crs"]
    assert extra["session"] == "ann-stream" and extra["items"] and all(i["year"] for i in extra["items"])
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # word by word


def test_recommend_endpoint_with_curl_style_basic_auth_and_separate_sessions(url: str) -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(b"bob:pw-bob").decode()}
    one = httpx.post(f"{url}/v1/recommend", json={"message": "I hate horror, a comedy please", "session": "b1"},
                     headers=basic, timeout=120)  # fmt: skip
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["session"] == "b1" and body["act"] == "recommend" and body["reply"].strip()
    assert not [i for i in body["items"] if "Horror" in i["genres"]]
    assert one.headers["x-session-id"] == "b1"
    # Another session id of the same login starts from nothing; so does the same id of another login.
    fresh = httpx.post(f"{url}/v1/recommend", json={"message": "hi", "session": "b2"}, headers=basic, timeout=120)
    assert fresh.json()["belief"]["preferences"] == []
    ann = httpx.post(f"{url}/v1/recommend", json={"message": "hi", "session": "b1"}, timeout=120,
                     headers={"Authorization": "Bearer ann:pw-ann"})  # fmt: skip
    assert ann.json()["belief"]["preferences"] == []
    again = httpx.post(f"{url}/v1/recommend", json={"message": "something else"}, headers=basic | {"X-Session-Id": "b1"},
                       timeout=120)  # fmt: skip
    assert "Horror" in json.dumps(again.json()["belief"])  # b1 remembered the dislike
    # Bad requests get a clear status, never a crash.
    assert httpx.post(f"{url}/v1/recommend", json={"msg": 1}, headers=basic, timeout=30).status_code == 422
    assert httpx.post(f"{url}/v1/recommend", content=b"{not json", headers=basic, timeout=30).status_code == 422
    nouser = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "system", "content": "x"}]},
                        headers=basic, timeout=30)  # fmt: skip
    assert nouser.status_code == 422 and "no user message" in nouser.text


def test_logins_guard_the_api_and_each_profile(url: str, agent: Agent) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(url, "ann:wrong").chat.completions.create(model="crs", messages=[{"role": "user", "content": "hi"}])
    assert httpx.post(f"{url}/v1/recommend", json={"message": "hi"}, timeout=30).status_code == 401
    ann = {"Authorization": "Bearer ann:pw-ann"}
    put = httpx.put(f"{url}/v1/profile/ann", json={"text": "I love heist films. No horror."}, headers=ann, timeout=30)
    assert put.status_code == 200 and put.json()["version"] >= 1
    got = httpx.get(f"{url}/v1/profile/ann", headers=ann, timeout=30).json()
    assert got["text"] == "I love heist films. No horror." and got["source"] == "edit:api"
    # bob can neither read nor write ann's profile; ann's stays as it was.
    bob = {"Authorization": "Bearer bob:pw-bob"}
    assert httpx.get(f"{url}/v1/profile/ann", headers=bob, timeout=30).status_code == 403
    assert httpx.put(f"{url}/v1/profile/ann", json={"text": "hacked"}, headers=bob, timeout=30).status_code == 403
    assert agent.profiles.get("ann").text == "I love heist films. No horror."  # type: ignore[union-attr]
    assert httpx.get(f"{url}/v1/profile/bob", headers=bob, timeout=30).status_code == 404  # none yet
    # The saved profile shapes ann's next recommendation made through the API.
    picks = httpx.post(f"{url}/v1/recommend", json={"message": "recommend me something", "session": "ann-p"},
                       headers=ann, timeout=120).json()  # fmt: skip
    assert picks["items"] and not [i for i in picks["items"] if "Horror" in i["genres"]]


def test_the_page_is_still_served_beside_the_api(url: str) -> None:
    page = httpx.get(f"{url}/", timeout=30, follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_api_sessions_are_bounded(agent: Agent) -> None:
    from crs.app.api import ApiSessions

    sessions = ApiSessions(capacity=2, idle_seconds=3600)
    a = sessions.get("ann", "1").session
    sessions.get("ann", "2")
    assert sessions.get("ann", "1").session is a  # still held, now the most recent
    sessions.get("bob", "1")
    assert len(sessions) == 2 and sessions.get("ann", "2").session.belief.is_empty()  # "2" was dropped and restarts
    gone = ApiSessions(capacity=5, idle_seconds=0.0)
    first = gone.get("ann", "1").session
    assert gone.get("ann", "1").session is not first  # idle past the limit: forgotten
    assert dataclasses.is_dataclass(first)

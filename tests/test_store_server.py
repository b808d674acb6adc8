"""The item store against a real Chroma server (`chroma run`), started here as a subprocess."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crs.catalog import Item
from crs.config import Config
from crs.rank.embed import Embedder, embed_text
from crs.rank.metadata import StoreError
from crs.rank.store import ItemStore
from tests.conftest import free_port

pytestmark = pytest.mark.server


def chroma_command() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    assert found, "the `chroma` console script (from the chromadb package) is not installed"
    return found


class FakeEmbedder(Embedder):
    """Deterministic 8-d vectors: a one-hot per known word, so tests need no model."""

    WORDS = ("space", "monster", "love", "paris", "horse", "gun", "ghost", "robot")

    def __init__(self) -> None:
        super().__init__(name="fake")
        self.calls = 0

    @property
    def dim(self) -> int:
        return len(self.WORDS)

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:  # type: ignore[no-untyped-def]
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = text.casefold().replace(".", " ").replace(",", " ").split()
            for col, word in enumerate(self.WORDS):
                out[row, col] = words.count(word)
            out[row] += 0.01
        return out / np.linalg.norm(out, axis=1, keepdims=True)


ITEMS = [
    Item(id="alien", title="Alien", year=1979, genres=("Science Fiction", "Horror"), summary="space monster space"),
    Item(id="amelie", title="Amelie", year=2001, genres=("Romance", "Comedy"), summary="love in paris"),
    Item(id="shane", title="Shane", year=1953, genres=("Western",), summary="horse gun"),
    Item(id="poltergeist", title="Poltergeist", year=1982, genres=("Horror",), summary="ghost monster"),
    Item(id="wall-e", title="WALL-E", year=2008, genres=("Animated", "Science Fiction"), summary="robot love space"),
    Item(id="plain", title="Plain", summary="monster"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    host, port = "127.0.0.1", free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log_path = data.parent / "chroma-server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [chroma_command(), "run", "--path", str(data), "--host", host, "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"chroma run exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
                try:
                    with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not answer within 60 s:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.3)
            yield host, port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def server_config(host: str, port: int, collection: str = "items") -> Config:
    cfg = Config()
    return dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, host=host, port=port, collection=collection))


def test_index_and_search_on_a_server(server: tuple[str, int]) -> None:
    embedder = FakeEmbedder()
    store = ItemStore(server_config(*server), embedder)
    assert store.location == f"{server[0]}:{server[1]}"
    report = store.index(ITEMS, progress=False)
    assert (report.added, report.updated, report.unchanged) == (len(ITEMS), 0, 0)
    assert store.count() == len(ITEMS)

    hits = store.search("space monster", k=3)
    assert hits[0].id == "alien" and hits[0].genres == ("Science Fiction", "Horror") and hits[0].year == 1979
    query, alien = embedder.encode(["space monster", embed_text(ITEMS[0])])
    assert hits[0].score == pytest.approx(float(query @ alien), abs=1e-4)  # cosine similarity

    horror = store.search("space monster", k=10, include_genres=["horror"])
    assert {h.id for h in horror} == {"alien", "poltergeist"}
    no_scifi = store.search("space monster", k=10, exclude_genres=["SCIENCE FICTION"])
    assert {h.id for h in no_scifi} == {"amelie", "shane", "poltergeist", "plain"}  # $ne matches a missing key
    ranged = store.search("monster", k=10, year_min=1979, year_max=2001, exclude_ids={"amelie"})
    assert {h.id for h in ranged} == {"alien", "poltergeist"}
    listing = store.search(k=10, include_genres=["Western", "Animated"])
    assert {h.id for h in listing} == {"shane", "wall-e"} and all(h.score == 0.0 for h in listing)

    vectors = store.get_embeddings(["alien", "nope"])
    assert set(vectors) == {"alien"} and vectors["alien"].shape == (embedder.dim,)

    calls = embedder.calls
    again = ItemStore(server_config(*server), embedder).index(ITEMS, progress=False)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(ITEMS))
    assert embedder.calls == calls
    pruned = store.index(ITEMS[:4], progress=False, prune=True)
    assert pruned.removed == 2 and store.count() == 4
    store.reset()
    assert store.count() == 0


def test_unreachable_server_is_a_store_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
        ItemStore(server_config("127.0.0.1", port), FakeEmbedder())

"""A damaged index says so: the four damages of issue 13 on a real persistent Chroma index.

The index is built here with real Chroma in a temp dir; its vectors come from a hash of each
item's text (the damage and Chroma's reaction to it do not depend on the embedder), so 1,100
items index in seconds: enough that Chroma persists its HNSW files (it syncs every 1,000).
Each damage is then tried through the real console script in a child process, where a crash
would show as a signal instead of ending the test run.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from crs.catalog import Item
from crs.config import Config, StoreConfig
from crs.rank.embed import Embedder
from crs.rank.metadata import StoreError
from crs.rank.store import ItemStore, wipe_index_dir
from crs.rank.store_check import check_files, probe_in_subprocess, segment_dirs
from tests.conftest import TEST_CACHE

N_ITEMS = 1100  # past Chroma's default sync threshold (1,000), so the HNSW files hold data


class HashEmbedder(Embedder):
    """Deterministic 32-d unit vectors from a hash of the text (no model)."""

    def __init__(self) -> None:
        super().__init__(name="hash")

    @property
    def dim(self) -> int:
        return 32

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim))
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def cfg_for(path: Path, **store: object) -> Config:
    return dataclasses.replace(Config(), store=dataclasses.replace(StoreConfig(path=path), **store))


def items(n: int = N_ITEMS) -> list[Item]:
    genres = ("Drama", "Comedy", "Horror", "Western")
    return [
        Item(id=f"film-{i}", title=f"Film {i}", year=1970 + i % 50, genres=(genres[i % 4],), summary=f"Story {i}.")
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("built") / "index"
    store = ItemStore(cfg_for(path), HashEmbedder())
    store.index(items(), progress=False)
    assert store.count() == N_ITEMS
    del store
    (seg,) = [s for s in segment_dirs(path) if (s / "data_level0.bin").stat().st_size > 0]
    assert check_files(path) == []
    return path


def _seg(path: Path) -> Path:
    return next(s for s in segment_dirs(path) if (s / "header.bin").exists())


def empty_data(path: Path) -> None:
    (_seg(path) / "data_level0.bin").write_bytes(b"")


def truncated_header(path: Path) -> None:
    header = _seg(path) / "header.bin"
    header.write_bytes(header.read_bytes()[:10])


def random_bytes_sqlite(path: Path) -> None:
    db = path / "chroma.sqlite3"
    data = bytearray(db.read_bytes())
    rng = random.Random(0)
    for _ in range(200):
        data[rng.randrange(100, len(data))] = rng.randrange(256)
    db.write_bytes(bytes(data))


def truncated_sqlite(path: Path) -> None:
    db = path / "chroma.sqlite3"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])


DAMAGES: dict[str, Callable[[Path], None]] = {
    "emptied HNSW data file": empty_data,
    "truncated header.bin": truncated_header,
    "random bytes in chroma.sqlite3": random_bytes_sqlite,
    "truncated chroma.sqlite3": truncated_sqlite,
}


def damaged_copy(built: Path, tmp_path: Path, damage: str) -> Path:
    path = tmp_path / "index"
    shutil.copytree(built, path)
    DAMAGES[damage](path)
    return path


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cat") / "films.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for item in items(30):
            fh.write(json.dumps(item.to_dict()) + "\n")
    return path


def run_crs(*args: str, tmp_path: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CRS_PATHS__CACHE_DIR": str(TEST_CACHE),
        "CRS_PATHS__DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "crs.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_index_is_one_clear_line_and_exit_2(
    damage: str, built: Path, catalog_file: Path, tmp_path: Path
) -> None:
    path = damaged_copy(built, tmp_path, damage)
    commands = [["chat", "--once", "hi"], ["index"], ["serve", "--port", "1"]]
    if damage not in ("emptied HNSW data file", "random bytes in chroma.sqlite3"):
        commands = commands[:1]  # the other commands share the same opening; two damages are enough there
    for command in commands:
        out = run_crs(*command, "--catalog", str(catalog_file), "--index-dir", str(path), tmp_path=tmp_path)
        assert out.returncode == 2, (damage, command, out.returncode, out.stderr[-2000:])
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("crs: error: the item index at"), (damage, out.stderr)
        assert "is damaged" in lines[0] and "`crs index --rebuild`" in lines[0]
        assert "Traceback" not in out.stderr and "panicked" not in out.stderr


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damage_is_found_before_chroma_opens_the_files(damage: str, built: Path, tmp_path: Path) -> None:
    path = damaged_copy(built, tmp_path, damage)
    assert check_files(path), damage  # every one of the four is caught by reading the files alone
    with pytest.raises(StoreError, match=r"is damaged .*crs index --rebuild"):
        ItemStore(cfg_for(path), HashEmbedder())


def test_rebuild_replaces_a_damaged_index(built: Path, catalog_file: Path, tmp_path: Path) -> None:
    path = damaged_copy(built, tmp_path, "truncated header.bin")
    (path / "notes.txt").write_text("not Chroma's")
    out = run_crs("index", "--rebuild", "--catalog", str(catalog_file), "--index-dir", str(path), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "indexed 30 of 30 items" in out.stdout and "30 added" in out.stdout
    assert (path / "notes.txt").read_text() == "not Chroma's"  # only Chroma's own files were removed
    assert check_files(path) == []
    assert ItemStore(cfg_for(path), HashEmbedder()).count() == 30


def test_wipe_leaves_other_files_and_refuses_a_file(tmp_path: Path) -> None:
    wipe_index_dir(tmp_path / "missing")  # nothing there: nothing to do
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        wipe_index_dir(not_dir)


def test_subprocess_probe_passes_a_sound_index_and_times_out_cleanly(built: Path) -> None:
    assert probe_in_subprocess(built, "items", timeout=60) == []
    assert probe_in_subprocess(built, "no-such-collection", timeout=60) == []
    (problem,) = probe_in_subprocess(built, "items", timeout=0.01)
    assert "did not finish" in problem


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic: a BaseException, so ``except Exception`` misses it."""


def test_a_chroma_panic_mid_search_is_a_store_error(built: Path, tmp_path: Path) -> None:
    path = tmp_path / "index"
    shutil.copytree(built, path)
    store = ItemStore(cfg_for(path), HashEmbedder())
    assert len(store.search("Story 5.", k=3)) == 3

    class Broken:
        def __getattr__(self, name: str) -> Callable[..., object]:
            def fail(*args: object, **kwargs: object) -> object:
                raise PanicException("called `Result::unwrap()` on an `Err` value\nstack backtrace: ...")

            return fail

    store._collection = Broken()
    for call in (lambda: store.search("Story 5.", k=3), store.count, lambda: store.get_embeddings(["film-1"])):
        with pytest.raises(StoreError) as err:
            call()
        assert "crs index --rebuild" in str(err.value) and "\n" not in str(err.value)
        assert "called `Result::unwrap()`" in str(err.value)


def test_probe_finds_a_vector_index_that_returns_unrelated_items(built: Path, tmp_path: Path) -> None:
    from crs.rank.store_check import probe_collection

    store = ItemStore(cfg_for(built), HashEmbedder())

    class Scrambled:
        """The real collection, but every query answers with other items (what an emptied
        data file did before the file checks: no error, unrelated results)."""

        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def query(self, **kwargs: object) -> dict:
            out = self.inner.query(**kwargs)  # type: ignore[attr-defined]
            out["ids"] = [[f"film-{1000 + n}" for n in range(len(row))] for row in out["ids"]]
            out["distances"] = [[0.5] * len(row) for row in out["distances"]]
            return out

    assert probe_collection(store._collection) == []
    (problem,) = probe_collection(Scrambled(store._collection))
    assert "does not find it" in problem


def test_a_turn_never_raises_when_the_store_fails_mid_turn(built: Path, tmp_path: Path) -> None:
    from crs.agent import Agent
    from crs.catalog import Catalog
    from crs.llm.scripted import ScriptedChatModel
    from crs.state import FinalEvent, NoticeEvent, Session

    path = tmp_path / "index"
    shutil.copytree(built, path)
    cfg = cfg_for(path)
    store = ItemStore(cfg, HashEmbedder())
    agent = Agent(cfg, Catalog(items()), store, ScriptedChatModel(default="Here you go."))

    class Broken:
        def __getattr__(self, name: str) -> Callable[..., object]:
            def fail(*args: object, **kwargs: object) -> object:
                raise PanicException("index out of bounds")

            return fail

    store._collection = Broken()
    events = list(agent.step(Session(), "I want a western, no comedy"))
    assert isinstance(events[-1], FinalEvent) and events[-1].items == ()
    assert any(isinstance(e, NoticeEvent) and "crs index --rebuild" in e.message for e in events)

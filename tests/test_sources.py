"""crs.seqrec.sources: ReDial and MovieLens liked-film sequences joined to a catalog, on small files
and on the real data (the demo catalog, ReDial partial-train, ml-latest-small)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from crs.catalog import Catalog, Item
from crs.seqrec.data import item_text, load_dataset, load_item_titles
from crs.seqrec.sources import Interactions, coverage, movielens_liked, redial_liked

CATALOG = Catalog([
    Item("alien-1979", "Alien", 1979, genres=("Horror", "Sci-Fi")), Item("the-matrix-1999", "The Matrix", 1999),
    Item("heat-1995", "Heat", 1995), Item("babe-1995", "Babe", 1995),
])  # fmt: skip


def _dialogue(conv: str, text: list[str], answers: dict, key: str = "initiatorQuestions") -> dict:
    return {"conversationId": conv, "messages": [{"text": t} for t in text], key: answers}


def test_redial_liked_keeps_the_liked_films_in_mention_order() -> None:
    movies = Catalog([Item("11", "Alien", 1979), Item("12", "Matrix", 1999), Item("13", "Heat", 1996),
                      Item("14", "Unknown Film", 2001), Item("15", "Babe", 1995)])  # fmt: skip
    dialogues = [
        _dialogue("1", ["I loved @13 and @11", "try @12", "and @15?"],
                  {"11": {"liked": 1}, "12": {"liked": 1}, "13": {"liked": 1}, "15": {"liked": 0}}),
        _dialogue("2", ["@14 was great"], {"14": {"liked": 1}}),  # not in the catalog: dropped
        _dialogue("3", ["@11 then @15"], {"11": {"liked": 1}, "15": {"liked": 1}}, key="respondentQuestions"),
        {"conversationId": "4", "messages": [], "initiatorQuestions": []},  # malformed answers: skipped
    ]  # fmt: skip
    inter = redial_liked(dialogues, movies, CATALOG, keep_others=False)
    # Heat (1996) is the catalog's Heat (1995), one year off; Babe was disliked in dialogue 1.
    assert inter.sequences == {
        "redial:1": ["heat-1995", "alien-1979", "the-matrix-1999"],
        "redial:3": ["alien-1979", "babe-1995"],
    }
    assert inter.sources == {"redial": 2} and inter.matches["redial"].by_near_year == 1
    # By default a film the catalog lacks keeps its place under the source's id, with its name.
    kept = redial_liked(dialogues, movies, CATALOG)
    assert (
        kept.sequences["redial:2"] == ["redial:14"] and kept.item("redial:14", CATALOG).label == "Unknown Film (2001)"
    )
    assert kept.item("alien-1979", CATALOG) is CATALOG["alien-1979"]
    every = redial_liked(dialogues, movies, CATALOG, liked_only=False)  # every film named, liked or not
    assert every.sequences["redial:1"] == ["heat-1995", "alien-1979", "the-matrix-1999", "babe-1995"]


def _movielens(folder: Path) -> Path:
    folder.mkdir()
    with open(folder / "movies.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["movieId", "title", "genres"], [1, "Matrix, The (1999)", "Action"], [2, "Alien (1979)", "Horror"],
                     [3, "Heat (1995)", "Crime"], [4, "Nowhere (2010)", "Drama"]])  # fmt: skip
    with gzip.open(folder / "ratings.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        fh.write("7,1,5.0,300\n7,2,4.0,100\n7,3,2.0,200\n7,4,5.0,50\n8,3,4.5,10\n9,3,1.0,10\n")
    return folder


def test_movielens_liked_in_time_order_and_the_files_crs_train_reads(tmp_path: Path) -> None:
    inter = movielens_liked(_movielens(tmp_path / "ml"), CATALOG)
    # time order; "Nowhere" is not in the catalog and keeps its place under the source's id
    assert inter.sequences == {"ml:7": ["ml:4", "alien-1979", "the-matrix-1999"], "ml:8": ["heat-1995"]}
    assert inter.matches["ml"].matched == 3
    assert movielens_liked(tmp_path / "ml", CATALOG, keep_others=False).sequences["ml:7"] == [
        "alien-1979",
        "the-matrix-1999",
    ]
    ds = inter.dataset()
    assert ds.num_users == 2 and ds.num_items == 4 and ds.num_interactions == 4
    ratings, movies = inter.write(tmp_path / "out", CATALOG)
    again = load_dataset(ratings)
    assert again.item_ids == ds.item_ids and [list(s) for s in again.sequences] == [list(s) for s in ds.sequences]
    titles, texts = load_item_titles(movies, again.item_ids)
    assert titles[again.item_index["alien-1979"]] == "Alien (1979)"
    assert (
        texts[again.item_index["alien-1979"]]
        == item_text(CATALOG["alien-1979"].label, CATALOG["alien-1979"].genres)
        == "Alien (1979): Horror, Sci-Fi"
    )
    assert texts[again.item_index["ml:4"]] == "Nowhere (2010): Drama"
    assert coverage(ds.item_ids[1:], CATALOG) == (3, 4)
    with pytest.raises(ValueError, match="cannot read MovieLens"):
        movielens_liked(tmp_path / "missing", CATALOG)
    assert Interactions().dataset().num_users == 0  # no sequences: an empty dataset, not an error


def test_the_real_sources_cover_more_of_the_index_than_redial_alone() -> None:
    from crs.catalog import load_catalog, load_redial_movies
    from crs.config import load_config
    from crs.eval.redial.data import RedialFiles, load_dialogues
    from crs.rank.store import index_subset

    files = RedialFiles.from_config()
    demo = Path(__file__).resolve().parent.parent / "knowledge" / "movies.jsonl.gz"
    if not (files.movies.exists() and files.movielens.exists()):
        pytest.skip("ReDial / MovieLens data not present")
    catalog = load_catalog(demo)
    indexed = index_subset(load_config(), catalog)
    inter = redial_liked(load_dialogues(files.train), load_redial_movies(files.movies), catalog)
    redial_only, total = coverage(inter.items, indexed)
    movielens_liked(files.movielens, catalog, into=inter)
    both, _ = coverage(inter.items, indexed)
    assert inter.sources["redial"] > 1500 and inter.sources["movielens-latest-small"] > 600
    assert redial_only / total > 0.15 and both / total > 0.4 and both > 1.8 * redial_only

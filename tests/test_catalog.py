from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from crs.catalog import Catalog, CatalogError, Item, load_catalog, normalize_title, split_title_year
from crs.config import load_config

REDIAL = load_config(env={}).paths.data_root / "redial"


def test_demo_catalog_is_merged_and_stable(catalog: Catalog) -> None:
    assert len(catalog) > 36000
    alien = catalog["alien-1979"]
    assert alien.title == "Alien" and alien.year == 1979
    assert "Horror" in alien.genres and "Sigourney Weaver" in alien.cast
    assert alien.url == "https://en.wikipedia.org/wiki/Alien_(film)"
    assert alien.summary.startswith("Alien is a 1979")
    labels = [(it.title, it.year) for it in catalog]
    assert len(labels) == len(set(labels)), "duplicates (same title and year) must be merged"
    assert all(it.url.startswith("https://en.wikipedia.org/wiki/") for it in catalog.items[:500] if it.url)


def test_subset_filter(catalog: Catalog) -> None:
    subset = catalog.filter(min_year=1990, min_summary_chars=1)
    assert 0 < len(subset) < len(catalog)
    assert all(it.year and it.year >= 1990 and it.summary for it in subset)
    default = catalog.filter(min_year=1970, min_summary_chars=380)
    assert 5000 < len(default) < 8000
    famous = [
        "alien-1979",
        "jaws-1975",
        "the-godfather-1972",
        "heat-1995",
        "pulp-fiction-1994",
        "fargo-1996",
        "get-out-2017",
    ]
    assert all(f in default for f in famous)


def test_item_label_and_genre() -> None:
    item = Item("x", "Heat", 1995, ("Crime",), ("Al Pacino",), summary="A heist.")
    assert item.label == "Heat (1995)"
    assert item.has_genre("crime") and not item.has_genre("drama")


def test_title_helpers() -> None:
    assert normalize_title("The Lord of the Rings: The Fellowship") == "lord of the rings the fellowship"
    assert normalize_title("Amélie") == "amelie"
    assert split_title_year("Star Wars  (1977)") == ("Star Wars", 1977)
    assert split_title_year("No Year") == ("No Year", None)


def test_generic_jsonl_and_csv(tmp_path: Path) -> None:
    jl = tmp_path / "books.jsonl"
    jl.write_text(
        json.dumps({"id": "b1", "title": "Dune", "text": "Desert planet.", "genres": "SF|Classic", "author": "Herbert"})
        + "\n\n"
        + json.dumps({"id": "b2", "title": "Emma", "year": 1815})
        + "\n"
    )
    cat = load_catalog(jl)
    assert cat["b1"].summary == "Desert planet." and cat["b1"].genres == ("SF", "Classic")
    assert cat["b1"].attributes == {"author": "Herbert"}
    assert cat["b2"].year == 1815
    csv_path = tmp_path / "items.csv"
    csv_path.write_text("id,title,year,genres,text,brand\n1,Kettle,,Kitchen|Home,A kettle,Acme\n")
    cat = load_catalog(csv_path)
    assert cat["1"].genres == ("Kitchen", "Home") and cat["1"].attributes["brand"] == "Acme"
    gz = tmp_path / "items.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"id": "g", "title": "Gz"}) + "\n")
    assert len(load_catalog(gz)) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": "a", "title": "A"}\n{not json}\n', r"items.jsonl:2: not valid JSON"),
        (b'{"title": "no id"}\n', r"items.jsonl:1: missing 'id'"),
        (b'{"id": "a", "title": "A"}\n{"id": "a", "title": "B"}\n', "duplicate item id 'a'"),
        (b"", "empty"),
        (b'{"id": "a", "title": "A", "year": "soon"}\n', "year 'soon' is not a number"),
        (b"\x1f\x8b\x08\x00garbage", "cannot read catalog"),
        (b"[1, 2]\n", "expected a JSON object"),
    ],
)
def test_corrupt_catalogs_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_missing_catalog_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.jsonl")
    with pytest.raises(CatalogError, match="unknown catalog format"):
        load_catalog(tmp_path / "nope.jsonl", format="xml")
    bad_csv = tmp_path / "x.csv"
    bad_csv.write_text("name,price\na,1\n")
    with pytest.raises(CatalogError, match="needs 'id' and 'title'"):
        load_catalog(bad_csv)


@pytest.mark.skipif(not REDIAL.exists(), reason="no redial/ under [paths] data_root")
def test_redial_formats() -> None:
    movies = load_catalog(REDIAL / "official" / "movies_with_mentions.csv")
    assert len(movies) > 6000
    headhunter = movies["75796"]
    assert (headhunter.title, headhunter.year) == ("Headhunter", 2009)
    assert headhunter.popularity == 0.0  # nbMentions counts test dialogues: not used by default
    info = load_catalog(REDIAL / "ievalm_processed" / "id2info.json.gz")
    assert len(info) > 6000
    item = info["100030"]
    assert item.title == "Friends with Benefits" and item.year == 2011
    assert "Romance" in item.genres and item.attributes["imdb_id"] == "tt1632708"


def test_directors_come_from_the_record_or_its_summary(catalog: Catalog) -> None:
    alien = catalog["alien-1979"]
    assert alien.directors == ("Ridley Scott",) and alien.people[-1] == "Ridley Scott"
    assert Item("x", "X", attributes={"director": "Joel Coen, Ethan Coen"}).directors == ("Joel Coen", "Ethan Coen")
    assert Item("y", "Y", summary="Y is a film.").directors == ()
    films = catalog.films_of("ridley scott")
    assert alien in films and all("Ridley Scott" in f.people for f in films) and len(films) >= 5
    assert catalog.films_of("Nobody At All") == []

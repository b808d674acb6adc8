"""Catalog items and their loaders.

Formats:
- ``demo``/``jsonl``: one JSON object a line (optionally gzip): ``id``, ``title``, and any of
  ``year``, ``genres``, ``cast``, ``url``, ``summary`` (or ``text``); other keys go to ``attributes``.
- ``csv``: a header with ``id`` and ``title``, and any of the keys above; lists are ``|``-separated.
- ``redial``: ReDial's ``movies_with_mentions.csv`` (``movieId,movieName,nbMentions``).
- ``redial_info``: iEvaLM's ``id2info.json.gz`` ({id: {name, genre, plot, director, star, imdb_id}}).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_TITLE_YEAR = re.compile(r"^\s*(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


_NAME = r"(?:[A-Z][a-z'\-]+|[A-Z]\.)(?: (?:[A-Z][a-z'\-]+|[A-Z]\.|de|van|von|del|da)){1,3}"
_DIRECTED = re.compile(rf"directed(?:,? (?:and )?[a-z\-]+)*,? by ({_NAME}(?:(?:,| and) {_NAME})*)")


def director_of(summary: str) -> str | None:
    """The director named in a Wikipedia lead ("... film directed by Ridley Scott ...")."""
    m = _DIRECTED.search(summary)
    return m.group(1) if m else None


def directors_of(summary: str) -> list[str]:
    """Each director named in a Wikipedia lead ("directed by Joel and Ethan Coen" gives one name
    per person only when each is written in full)."""
    named = director_of(summary)
    return [n.strip() for n in re.split(r",| and ", named) if n.strip()] if named else []


class CatalogError(ValueError):
    """A catalog file that is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    cast: tuple[str, ...] = ()
    url: str = ""
    summary: str = ""
    popularity: float = 0.0  # a prior in [0, inf); 0 when unknown
    attributes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        """``Title (Year)``, the form items are named by in dialogues and reports."""
        return f"{self.title} ({self.year})" if self.year else self.title

    @functools.cached_property
    def directors(self) -> tuple[str, ...]:
        """Its directors: the record's ``director`` attribute where it has one, else the ones its
        summary names."""
        if named := self.attributes.get("director"):
            return tuple(n.strip() for n in named.split(",") if n.strip())
        return tuple(directors_of(self.summary))

    @functools.cached_property
    def people(self) -> tuple[str, ...]:
        """Everyone a user may ask for or rule out by name: the cast, then the directors."""
        return tuple(dict.fromkeys((*self.cast, *self.directors)))

    def has_genre(self, genre: str) -> bool:
        want = genre.casefold()
        return any(g.casefold() == want for g in self.genres)

    def listing(self) -> dict[str, object]:
        """What a client is shown of a recommended item (``crs chat --json``, the HTTP API)."""
        return {"id": self.id, "title": self.title, "year": self.year, "genres": list(self.genres), "url": self.url}

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "year": self.year,
            "genres": list(self.genres),
            "cast": list(self.cast),
            "url": self.url,
            "summary": self.summary,
            "popularity": self.popularity,
            "attributes": dict(self.attributes),
        }


def normalize_title(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form; a leading article is dropped."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().casefold()
    text = text.replace("&", " and ")
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    text = re.sub(r"^(the|a|an) ", "", text)
    return text


def split_title_year(name: str) -> tuple[str, int | None]:
    """``"Star Wars  (1977)"`` -> ``("Star Wars", 1977)``."""
    m = _TITLE_YEAR.match(name)
    if not m:
        return name.strip(), None
    return re.sub(r"\s+", " ", m["title"]).strip(), int(m["year"])


class Catalog:
    """An ordered, id-indexed collection of items."""

    def __init__(self, items: Iterable[Item], name: str = "catalog") -> None:
        self.name = name
        self.items: list[Item] = []
        self._by_id: dict[str, Item] = {}
        self._by_person: dict[str, list[Item]] | None = None  # built on the first films_of
        for item in items:
            if item.id in self._by_id:
                raise CatalogError(f"{name}: duplicate item id {item.id!r}")
            self._by_id[item.id] = item
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def get(self, item_id: str) -> Item | None:
        return self._by_id.get(item_id)

    def films_of(self, person: str) -> list[Item]:
        """The items ``person`` acts in or directed (case-insensitive full name), in catalog order."""
        if self._by_person is None:
            index: dict[str, list[Item]] = {}
            for item in self.items:
                for name in item.people:
                    index.setdefault(name.casefold(), []).append(item)
            self._by_person = index
        return list(self._by_person.get(person.strip().casefold(), ()))

    def __getitem__(self, item_id: str) -> Item:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise KeyError(f"no item {item_id!r} in {self.name}") from None

    def genres(self) -> list[str]:
        """All genres, most frequent first."""
        counts: dict[str, int] = {}
        for item in self.items:
            for g in item.genres:
                counts[g] = counts.get(g, 0) + 1
        return sorted(counts, key=lambda g: (-counts[g], g))

    def filter(self, min_year: int = 0, min_summary_chars: int = 0) -> Catalog:
        """Items from ``min_year`` on (unknown years fail a year bound) whose summary has at
        least ``min_summary_chars`` characters."""
        kept = [
            it
            for it in self.items
            if (not min_year or (it.year or 0) >= min_year) and len(it.summary) >= min_summary_chars
        ]
        return Catalog(kept, name=self.name)

    def by_label(self) -> dict[str, Item]:
        """``{"Title (Year)": item}``; the first item wins on a clash."""
        out: dict[str, Item] = {}
        for item in self.items:
            out.setdefault(item.label, item)
        return out


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise CatalogError(f"catalog file not found: {path}")
    if not path.is_file():
        raise CatalogError(f"catalog path is not a file: {path}")
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")  # type: ignore[return-value]
    return open(path, encoding="utf-8")  # noqa: SIM115


def _as_list(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = re.split(r"[|;]", value)
    elif isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    else:
        raise CatalogError(f"expected a list or a |-separated string, got {value!r}")
    return tuple(p.strip() for p in parts if p and p.strip())


def _as_year(value: object) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        year = int(str(value).strip()[:4])
    except ValueError:
        raise CatalogError(f"year {value!r} is not a number") from None
    return year or None


def item_from_record(rec: dict[str, object]) -> Item:
    """Build an item from a generic record (JSONL object or CSV row)."""
    if not isinstance(rec, dict):
        raise CatalogError(f"expected a JSON object, got {type(rec).__name__}")
    item_id = str(rec.get("id") or "").strip()
    title = str(rec.get("title") or "").strip()
    if not item_id:
        raise CatalogError("missing 'id'")
    if not title:
        raise CatalogError("missing 'title'")
    known = {"id", "title", "year", "genres", "cast", "url", "summary", "text", "popularity", "attributes"}
    attrs = {k: str(v) for k, v in rec.items() if k not in known and v not in (None, "")}
    extra = rec.get("attributes")
    if isinstance(extra, dict):
        attrs.update({str(k): str(v) for k, v in extra.items()})
    try:
        popularity = float(rec.get("popularity") or 0.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CatalogError(f"popularity {rec.get('popularity')!r} is not a number") from None
    return Item(
        id=item_id,
        title=title,
        year=_as_year(rec.get("year")),
        genres=_as_list(rec.get("genres")),
        cast=_as_list(rec.get("cast")),
        url=str(rec.get("url") or ""),
        summary=str(rec.get("summary") or rec.get("text") or "").strip(),
        popularity=popularity,
        attributes=attrs,
    )


def load_jsonl(path: str | Path) -> Catalog:
    path = Path(path)
    items: list[Item] = []
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    items.append(item_from_record(json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise CatalogError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                except CatalogError as exc:
                    raise CatalogError(f"{path}:{lineno}: {exc}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read catalog ({exc})") from None
    if not items:
        raise CatalogError(f"{path}: the catalog is empty")
    return Catalog(items, name=path.name)


def load_csv(path: str | Path) -> Catalog:
    path = Path(path)
    items: list[Item] = []
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"id", "title"} <= set(reader.fieldnames):
                raise CatalogError(f"{path}: a CSV catalog needs 'id' and 'title' columns, got {reader.fieldnames}")
            for lineno, row in enumerate(reader, 2):
                try:
                    items.append(item_from_record(dict(row)))
                except CatalogError as exc:
                    raise CatalogError(f"{path}:{lineno}: {exc}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogError(f"{path}: cannot read catalog ({exc})") from None
    if not items:
        raise CatalogError(f"{path}: the catalog is empty")
    return Catalog(items, name=path.name)


def load_redial_movies(path: str | Path, with_mentions: bool = False) -> Catalog:
    """ReDial's movie list. ``nbMentions`` counts test dialogues too, so it is only used as
    popularity when ``with_mentions`` is set (never for leak-free evaluation)."""
    path = Path(path)
    items: list[Item] = []
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"movieId", "movieName"} <= set(reader.fieldnames):
                raise CatalogError(f"{path}: expected movieId,movieName columns, got {reader.fieldnames}")
            for row in reader:
                title, year = split_title_year(row["movieName"] or "")
                if not title:
                    continue
                mentions = float(row.get("nbMentions") or 0) if with_mentions else 0.0
                items.append(Item(id=str(row["movieId"]).strip(), title=title, year=year, popularity=mentions))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogError(f"{path}: cannot read ReDial movies ({exc})") from None
    if not items:
        raise CatalogError(f"{path}: no movies")
    return Catalog(items, name=path.name)


def load_redial_info(path: str | Path) -> Catalog:
    """iEvaLM's ``id2info.json.gz``: ReDial ids with IMDb genres, plot, director and stars."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON ({exc.msg})") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: expected an object of id -> info")
    items: list[Item] = []
    for item_id, info in data.items():
        if not isinstance(info, dict) or not info.get("name"):
            continue
        title, year = split_title_year(str(info["name"]))
        attrs = {}
        if info.get("director"):
            attrs["director"] = ", ".join(info["director"])
        if info.get("imdb_id"):
            attrs["imdb_id"] = str(info["imdb_id"])
        items.append(
            Item(
                id=str(item_id),
                title=title,
                year=year,
                genres=tuple(str(g).title() for g in info.get("genre") or []),
                cast=tuple(info.get("star") or []),
                summary=str(info.get("plot") or ""),
                attributes=attrs,
            )
        )
    return Catalog(items, name=path.name)


def load_catalog(path: str | Path, format: str = "auto") -> Catalog:
    """Load a catalog, guessing the format from the file name when ``format`` is ``auto``."""
    path = Path(path)
    if format == "auto":
        name = path.name.lower()
        if name.startswith("movies_with_mentions"):
            format = "redial"
        elif name.startswith("id2info"):
            format = "redial_info"
        elif name.endswith((".csv", ".csv.gz")):
            format = "csv"
        else:
            format = "jsonl"
    loaders = {
        "demo": load_jsonl,
        "jsonl": load_jsonl,
        "csv": load_csv,
        "redial": load_redial_movies,
        "redial_info": load_redial_info,
    }
    if format not in loaders:
        raise CatalogError(f"unknown catalog format {format!r}; use one of {', '.join(loaders)}")
    catalog = loaders[format](path)
    log.info("loaded %d items from %s (%s)", len(catalog), path, format)
    return catalog

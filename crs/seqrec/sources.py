"""Interaction data for the chat's scorer, joined to a catalog: the sequences the chat really has.

The chat scores candidates after the films a user said they liked, in the order they said it
(``crs.rank.scorer.SeqScorer``). Two real sources give such sequences:

- ReDial dialogues (CC BY 4.0): the films the seeker liked (the questionnaire's ``liked == 1``,
  the seeker's own answers first, else the recommender's about them), in order of first mention;
  one user per dialogue;
- MovieLens ratings (``ratings.csv[.gz]`` + ``movies.csv``): each user's films rated at least
  ``min_rating``, in time order.

Both are mapped onto catalog ids by title and year (``crs.rank.scorer.match_items``: exact year,
then one off), so the trained model's item ids are the catalog's own. A film the catalog lacks keeps
its place in the sequence under its source's id ("redial:123", "movielens-latest-small:456") and its
"Title (Year)", so the context around it is not lost and another catalog can still match it by name
(the chat never sees it: its items are the catalog's). ``Interactions.dataset`` gives a
``crs.seqrec.data.SeqDataset``, and ``write`` the ratings and titles files ``crs train seqrec`` reads.
"""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from crs.catalog import Catalog, Item
from crs.rank.scorer import MatchReport, match_items
from crs.seqrec.data import DataFormatError, SeqDataset

log = logging.getLogger(__name__)


@dataclass
class Interactions:
    """Users' catalog-id sequences, oldest first, with where each user came from."""

    sequences: dict[str, list[str]] = field(default_factory=dict)  # user -> item ids
    sources: dict[str, int] = field(default_factory=dict)  # source name -> users added
    matches: dict[str, MatchReport] = field(default_factory=dict)  # source name -> its title match
    others: dict[str, Item] = field(default_factory=dict)  # id -> a film not in the catalog ("source:id")
    films: dict[str, list[str]] = field(default_factory=dict)  # source -> item ids of its whole film list

    def item(self, iid: str, catalog: Catalog) -> Item:
        """The catalog's item, or the source's description of one the catalog lacks."""
        return catalog[iid] if iid in catalog else self.others[iid]

    def add(self, source: str, user: str, items: Iterable[str]) -> None:
        seq = list(dict.fromkeys(items))
        if seq:
            self.sequences[f"{source}:{user}"] = seq
            self.sources[source] = self.sources.get(source, 0) + 1

    @property
    def items(self) -> set[str]:
        return {i for s in self.sequences.values() for i in s}

    def dataset(self, name: str = "joined", cold: Iterable[str] = ()) -> SeqDataset:
        """As a ``SeqDataset`` (items sorted by id, users by name). ``cold`` adds items no sequence holds
        to the vocabulary (catalog ids or ``others``): a model trained on it learns them as never-chosen
        negatives (and P2Rec from their text), so it can score them."""
        from crs.seqrec.data import PAD

        item_ids = sorted(self.items | set(cold))
        index = {iid: k + 1 for k, iid in enumerate(item_ids)}
        users = sorted(self.sequences)
        seqs = [np.array([index[i] for i in self.sequences[u]], dtype=np.int64) for u in users]
        return SeqDataset(name, seqs, [PAD, *item_ids], users, {"format": "joined", "sources": str(self.sources)})

    def write(self, folder: Path, catalog: Catalog) -> tuple[Path, Path]:
        """``ratings.csv`` (userId,movieId,rating,timestamp; the position as the time) and
        ``movies.csv`` (movieId,title,genres) for ``crs train seqrec --data ... --titles ...``."""
        folder.mkdir(parents=True, exist_ok=True)
        ratings, movies = folder / "ratings.csv", folder / "movies.csv"
        with open(ratings, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["userId", "movieId", "rating", "timestamp"])
            for user, seq in self.sequences.items():
                w.writerows([user, iid, 5, t] for t, iid in enumerate(seq))
        with open(movies, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["movieId", "title", "genres"])
            for iid in sorted(self.items):
                item = self.item(iid, catalog)
                w.writerow([iid, item.label, "|".join(item.genres)])
        return ratings, movies


def _match(
    source: str, items: Sequence[Item], catalog: Catalog, into: Interactions, keep_others: bool
) -> dict[str, str]:
    """Source id -> catalog id (through ``match_items``), or -> "source:id" for the films the catalog
    lacks when ``keep_others`` (recorded in ``into.others``); the report goes to ``into.matches``."""
    from crs.seqrec.data import PAD

    to_index, report = match_items([PAD, *(it.id for it in items)], ["", *(it.label for it in items)], catalog)
    into.matches[source] = report
    out = {items[k - 1].id: cid for cid, k in to_index.items()}
    if keep_others:
        for it in items:
            if it.id not in out:
                oid = f"{source}:{it.id}"
                out[it.id] = oid
                into.others[oid] = replace(it, id=oid)
    into.films[source] = list(dict.fromkeys(out.values()))
    return out


def redial_liked(
    dialogues: Iterable[dict],
    movies: Catalog,
    catalog: Catalog,
    into: Interactions | None = None,
    liked_only: bool = True,
    keep_others: bool = True,
) -> Interactions:
    """Each ReDial dialogue's liked films (the seeker's questionnaire answers, else the recommender's
    about the seeker), in order of first mention, as catalog ids; with ``liked_only`` False every film
    named, by either side. ``movies`` is ReDial's movie list (``crs.catalog.load_redial_movies``)."""
    from crs.eval.redial.data import dialogue_mentions

    out = into or Interactions()
    to_cat = _match("redial", list(movies), catalog, out, keep_others)
    for d in dialogues:
        answers = d.get("initiatorQuestions") or d.get("respondentQuestions") or {}
        if not isinstance(answers, dict):
            continue
        liked = {str(i) for i, a in answers.items() if isinstance(a, dict) and a.get("liked") == 1}
        order = [i for i in dialogue_mentions(d, movies) if i in liked or not liked_only]
        out.add("redial", str(d.get("conversationId")), (to_cat[i] for i in order if i in to_cat))
    return out


def movielens_liked(
    folder: str | Path,
    catalog: Catalog,
    min_rating: float = 4.0,
    into: Interactions | None = None,
    keep_others: bool = True,
) -> Interactions:
    """MovieLens users' films rated at least ``min_rating``, in time order, as catalog ids (matched
    through ``movies.csv`` titles and years). ``folder`` holds ``ratings.csv[.gz]`` and ``movies.csv``."""
    import zlib

    folder = Path(folder)
    out = into or Interactions()
    source = folder.name
    try:
        with open(folder / "movies.csv", encoding="utf-8", newline="") as fh:
            films = [_movielens_item(r) for r in csv.DictReader(fh)]
        to_cat = _match(source, films, catalog, out, keep_others)
        ratings = folder / "ratings.csv.gz"
        if not ratings.exists():
            ratings = folder / "ratings.csv"
        users: dict[str, list[tuple[int, str]]] = {}
        with (gzip.open if ratings.suffix == ".gz" else open)(ratings, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            for r in csv.DictReader(fh):
                if r["movieId"] in to_cat and float(r["rating"]) >= min_rating:
                    users.setdefault(r["userId"], []).append((int(r["timestamp"]), to_cat[r["movieId"]]))
    except (OSError, KeyError, ValueError, csv.Error, EOFError, zlib.error) as exc:
        raise DataFormatError(f"{folder}: cannot read MovieLens ratings and movies ({exc})") from None
    for user, rated in users.items():
        out.add(source, user, (i for _, i in sorted(rated, key=lambda x: x[0])))
    return out


def _movielens_item(row: dict[str, str]) -> Item:
    """A ``movies.csv`` row as an item: "Matrix, The (1999)" with its genres."""
    from crs.catalog import split_title_year

    title, year = split_title_year(row["title"])
    genres = tuple(g for g in (row.get("genres") or "").split("|") if g and g != "(no genres listed)")
    return Item(str(row["movieId"]), title, year, genres=genres)


def coverage(item_ids: Iterable[str], indexed: Catalog) -> tuple[int, int]:
    """(indexed films among ``item_ids``, indexed films): how much of the index a scorer can score."""
    known = set(item_ids)
    return sum(it.id in known for it in indexed), len(indexed)

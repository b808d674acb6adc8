"""What the item store keeps per item in Chroma and how searches filter on it: the metadata layout
(one boolean key per genre, year, fingerprint), hits read back from it, and the filter applied both in
Chroma's ``where`` clause and again on the hits. Also the store's error type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from crs.catalog import Item


class StoreError(RuntimeError):
    """The item store cannot be opened or used (server down, embedder missing, bad collection,
    a damaged index). Every failure of a Chroma call, even a Rust panic, arrives as this."""


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # cosine similarity in [-1, 1]; 0.0 for a filter-only listing
    title: str
    year: int | None
    genres: tuple[str, ...]


def genre_key(genre: str) -> str:
    """The metadata key flagging a genre: ``"Science Fiction"`` -> ``"g_science_fiction"``."""
    return "g_" + re.sub(r"[^a-z0-9]+", "_", genre.casefold()).strip("_")


def item_metadata(item: Item, fp: str) -> dict[str, str | int | bool]:
    """What Chroma stores beside an item's vector (values must be str, int, float or bool)."""
    meta: dict[str, str | int | bool] = {
        "title": item.title,
        "year": int(item.year or 0),
        "genres": "|".join(item.genres),
        "fp": fp,
    }
    for genre in item.genres:
        meta[genre_key(genre)] = True
    return meta


def hit_from_metadata(item_id: str, meta: dict[str, Any] | None, score: float) -> Hit:
    meta = meta or {}
    genres = tuple(g for g in str(meta.get("genres") or "").split("|") if g)
    year = int(meta.get("year") or 0) or None
    return Hit(id=item_id, score=score, title=str(meta.get("title") or item_id), year=year, genres=genres)


@dataclass(frozen=True)
class Filter:
    """A search's filters: Chroma's ``where`` clause, and the same checks in Python."""

    include: frozenset[str]  # genre keys; a hit needs one of them (none: no constraint)
    exclude: frozenset[str]  # genre keys; a hit may have none of them
    year_min: int | None
    year_max: int | None
    exclude_ids: frozenset[str]

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.year_min is not None or self.year_max is not None:
            # Unknown years are stored as 0; any year bound leaves them out.
            clauses.append({"year": {"$gte": max(self.year_min or 1, 1)}})
            if self.year_max is not None:
                clauses.append({"year": {"$lte": self.year_max}})
        include = sorted(self.include)
        if len(include) == 1:  # Chroma rejects an $or of one clause
            clauses.append({include[0]: True})
        elif include:
            clauses.append({"$or": [{key: True} for key in include]})
        # In chromadb 1.5.9 "$ne": True also matches items without the key (the tests check it).
        clauses.extend({key: {"$ne": True}} for key in sorted(self.exclude))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def keep(self, hit: Hit) -> bool:
        if hit.id in self.exclude_ids:
            return False
        if self.year_min is not None and (hit.year is None or hit.year < self.year_min):
            return False
        if self.year_max is not None and (hit.year is None or hit.year > self.year_max):
            return False
        genres = {genre_key(g) for g in hit.genres}
        if self.include and not genres & self.include:
            return False
        return not genres & self.exclude

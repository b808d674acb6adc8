"""Typed tool functions the agent calls; each call is recorded as a ToolCall/ToolResult pair."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from crs.catalog import Catalog, Item
from crs.state import BeliefState, ToolCall, ToolEvent, ToolResult

if TYPE_CHECKING:
    from crs.store import ItemStore

log = logging.getLogger(__name__)

T = TypeVar("T")


# What a critique keyword looks like in an item's text.
KEYWORD_STEMS: dict[str, tuple[str, ...]] = {
    "violent": ("violen", "gore", "gory", "brutal", "bloody", "slasher", "massacre", "murder", "kill"),
    "dark": ("dark", "bleak", "grim", "tragic", "disturbing", "horror", "death"),
}


@dataclass(frozen=True)
class Candidate:
    item: Item
    similarity: float  # cosine similarity to the query, from the store
    score: float  # fused score used for ranking
    reasons: tuple[str, ...] = ()  # liked attributes it matches, for explanations


def retrieve(
    store: ItemStore,
    catalog: Catalog,
    query: str,
    k: int = 50,
    like_ids: Sequence[str] = (),
    year_min: int | None = None,
    year_max: int | None = None,
    exclude_genres: Sequence[str] = (),
    exclude_ids: Sequence[str] = (),
    exclude_people: Sequence[str] = (),
) -> list[Candidate]:
    """Dense retrieval from the item store, never returning an excluded item, genre or person.

    The query vector blends the message with the items the user said they like ("more like
    these"), using their stored embeddings, or embedding their text when they are not indexed.
    """
    import numpy as np

    from crs.store import embed_text

    vector = store.embedder.encode_one(query) if query.strip() else None
    liked = []
    stored = store.get_embeddings(like_ids) if like_ids else {}
    for item_id in like_ids:
        if item_id in stored:
            liked.append(stored[item_id])
        elif (item := catalog.get(item_id)) is not None:
            liked.append(store.embedder.encode_one(embed_text(item)))
    if liked:
        mean = np.mean(liked, axis=0)
        vector = mean if vector is None else vector + mean
    if vector is None:
        return []
    vector = vector / (np.linalg.norm(vector) or 1.0)
    hits = store.search(
        query_embedding=vector,
        k=k,
        exclude_genres=list(exclude_genres),
        exclude_ids=list(exclude_ids),
        year_min=year_min,
        year_max=year_max,
    )
    out = []
    banned = {p.casefold() for p in exclude_people}
    for hit in hits:
        item = catalog.get(hit.id)
        if item is None:
            log.warning("index holds %s, which the catalog lacks; rebuild with `crs index`", hit.id)
            continue
        if banned and any(c.casefold() in banned for c in item.cast):
            continue
        out.append(Candidate(item, hit.score, hit.score))
    return out


def score(candidates: Sequence[Candidate], belief: BeliefState, k: int = 5) -> list[Candidate]:
    """Rank candidates: similarity, plus liked genres and people they match, plus a small
    popularity prior. Items the user rejected or has seen never come back."""
    liked_genres = {g.casefold() for g in belief.liked_genres}
    liked_people = {p.casefold() for p in belief.values("person", 1)}
    keywords = [(k, p.polarity) for p in belief.preferences if p.kind == "keyword" for k in [p.value]]
    excluded = belief.excluded_items
    ranked = []
    for cand in candidates:
        if cand.item.id in excluded:
            continue
        reasons = [g for g in cand.item.genres if g.casefold() in liked_genres]
        reasons += [p for p in cand.item.cast if p.casefold() in liked_people]
        bonus = 0.08 * len(reasons) + 0.01 * math.log1p(cand.item.popularity)
        text = " ".join((cand.item.summary, *cand.item.genres)).casefold()
        for keyword, polarity in keywords:
            if any(stem in text for stem in KEYWORD_STEMS.get(keyword.casefold(), (keyword.casefold(),))):
                bonus += 0.1 * polarity  # "less violent": violent films sink, they are not banned
        ranked.append(Candidate(cand.item, cand.similarity, cand.similarity + bonus, tuple(reasons)))
    ranked.sort(key=lambda c: -c.score)
    return ranked[:k]


def run_tool(
    name: str, fn: Callable[..., T], summarize: Callable[[T], str], **arguments: object
) -> tuple[T, ToolEvent]:
    """Call a tool, timing it, and return its output with the event the UI shows."""
    call = ToolCall(name, {k: _brief(v) for k, v in arguments.items()})
    start = time.perf_counter()
    output = fn(**arguments)
    seconds = time.perf_counter() - start
    result = ToolResult(name, output, summarize(output), seconds)
    return output, ToolEvent(call, result)


def _brief(value: object) -> object:
    """Arguments as the UI shows them: no store or catalog objects, short strings."""
    if isinstance(value, str):
        return value if len(value) <= 300 else value[:300] + "…"
    if isinstance(value, list | tuple):
        return [_brief(v) for v in value][:50]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return type(value).__name__

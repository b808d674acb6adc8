"""Finding and ranking candidates: dense retrieval from the item store under the belief's exclusions, the
fused score, and looking up one record. Each is a tool (``crs.tools``): the agent's calls are recorded."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crs.catalog import Catalog, Item
from crs.config import ScoringConfig
from crs.rank.exclusion import Exclusion
from crs.state import BeliefState
from crs.tools import tool
from crs.understand.lexicon import THEMES

if TYPE_CHECKING:
    from crs.rank.store import ItemStore

log = logging.getLogger(__name__)


# What a theme or critique keyword ("time travel", "violent") looks like in an item's text.
KEYWORD_STEMS: dict[str, tuple[str, ...]] = {name: stems for name, (_, stems) in THEMES.items()}


@dataclass(frozen=True)
class Candidate:
    item: Item
    similarity: float  # cosine similarity to the query, from the store
    score: float  # fused score used for ranking
    reasons: tuple[str, ...] = ()  # liked attributes it matches, for explanations


@tool(
    summary=lambda out, a: (
        f"{len(out)} candidates from the item store (left out: {(a['exclusion'] or Exclusion()).describe()})"
    ),
    hidden=("store", "catalog", "exclusion"),
)
def retrieve(
    store: ItemStore,
    catalog: Catalog,
    query: str,
    k: int = 50,
    like_ids: Sequence[str] = (),
    exclusion: Exclusion | None = None,
    themes: Sequence[str] = (),
    people: Sequence[str] = (),
) -> list[Candidate]:
    """Dense retrieval from the item store, never returning what ``exclusion`` rules out.

    The query vector blends the message with the items the user said they like ("more like
    these"), using their stored embeddings, or embedding their text when they are not indexed.
    Each liked theme ("time travel") gets a search of its own, leaning towards the query, so
    a specific wish is not drowned by a broad genre in the same request. Each liked person
    ("something by Nolan") brings every catalog film they act in or directed, ranked by the same
    query vector: a name is exact, and a director is often not in the embedded text. The store
    filters genres, ids and years; people are checked here, as the store cannot.
    """
    import numpy as np

    from crs.rank.embed import embed_text
    from crs.rank.metadata import Hit

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
    exclusion = exclusion or Exclusion()
    filters = exclusion.store_filter()
    hits = store.search(query_embedding=vector, k=k, **filters)
    best = {hit.id: hit for hit in hits}
    for theme in themes:
        focus = store.embedder.encode_one(f"A film about {theme}.") + 0.5 * vector
        for hit in store.search(query_embedding=focus / (np.linalg.norm(focus) or 1.0), k=max(k // 2, 5), **filters):
            if hit.id not in best or hit.score > best[hit.id].score:
                best[hit.id] = hit
    theirs = [item.id for name in people for item in catalog.films_of(name) if item.id not in best]
    for item_id, embedding in store.get_embeddings(theirs).items():
        item = catalog[item_id]
        best[item_id] = Hit(item_id, float(vector @ embedding), item.title, item.year, item.genres)
    hits = sorted(best.values(), key=lambda h: -h.score)
    out = []
    for hit in hits:
        item = catalog.get(hit.id)
        if item is None:
            log.warning("index holds %s, which the catalog lacks; rebuild with `crs index`", hit.id)
            continue
        if exclusion.allows(item):
            out.append(Candidate(item, hit.score, hit.score))
    return out


@tool(
    summary=lambda out, a: "top: " + ", ".join(c.item.label for c in out[:3]),
    hidden=("candidates", "belief", "seq_scores", "exclusion", "weights"),
)
def score(
    candidates: Sequence[Candidate],
    belief: BeliefState,
    k: int = 5,
    seq_scores: Mapping[str, float] | None = None,
    exclusion: Exclusion | None = None,
    weights: ScoringConfig | None = None,
    broad: bool = False,
) -> list[Candidate]:
    """Rank candidates: similarity, plus liked genres, people and themes they match (weighted
    by how strongly each was said: "love" 1.5, "kind of like" 0.5), plus a weight times the log of
    the popularity prior (``weights.broad_popularity`` for a ``broad`` request), plus
    ``weights.sequential`` times the sequential model's score (``seq_scores``: item id -> z-score
    from ``crs.rank.scorer.SeqScorer``; items it lacks get 0). The weights are the config's
    ``[scoring]``. Items the user rejected or has seen never come back, whatever their scores.

    A ``broad`` request names what it wants by genre: films of a liked genre come first, so a
    well-known film of another kind ("Inception" for "a sports movie") does not outrank them."""
    w = weights or ScoringConfig()
    popularity_weight = w.broad_popularity if broad else w.popularity
    seq_scores = seq_scores or {}
    strength = {
        (p.kind, p.value.casefold()): p.strength for p in belief.preferences if p.polarity > 0 and p.kind != "item"
    }
    keywords = [(p.value, p.polarity, p.strength) for p in belief.preferences if p.kind == "keyword"]
    exclusion = exclusion or Exclusion.from_belief(belief, shown=False)
    ranked = []
    for cand in candidates:
        if not exclusion.allows(cand.item):
            continue
        matched = [("genre", g) for g in cand.item.genres if ("genre", g.casefold()) in strength]
        matched += [("person", p) for p in cand.item.people if ("person", p.casefold()) in strength]
        reasons = [value for _, value in matched]
        bonus = popularity_weight * math.log1p(cand.item.popularity) + w.sequential * seq_scores.get(cand.item.id, 0.0)
        # A person is exact and asked for by name; a genre is broad: a liked person's film weighs more.
        bonus += sum(
            (w.person if kind == "person" else w.genre) * strength[(kind, value.casefold())] for kind, value in matched
        )
        text = " ".join((cand.item.summary, *cand.item.genres)).casefold()
        for keyword, polarity, weight in keywords:
            if any(stem in text for stem in KEYWORD_STEMS.get(keyword.casefold(), (keyword.casefold(),))):
                # "less violent", "no gore": such films sink, they are not banned (text matching is loose).
                bonus += (w.keyword_like if polarity > 0 else w.keyword_dislike) * polarity * weight
                if polarity > 0:
                    reasons.append(keyword)
        ranked.append(Candidate(cand.item, cand.similarity, cand.similarity + bonus, tuple(reasons)))
    ranked.sort(key=lambda c: -c.score)
    liked = {g.casefold() for g in belief.liked_genres}
    if broad and liked:
        ranked.sort(key=lambda c: not any(g.casefold() in liked for g in c.item.genres))
    return ranked[:k]


@tool(summary=lambda out, a: f"record of {out.label}" if out else "not in the catalog", hidden=("catalog",))
def lookup_item(catalog: Catalog, item_id: str) -> Item | None:
    """The catalog record of one item, for an answer about it."""
    return catalog.get(item_id)

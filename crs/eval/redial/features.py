"""ReDial turns as features: each turn's context read by the product's understanding, and every catalog
item's retrieval similarity, sequential, co-occurrence, external, popularity, genre, repeat and profile
scores (``crs.eval.redial.model.FEATURES``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crs.catalog import Catalog
from crs.eval.redial.data import RecTurn
from crs.eval.redial.model import FEATURES, Components
from crs.state import BeliefState, BeliefUpdate, apply
from crs.understand.linker import Linker
from crs.understand.nlu import positive_text, understand

log = logging.getLogger(__name__)

QUERY_SEEKER_UTTERANCES = 2  # the seeker's latest utterances make the retrieval query


QUERY_BATCH = 256  # turns whose queries are embedded together


@dataclass
class TurnFeatures:
    """One turn's per-item features and what the context says."""

    values: np.ndarray  # (F, N) float32, rows in FEATURES order
    mentioned: list[int]  # catalog indices named in the context, in order
    disliked: list[int]  # catalog indices the seeker rejected
    disliked_genre: np.ndarray  # (N,) number of rejected genres each item has
    gold: list[int]
    liked: list[int] = field(default_factory=list)  # catalog indices the seeker liked, in order: the chat's sequence
    given_ids: int = 0  # movie mentions the data format gave
    linked_ids: int = 0  # movie mentions the product's linker found


@dataclass
class Pipeline:
    """Read-only resources for ranking the ReDial catalog: catalog, linker, item vectors, trained
    components."""

    catalog: Catalog
    linker: Linker
    vectors: np.ndarray  # (N, dim) unit vectors, catalog order
    components: Components
    embed: object  # crs.rank.embed.Embedder
    seekers: dict[str, str] = field(default_factory=dict)  # dialogue id -> seeker id, where known
    index: dict[str, int] = field(init=False)
    genre_sets: list[frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {it.id: i for i, it in enumerate(self.catalog)}
        self.genre_sets = [frozenset(g.casefold() for g in it.genres) for it in self.catalog]

    def iter_features(
        self, turns: Sequence[RecTurn], progress: bool = True, desc: str = "turns"
    ) -> Iterator[TurnFeatures]:
        """Features of each turn, the retrieval queries embedded in batches."""
        from tqdm.auto import tqdm

        cache: dict[tuple[str, int], tuple[list[str], BeliefUpdate]] = {}  # a context is re-read every turn
        bar = tqdm(total=len(turns), desc=desc, unit="turn", disable=not progress)
        for lo in range(0, len(turns), QUERY_BATCH):
            part = turns[lo : lo + QUERY_BATCH]
            texts = [self.query_text(t) for t in part]
            vectors = self.embed.encode(texts, batch_size=32)  # type: ignore[attr-defined]  # (B, dim)
            for turn, text, vector in zip(part, texts, vectors, strict=True):
                yield self.features(turn, vector if text else None, cache)
                bar.update()
        bar.close()

    @staticmethod
    def query_text(turn: RecTurn) -> str:
        """The seeker's latest utterances without the words under a negation, as the agent searches."""
        seeker = [u.text for u in turn.context if u.role == "seeker"][-QUERY_SEEKER_UTTERANCES:]
        return " ".join(positive_text(t) for t in seeker).strip()

    def _read(self, text: str, k: int, cache: dict) -> tuple[list[str], BeliefUpdate]:
        if (text, k) not in cache:
            found = [m.value for m in self.linker.mentions(text) if m.kind == "item"]
            cache[(text, k)] = (found, understand(text, self.linker, turn=k))
        return cache[(text, k)]

    def features(self, turn: RecTurn, query: np.ndarray | None, cache: dict | None = None) -> TurnFeatures:
        n = len(self.catalog)
        belief = BeliefState()
        mentioned: dict[int, str] = {}  # index -> role of the first mention
        given = linked = 0
        cache = {} if cache is None else cache
        for k, utt in enumerate(turn.context):
            found, update = self._read(utt.text, k, cache)
            linked += len(found)
            given += len(utt.item_ids)
            for item_id in list(utt.item_ids) + found:
                if item_id in self.index:
                    mentioned.setdefault(self.index[item_id], utt.role)
            if utt.role == "seeker":
                belief = apply(belief, update)
        order = list(mentioned)
        liked = [self.index[i] for i in belief.liked_items if i in self.index]
        seeker_items = [i for i in order if mentioned[i] == "seeker"]
        values = np.zeros((len(FEATURES), n), dtype=np.float32)
        values[FEATURES.index("retrieval")] = self._similarity(query, liked or seeker_items)
        values[FEATURES.index("sequential")] = self.components.sequential(order)
        values[FEATURES.index("cooccurrence")] = self.components.cooccurrence(order)
        values[FEATURES.index("external")] = self.components.external(order)
        values[FEATURES.index("popularity")] = self.components.popularity()
        profile = self.components.profile(self.seekers.get(turn.dialog_id, ""), turn.dialog_id)
        if profile:
            values[FEATURES.index("profile")] = self.components.profile_scores(profile)
        liked_genres = {g.casefold() for g in belief.liked_genres}
        if liked_genres:
            values[FEATURES.index("genre")] = [len(gs & liked_genres) for gs in self.genre_sets]
        rec_items = [i for i in order if mentioned[i] == "recommender"]
        values[FEATURES.index("repeat"), rec_items] = 1.0
        values[FEATURES.index("repeat_seeker"), seeker_items] = 1.0
        disliked_genres = {g.casefold() for g in belief.disliked_genres}
        dg = np.zeros(n, dtype=np.float32)
        if disliked_genres:
            dg[:] = [len(gs & disliked_genres) for gs in self.genre_sets]
        disliked = [self.index[i] for i in belief.disliked_items if i in self.index]
        gold = [self.index[g] for g in turn.gold if g in self.index]
        return TurnFeatures(values, order, disliked, dg, gold, liked, given, linked)

    def _similarity(self, vector: np.ndarray | None, liked: list[int]) -> np.ndarray:
        """Cosine of every item to the query ``crs.rank.candidates.retrieve`` would build: the message's
        vector plus the mean of the liked items' vectors."""
        if liked:
            mean = self.vectors[liked].mean(0)
            vector = mean if vector is None else vector + mean
        if vector is None:
            return np.zeros(len(self.catalog), dtype=np.float32)
        vector = vector / (np.linalg.norm(vector) or 1.0)
        return self.vectors @ vector.astype(np.float32)


def build_pipeline(catalog: Catalog, components: Components, index_dir: Path, progress: bool = True) -> Pipeline:
    """Index the catalog (idempotent, in ``index_dir``) and gather its vectors."""
    from crs.config import Config, StoreConfig
    from crs.rank.store import ItemStore

    cfg = Config(store=StoreConfig(path=index_dir, collection="redial"))
    store = ItemStore(cfg)
    store.index(catalog, progress=progress, prune=True)
    stored = store.get_embeddings([it.id for it in catalog])
    dim = len(next(iter(stored.values())))
    vectors = np.stack([stored.get(it.id, np.zeros(dim, dtype=np.float32)) for it in catalog]).astype(np.float32)
    return Pipeline(catalog, Linker(catalog), vectors, components, store.embedder)

"""ReDial conversational recommendation, measured with the product's own pipeline.

For every recommender turn with gold movies, the whole ReDial catalog is ranked from the dialogue
so far, the way the agent does it:

1. understanding: ``crs.understand.nlu.Linker`` finds movies, genres and people in every utterance (plus the
   movie ids the data format gives, see ``crs.eval.redial_data``); ``crs.understand.nlu.understand`` reads
   the seeker's utterances into ``crs.state.BeliefUpdate``s, merged with ``crs.state.apply``;
2. retrieval: the ``crs.rank.store.ItemStore`` vectors (shipped MiniLM over the items' text) against a
   query built as ``crs.rank.candidates.retrieve`` builds it: the seeker's words not under a negation, plus
   the items they like; cosine over the full catalog (``store.search`` with k = all items);
3. scoring: a weighted sum like ``crs.rank.candidates.score`` (similarity, liked-genre bonus, popularity)
   with the sequential scorer (SASRec over the movies mentioned so far), item-item co-occurrence
   in training dialogues and item-item cosine over MovieLens users (``crs.eval.redial_model``);
   the weights are chosen on held-out training dialogues, never on the evaluated file;
4. dispreference filtering: disliked movies never come back, disliked genres sink; in the
   ``no_repeat`` ranking every movie already mentioned is excluded, as the agent never
   recommends what was already named.

Recall@k is counted per (turn, gold movie), as UniCRS and CRSLab do; ``no_repeat`` drops gold
movies already mentioned earlier in the context (Kostric & Balog).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from crs.catalog import Catalog
from crs.config import Config, ScoringConfig
from crs.eval.redial_data import RecTurn
from crs.eval.redial_model import DEFAULT_WEIGHTS, FEATURES, Components, Weights, agent_weights
from crs.state import BeliefState, BeliefUpdate, apply
from crs.understand.nlu import Linker, positive_text, understand

log = logging.getLogger(__name__)

KS = (1, 10, 50)
QUERY_SEEKER_UTTERANCES = 2  # the seeker's latest utterances make the retrieval query
QUERY_BATCH = 256  # turns whose queries are embedded together
CROSS_FIT_TUNING_FOLDS = 3  # per cross-fitted fold: folds of the non-evaluated dialogues that choose its weights
AGENT_ROW = "the chat agent's [scoring] weights (retrieval, SASRec, popularity, genres; dislikes filtered)"
FULL_ROW = "+ profile (the seeker's liked movies in their earlier training dialogues)"  # the whole pipeline


@dataclass
class TurnFeatures:
    """One turn's per-item features and what the context says."""

    values: np.ndarray  # (F, N) float32, rows in FEATURES order
    mentioned: list[int]  # catalog indices named in the context, in order
    disliked: list[int]  # catalog indices the seeker rejected
    disliked_genre: np.ndarray  # (N,) number of rejected genres each item has
    gold: list[int]
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
    embed: object  # crs.rank.store.Embedder
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
        return TurnFeatures(values, order, disliked, dg, gold, given, linked)

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


def fuse(f: TurnFeatures, weights: Weights, *, no_repeat: bool, filtering: bool = True) -> np.ndarray:
    """The fused score of every item; excluded items get -inf."""
    w = np.array([weights.get(name, 0.0) for name in FEATURES], dtype=np.float32)
    if no_repeat:  # mentioned movies are excluded below; no bonus for them
        w[FEATURES.index("repeat")] = w[FEATURES.index("repeat_seeker")] = 0.0
    score = w @ f.values  # (N,)
    if filtering:
        score = score - weights.get("disliked_genre", 1.0) * f.disliked_genre
        score[f.disliked] = -np.inf
    if no_repeat:
        score[f.mentioned] = -np.inf
    return score


def gold_ranks(score: np.ndarray, gold: Iterable[int]) -> list[int]:
    """0-based rank of each gold item (ties counted against it)."""
    return [int((score > score[g]).sum() + (score == score[g]).sum() - 1) if np.isfinite(score[g]) else 10**9
            for g in gold]  # fmt: skip


@dataclass
class Recall:
    """Hits per (turn, gold item) sample for both protocols."""

    hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(KS, 0))
    samples: int = 0
    hits_nr: dict[int, int] = field(default_factory=lambda: dict.fromkeys(KS, 0))
    samples_nr: int = 0
    turns: int = 0
    turns_nr: int = 0

    def add(self, f: TurnFeatures, weights: Weights, filtering: bool = True) -> None:
        self.turns += 1
        for r in gold_ranks(fuse(f, weights, no_repeat=False, filtering=filtering), f.gold):
            self.samples += 1
            for k in KS:
                self.hits[k] += r < k
        fresh = [g for g in f.gold if g not in set(f.mentioned)]
        self.turns_nr += bool(fresh)
        for r in gold_ranks(fuse(f, weights, no_repeat=True, filtering=filtering), fresh):
            self.samples_nr += 1
            for k in KS:
                self.hits_nr[k] += r < k

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {f"recall@{k}": self.hits[k] / max(self.samples, 1) for k in KS}
        out["no_repeat"] = {f"recall@{k}": self.hits_nr[k] / max(self.samples_nr, 1) for k in KS} | {
            "samples": self.samples_nr,
            "turns": self.turns_nr,
        }
        out["samples"] = self.samples
        out["turns"] = self.turns
        return out


@dataclass
class TuningSet:
    """Held-out turns stacked for fast scoring: the weights are searched over many times."""

    values: np.ndarray  # (T, F, N) float32
    mentioned: np.ndarray  # (T, N) bool
    disliked: np.ndarray  # (T, N) bool
    disliked_genre: np.ndarray  # (T, N) float32
    gold_turn: np.ndarray  # (P,) turn of each (turn, gold) sample
    gold_item: np.ndarray  # (P,)

    @classmethod
    def of(cls, feats: Sequence[TurnFeatures]) -> TuningSet:
        t, n = len(feats), feats[0].values.shape[1]
        mentioned = np.zeros((t, n), dtype=bool)
        disliked = np.zeros((t, n), dtype=bool)
        for k, x in enumerate(feats):
            mentioned[k, x.mentioned] = True
            disliked[k, x.disliked] = True
        pairs = [(k, g) for k, x in enumerate(feats) for g in x.gold]
        return cls(
            np.stack([x.values for x in feats]), mentioned, disliked, np.stack([x.disliked_genre for x in feats]),
            np.array([k for k, _ in pairs], dtype=np.int64), np.array([g for _, g in pairs], dtype=np.int64),
        )  # fmt: skip

    def recall(self, weights: Weights, no_repeat: bool) -> tuple[float, float]:
        """(Recall@10, Recall@50) under ``fuse``'s rules, for all samples or the no-repeat ones."""
        w = np.array([weights.get(name, 0.0) for name in FEATURES], dtype=np.float32)
        if no_repeat:
            w[FEATURES.index("repeat")] = w[FEATURES.index("repeat_seeker")] = 0.0
        score = np.einsum("f,tfn->tn", w, self.values) - weights.get("disliked_genre", 1.0) * self.disliked_genre
        banned = self.disliked | self.mentioned if no_repeat else self.disliked
        score[banned] = -np.inf
        keep = ~self.mentioned[self.gold_turn, self.gold_item] if no_repeat else np.ones(len(self.gold_item), bool)
        rows, items = self.gold_turn[keep], self.gold_item[keep]
        if not len(rows):
            return 0.0, 0.0
        target = score[rows, items]  # (P,)
        ranks = (score[rows] >= target[:, None]).sum(1) - 1  # (P,) ties against the gold item
        ranks[~np.isfinite(target)] = 10**9
        return float((ranks < 10).mean()), float((ranks < 50).mean())


def objective(data: TuningSet, weights: Weights) -> float:
    """What blending weights are chosen for: no-repeat Recall@10 + Recall@50 + all-mention Recall@10."""
    r10, r50 = data.recall(weights, no_repeat=True)
    return r10 + r50 + data.recall(weights, no_repeat=False)[0]


def tune_weights(feats: Sequence[TurnFeatures], start: Weights, rounds: int = 2) -> Weights:
    """Coordinate search over the blending weights on held-out training turns."""
    feats = TuningSet.of(feats)  # type: ignore[assignment]
    best = dict(start)
    best_score = objective(feats, best)
    grid = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    for _ in range(rounds):
        for name in [*FEATURES, "disliked_genre"]:
            if name == "retrieval":
                continue  # the scale: the others are relative to it
            for value in grid:
                trial = dict(best) | {name: value}
                s = objective(feats, trial)
                if s > best_score + 1e-9:
                    best, best_score = trial, s
    log.info("tuned weights %s (objective %.4f)", best, best_score)
    return best


def markdown_table(rows: dict[str, dict[str, object]]) -> str:
    lines = [
        "| system | R@1 | R@10 | R@50 | no-repeat R@1 | no-repeat R@10 | no-repeat R@50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in rows.items():
        nr = d.get("no_repeat") or {}

        def cell(v: object) -> str:
            return f"{v:.3f}" if isinstance(v, float) else ("–" if v is None else str(v))

        lines.append(
            f"| {name} | " + " | ".join(cell(d.get(f"recall@{k}")) for k in KS) + " | "
            + " | ".join(cell(nr.get(f"recall@{k}")) for k in KS) + " |"  # type: ignore[union-attr]
        )  # fmt: skip
    return "\n".join(lines)


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


# -- the command ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedialRun:
    turns: Path
    out: Path | None
    movies: Path
    info: Path | None
    model_dir: Path | None = None  # default: a cache folder keyed by the evaluated dialogues
    cache_dir: Path | None = None  # default: crs.config's cache dir
    limit: int | None = None
    fmt: str = "auto"
    train_files: tuple[Path, ...] = ()
    movielens: Path | None = None
    seq_epochs: int = 60
    folds: int = 5  # dialogue-level folds of the training dialogues for choosing the weights
    # > 1: cross-fitting. The evaluated dialogues are cut into this many dialogue-level folds and each
    # fold is ranked by components trained on every training dialogue except that fold's, so the
    # evaluated file's other dialogues (when the training files hold them, as partial_train holds
    # the validation dialogues) are used too; no dialogue is ever ranked by a model trained on it.
    cross_fit: int = 1
    scoring: ScoringConfig = field(default_factory=ScoringConfig)  # the agent's weights, for their own row
    progress: bool = True
    threads: int = 1  # torch threads (the CPU is shared)


def _sequences(dialogues: Sequence[dict], catalog: Catalog) -> list[list[str]]:
    from crs.eval.redial_data import dialogue_mentions

    return [dialogue_mentions(d, catalog) for d in dialogues]


def _dialogue_fold(dialogue_id: str, folds: int) -> int:
    import hashlib

    return int(hashlib.sha1(str(dialogue_id).encode()).hexdigest(), 16) % folds


@dataclass
class TrainingData:
    """What training reads, read once per run: the training dialogues and the external interactions."""

    run: RedialRun
    catalog: Catalog

    @cached_property
    def dialogues(self) -> list[dict]:
        from crs.eval.redial_data import load_dialogues

        return load_dialogues(self.run.train_files)

    @cached_property
    def external(self) -> list[list[str]]:
        from crs.eval.redial_data import movielens_sequences

        return movielens_sequences(self.run.movielens, self.catalog) if self.run.movielens else []

    def without(self, left_out: set[str]) -> list[dict]:
        dialogues = [d for d in self.dialogues if str(d["conversationId"]) not in left_out]
        if not dialogues:
            raise ValueError("no training dialogue is left once the evaluated dialogues are left out")
        return dialogues

    def fit(self, dialogues: Sequence[dict]) -> Components:
        """Components (popularity, co-occurrence, SASRec, item-item, seeker profiles) on ``dialogues``."""
        from crs.eval.redial_data import seeker_history
        from crs.eval.redial_model import SeqTrainConfig, train_components

        return train_components(
            [it.id for it in self.catalog], _sequences(dialogues, self.catalog), self.external,
            SeqTrainConfig(epochs=self.run.seq_epochs), self.run.progress, seeker_history(dialogues, self.catalog),
        )  # fmt: skip


def train_for(
    data: TrainingData,
    pipeline: Pipeline,
    left_out: set[str],
    never_held_out: set[str] | None = None,
    folds: int = 0,
) -> Components:
    """Train on the training dialogues not in ``left_out``. The blending weights are chosen on
    held-out training turns: ``folds`` (default ``run.folds``) dialogue-level folds of the dialogues
    not in ``never_held_out``, each fold's turns scored by components trained on every other
    dialogue; then everything is trained again on all of them."""
    import time

    from crs.eval.redial_data import raw_turns

    started = time.perf_counter()
    run, catalog = data.run, data.catalog
    dialogues = data.without(left_out)
    folds = folds or run.folds

    def fold(d: dict) -> int:
        i = str(d["conversationId"])
        return -1 if never_held_out and i in never_held_out else _dialogue_fold(i, folds)

    feats: list[TurnFeatures] = []
    for k in range(folds):
        fit = [d for d in dialogues if fold(d) != k]
        dev_turns = raw_turns([d for d in dialogues if fold(d) == k], catalog)
        log.info("tuning fold %d: %d training dialogues, %d held-out turns", k, len(fit), len(dev_turns))
        pipeline.components = data.fit(fit)
        feats += pipeline.iter_features(dev_turns, run.progress, f"held-out turns, fold {k + 1}/{folds}")
    components = data.fit(dialogues)
    components.weights = tune_weights(feats, DEFAULT_WEIGHTS)
    components.meta |= {
        "train_dialogue_ids": sorted(str(d["conversationId"]) for d in dialogues),
        "tuning": {"folds": folds, "held_out_turns": len(feats)},
        "movielens_users": len(data.external),
        "left_out_dialogues": len(left_out),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    return components


def _load_or_train(folder: Path, catalog: Catalog, left_out: set[str], train: Callable[[], Components]) -> Components:
    """Components from ``folder`` when it holds them (refused if trained on a dialogue of
    ``left_out`` or on another catalog), else ``train()``, saved there."""
    from crs.eval.redial_data import RedialDataError

    if not (folder / "meta.json").exists():
        components = train()
        components.save(folder)
        return components
    components = Components.load(folder)
    leaked = left_out & set(components.meta.get("train_dialogue_ids", []))
    if leaked:
        raise RedialDataError(
            f"{folder} was trained on {len(leaked)} of the evaluated dialogues; train again with another --model-dir"
        )
    if components.item_ids != [it.id for it in catalog]:
        raise RedialDataError(f"{folder} was trained on another catalog; use another --model-dir")
    log.info("loaded trained components from %s", folder)
    return components


def run_redial(run: RedialRun) -> dict[str, object]:
    """Train (or load) the components, rank every turn of ``run.turns``, return and write the report."""
    import hashlib
    import json
    import time

    import torch

    from crs.config import default_cache_dir
    from crs.eval.redial_data import (
        RedialDataError,
        detect_format,
        file_dialogue_ids,
        load_dialogues,
        load_redial_catalog,
        read_turns,
    )

    if run.limit is not None and run.limit < 1:
        raise RedialDataError(f"--limit must be at least 1, got {run.limit}")
    if run.cross_fit < 1:
        raise RedialDataError(f"--cross-fit must be at least 1, got {run.cross_fit}")
    torch.set_num_threads(run.threads)
    started = time.perf_counter()
    catalog = load_redial_catalog(run.movies, run.info)
    turns = read_turns(run.turns, catalog, run.fmt)
    if not turns:
        raise RedialDataError(f"{run.turns}: no recommender turn with a gold movie in the catalog")
    evaluated = file_dialogue_ids(run.turns)  # every dialogue of the file, --limit or not
    if run.limit:
        turns = turns[: run.limit]
    cache = run.cache_dir or default_cache_dir()
    settings = [
        "v2",
        run.seq_epochs,
        run.folds,
        run.movielens,
        *run.train_files,
        run.movies,
        run.info,
        *sorted(evaluated),
    ]
    key = hashlib.sha1(" ".join(map(str, settings)).encode()).hexdigest()[:12]
    model_dir = run.model_dir or cache / "redial" / f"model-{key}"
    placeholder = Components([it.id for it in catalog], np.zeros(len(catalog)), None)  # until trained or loaded
    pipeline = build_pipeline(catalog, placeholder, cache / "redial" / "index", run.progress)
    data = TrainingData(run, catalog)
    known = data.dialogues + (load_dialogues([run.turns]) if detect_format(run.turns) == "raw" else [])
    pipeline.seekers = {str(d["conversationId"]): str(d.get("initiatorWorkerId") or "") for d in known}
    components = _load_or_train(model_dir, catalog, evaluated, lambda: train_for(data, pipeline, evaluated))
    weights = components.weights
    # the components that rank each turn: one set, or with cross-fitting one per fold of dialogues
    by_fold: list[tuple[Components, list[RecTurn]]] = [(components, turns)]
    if run.cross_fit > 1:
        by_fold = []
        for k in range(run.cross_fit):
            fold_ids = {i for i in evaluated if _dialogue_fold(i, run.cross_fit) == k}
            fold_turns = [t for t in turns if t.dialog_id in fold_ids]
            folder = model_dir / f"crossfit-nested-{run.cross_fit}-{k}"
            log.info("cross-fit fold %d: %d dialogues left out, %d turns", k, len(fold_ids), len(fold_turns))
            # nested: this fold's weights are tuned on turns of non-evaluated dialogues, each scored by
            # components trained on every dialogue but this fold's and that tuning fold's
            fitted = _load_or_train(
                folder, catalog, fold_ids,
                lambda ids=fold_ids: train_for(data, pipeline, ids, never_held_out=evaluated, folds=CROSS_FIT_TUNING_FOLDS),
            )  # fmt: skip
            by_fold.append((fitted, fold_turns))
    trained = time.perf_counter() - started
    ablation: dict[str, tuple[Callable[[Weights], Weights], bool]] = {  # name -> (weights from tuned, filtering)
        "retrieval only": (lambda w: {"retrieval": 1.0}, False),
        "+ sequential scorer (SASRec, co-occurrence, MovieLens item-item, popularity, genres)": (
            lambda w: w | {"profile": 0.0}, False,
        ),
        "+ belief-state dispreference filtering": (lambda w: w | {"profile": 0.0}, True),
        FULL_ROW: (lambda w: w, True),
        "(alone) popularity in training dialogues": (lambda w: {"popularity": 1.0}, False),
        "(alone) SASRec": (lambda w: {"sequential": 1.0}, False),
        AGENT_ROW: (lambda w: agent_weights(run.scoring, pipeline.components), True),
    }  # fmt: skip
    recalls = {name: Recall() for name in ablation}
    given = linked = 0
    for k, (fitted, fold_turns) in enumerate(by_fold):
        pipeline.components = fitted
        desc = "ReDial turns" if len(by_fold) == 1 else f"ReDial turns, fold {k + 1}/{len(by_fold)}"
        for f in pipeline.iter_features(fold_turns, run.progress, desc):
            given, linked = given + f.given_ids, linked + f.linked_ids
            for name, (make, filtering) in ablation.items():
                recalls[name].add(f, make(fitted.weights), filtering)
    rows = {name: rec.as_dict() for name, rec in recalls.items()}
    report: dict[str, object] = dict(rows[FULL_ROW])
    meta = components.meta
    report |= {
        "ablation": rows,
        "weights": weights if len(by_fold) == 1 else [c.weights for c, _ in by_fold],
        "file": str(run.turns),
        "catalog_items": len(catalog),
        "dialogues_evaluated": len({t.dialog_id for t in turns}),
        "dialogues_left_out_of_training": len(evaluated),
        "trained_on": {
            "dialogues": len(meta.get("train_dialogue_ids", [])),
            "movielens_users": meta.get("movielens_users", 0),
            "sasrec_sequences": meta.get("sasrec_sequences", 0),
            "tuning": meta.get("tuning", {}),
            "cross_fit": {
                "folds": run.cross_fit,
                "dialogues_per_fold": [len(c.meta.get("train_dialogue_ids", [])) for c, _ in by_fold],
            }
            if run.cross_fit > 1
            else None,
        },
        "understanding": {
            "given_movie_mentions": given,
            "linked_movie_mentions": linked,
        },
        "model_dir": str(model_dir),
        "seconds": {
            "train_or_load": round(trained, 1),
            "total": round(time.perf_counter() - started, 1),
            "training_when_trained": meta.get("train_seconds"),
        },
    }
    if run.out is not None:
        run.out.parent.mkdir(parents=True, exist_ok=True)
        run.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def redial_command(args: object, cfg: Config) -> int:
    """``crs eval redial``: run, print the markdown table, 2 with one error line on bad input.
    Files not given come from the config's ``[paths] data_root``."""
    import sys

    from crs.catalog import CatalogError
    from crs.eval.redial_data import RedialDataError, RedialFiles

    a = vars(args)
    files = RedialFiles.from_config(cfg)
    movielens = a.get("movielens")
    info = files.info if a.get("info") is None else a["info"]
    run = RedialRun(
        turns=Path(a["turns"]),
        out=Path(a["out"]),
        movies=Path(a.get("movies") or files.movies),
        info=Path(info) if info else None,
        model_dir=Path(a["model_dir"]) if a.get("model_dir") else None,
        cache_dir=cfg.paths.cache_dir,
        scoring=cfg.scoring,
        limit=a.get("limit"),
        fmt=a.get("turn_format") or "auto",
        train_files=tuple(Path(p) for p in a.get("train") or files.train),
        movielens=files.movielens if movielens is None else (Path(movielens) if movielens else None),
        seq_epochs=a.get("epochs") or 60,
        cross_fit=1 if a.get("cross_fit") is None else a["cross_fit"],
    )
    try:
        report = run_redial(run)
    except (RedialDataError, CatalogError, ValueError) as exc:
        print(f"crs: error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(report["ablation"]))  # type: ignore[arg-type]
    print(f"report: {run.out}")
    return 0

"""Ranking the catalog from a turn's features: the fused score, gold ranks, Recall@k with and without
repeated mentions, and the coordinate search that chooses the blending weights on held-out turns."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from crs.eval.redial.features import TurnFeatures
from crs.eval.redial.model import FEATURES, Weights

log = logging.getLogger(__name__)

KS = (1, 10, 50)  # the table's columns
CURVE_K = 50  # Recall@k is kept for every k up to this


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
    """Gold ranks per (turn, gold item) sample for both protocols, kept as a histogram of ranks up to
    ``CURVE_K`` so that Recall@k is known for every k from 1 to ``CURVE_K``."""

    ranks: np.ndarray = field(default_factory=lambda: np.zeros(CURVE_K, dtype=np.int64))  # ranks[r]: samples at r
    samples: int = 0
    ranks_nr: np.ndarray = field(default_factory=lambda: np.zeros(CURVE_K, dtype=np.int64))
    samples_nr: int = 0
    turns: int = 0
    turns_nr: int = 0

    def add(self, f: TurnFeatures, weights: Weights, filtering: bool = True) -> None:
        self.turns += 1
        for r in gold_ranks(fuse(f, weights, no_repeat=False, filtering=filtering), f.gold):
            self.samples += 1
            if r < CURVE_K:
                self.ranks[r] += 1
        fresh = [g for g in f.gold if g not in set(f.mentioned)]
        self.turns_nr += bool(fresh)
        for r in gold_ranks(fuse(f, weights, no_repeat=True, filtering=filtering), fresh):
            self.samples_nr += 1
            if r < CURVE_K:
                self.ranks_nr[r] += 1

    @staticmethod
    def _curve(ranks: np.ndarray, samples: int) -> list[float]:
        return [float(x) for x in np.cumsum(ranks) / max(samples, 1)]  # [recall@1, ..., recall@CURVE_K]

    def as_dict(self, ks: Sequence[int] = KS) -> dict[str, object]:
        """Recall@k for ``ks`` (each at most ``CURVE_K``), and the whole curve from 1 to ``CURVE_K``."""
        curve, curve_nr = self._curve(self.ranks, self.samples), self._curve(self.ranks_nr, self.samples_nr)
        out: dict[str, object] = {f"recall@{k}": curve[k - 1] for k in ks}
        out["no_repeat"] = {f"recall@{k}": curve_nr[k - 1] for k in ks} | {
            "samples": self.samples_nr,
            "turns": self.turns_nr,
            "curve": curve_nr,
        }
        out["samples"] = self.samples
        out["turns"] = self.turns
        out["curve"] = curve
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

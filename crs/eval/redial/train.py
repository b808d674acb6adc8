"""Training the ReDial components leak-free: on the training dialogues minus the evaluated ones, with the
blending weights tuned on held-out folds of the training dialogues, cached per set of left-out dialogues."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from crs.catalog import Catalog
from crs.eval.redial.features import Pipeline, TurnFeatures
from crs.eval.redial.model import DEFAULT_WEIGHTS, Components
from crs.eval.redial.ranking import tune_weights

log = logging.getLogger(__name__)

CROSS_FIT_TUNING_FOLDS = 3  # per cross-fitted fold: folds of the non-evaluated dialogues that choose its weights


def _sequences(dialogues: Sequence[dict], catalog: Catalog) -> list[list[str]]:
    from crs.eval.redial.data import dialogue_mentions

    return [dialogue_mentions(d, catalog) for d in dialogues]


def dialogue_fold(dialogue_id: str, folds: int) -> int:
    import hashlib

    return int(hashlib.sha1(str(dialogue_id).encode()).hexdigest(), 16) % folds


@dataclass
class TrainingData:
    """What training reads, read once per run: the training dialogues and the external interactions."""

    catalog: Catalog
    train_files: Sequence[Path]  # raw ReDial training dialogues
    movielens: Path | None  # ml-latest-small folder for external interactions
    seq_epochs: int = 60
    folds: int = 5  # dialogue-level folds of the training dialogues for choosing the weights
    progress: bool = True

    @cached_property
    def dialogues(self) -> list[dict]:
        from crs.eval.redial.data import load_dialogues

        return load_dialogues(self.train_files)

    @cached_property
    def external(self) -> list[list[str]]:
        from crs.eval.redial.data import movielens_sequences

        return movielens_sequences(self.movielens, self.catalog) if self.movielens else []

    def without(self, left_out: set[str]) -> list[dict]:
        dialogues = [d for d in self.dialogues if str(d["conversationId"]) not in left_out]
        if not dialogues:
            raise ValueError("no training dialogue is left once the evaluated dialogues are left out")
        return dialogues

    def fit(self, dialogues: Sequence[dict]) -> Components:
        """Components (popularity, co-occurrence, SASRec, item-item, seeker profiles) on ``dialogues``."""
        from crs.eval.redial.data import seeker_history
        from crs.eval.redial.model import SeqTrainConfig, train_components

        return train_components(
            [it.id for it in self.catalog], _sequences(dialogues, self.catalog), self.external,
            SeqTrainConfig(epochs=self.seq_epochs), self.progress, seeker_history(dialogues, self.catalog),
        )  # fmt: skip


def train_for(
    data: TrainingData,
    pipeline: Pipeline,
    left_out: set[str],
    never_held_out: set[str] | None = None,
    folds: int = 0,
) -> Components:
    """Train on the training dialogues not in ``left_out``. The blending weights are chosen on
    held-out training turns: ``folds`` (default ``data.folds``) dialogue-level folds of the dialogues
    not in ``never_held_out``, each fold's turns scored by components trained on every other
    dialogue; then everything is trained again on all of them."""
    import time

    from crs.eval.redial.data import raw_turns

    started = time.perf_counter()
    catalog = data.catalog
    dialogues = data.without(left_out)
    folds = folds or data.folds

    def fold(d: dict) -> int:
        i = str(d["conversationId"])
        return -1 if never_held_out and i in never_held_out else dialogue_fold(i, folds)

    feats: list[TurnFeatures] = []
    for k in range(folds):
        fit = [d for d in dialogues if fold(d) != k]
        dev_turns = raw_turns([d for d in dialogues if fold(d) == k], catalog)
        log.info("tuning fold %d: %d training dialogues, %d held-out turns", k, len(fit), len(dev_turns))
        pipeline.components = data.fit(fit)
        feats += pipeline.iter_features(dev_turns, data.progress, f"held-out turns, fold {k + 1}/{folds}")
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


def load_or_train(folder: Path, catalog: Catalog, left_out: set[str], train: Callable[[], Components]) -> Components:
    """Components from ``folder`` when it holds them (refused if trained on a dialogue of
    ``left_out`` or on another catalog), else ``train()``, saved there."""
    from crs.eval.redial.data import RedialDataError

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

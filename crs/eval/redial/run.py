"""``crs eval redial``: train (or load) the components leak-free, rank every turn, report Recall@k."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crs.catalog import Catalog
from crs.config import Config, ScoringConfig
from crs.eval.redial.data import RecTurn
from crs.eval.redial.features import TurnFeatures, build_pipeline
from crs.eval.redial.model import FEATURES, Components, Weights, agent_weights
from crs.eval.redial.ranking import CURVE_K, KS, Recall, markdown_table
from crs.eval.redial.train import CROSS_FIT_TUNING_FOLDS, TrainingData, dialogue_fold, load_or_train, train_for

if TYPE_CHECKING:
    from crs.rank.scorer import SeqScorer

log = logging.getLogger(__name__)

AGENT_ROW = "the chat agent's [scoring] weights (retrieval, SASRec, popularity, genres; dislikes filtered)"
FULL_ROW = "+ profile (the seeker's liked movies in their earlier training dialogues)"  # the whole pipeline


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
    ks: tuple[int, ...] = KS  # the Recall@k reported (the curve always runs from 1 to CURVE_K)
    # Chat scorer checkpoints (``crs.rank.scorer.SeqScorer``) measured in rows of their own, fed the
    # seeker's liked movies as the chat feeds them; they must be trained without the evaluated dialogues.
    scorers: tuple[Path, ...] = ()
    scorer_weights: tuple[float, ...] = ()  # [scoring] sequential weights tried with them (default: the config's)
    # what the scorers read: the liked movies (as the chat), and/or every movie named (a diagnostic)
    scorer_inputs: tuple[Literal["liked", "mentioned"], ...] = ("liked",)
    progress: bool = True
    threads: int = 1  # torch threads (the CPU is shared)


def run_redial(run: RedialRun) -> dict[str, object]:
    """Train (or load) the components, rank every turn of ``run.turns``, return and write the report."""
    import hashlib
    import json
    import time

    import torch

    from crs.config import default_cache_dir
    from crs.eval.redial.data import (
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
    data = TrainingData(catalog, run.train_files, run.movielens, run.seq_epochs, run.folds, run.progress)
    known = data.dialogues + (load_dialogues([run.turns]) if detect_format(run.turns) == "raw" else [])
    pipeline.seekers = {str(d["conversationId"]): str(d.get("initiatorWorkerId") or "") for d in known}
    components = load_or_train(model_dir, catalog, evaluated, lambda: train_for(data, pipeline, evaluated))
    weights = components.weights
    # the components that rank each turn: one set, or with cross-fitting one per fold of dialogues
    by_fold: list[tuple[Components, list[RecTurn]]] = [(components, turns)]
    if run.cross_fit > 1:
        by_fold = []
        for k in range(run.cross_fit):
            fold_ids = {i for i in evaluated if dialogue_fold(i, run.cross_fit) == k}
            fold_turns = [t for t in turns if t.dialog_id in fold_ids]
            folder = model_dir / f"crossfit-nested-{run.cross_fit}-{k}"
            log.info("cross-fit fold %d: %d dialogues left out, %d turns", k, len(fold_ids), len(fold_turns))
            # nested: this fold's weights are tuned on turns of non-evaluated dialogues, each scored by
            # components trained on every dialogue but this fold's and that tuning fold's
            fitted = load_or_train(
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
    scorer_rows = scorer_ablation(run, catalog, pipeline.components)
    recalls = {name: Recall() for name in [*ablation, *scorer_rows]}
    given = linked = 0
    for k, (fitted, fold_turns) in enumerate(by_fold):
        pipeline.components = fitted
        desc = "ReDial turns" if len(by_fold) == 1 else f"ReDial turns, fold {k + 1}/{len(by_fold)}"
        for f in pipeline.iter_features(fold_turns, run.progress, desc):
            given, linked = given + f.given_ids, linked + f.linked_ids
            for name, (make, filtering) in ablation.items():
                recalls[name].add(f, make(fitted.weights), filtering)
            with_scorer: dict[int, TurnFeatures] = {}
            for name, (sc, weights, filtering) in scorer_rows.items():
                if id(sc) not in with_scorer:
                    with_scorer[id(sc)] = sc.features(f)
                recalls[name].add(with_scorer[id(sc)], weights, filtering)
    rows = {name: rec.as_dict(run.ks) for name, rec in recalls.items()}
    report: dict[str, object] = dict(rows[FULL_ROW])
    meta = components.meta
    report |= {
        "ablation": rows,
        "scorers": {sc.path.name: sc.describe() for sc, _, _ in scorer_rows.values()},
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
        recall_chart(rows, run.out.with_suffix(".png"))
    return report


@dataclass
class ChatScorer:
    """A chat scorer checkpoint over the ReDial catalog, as the chat uses it: z-scores of the items it
    knows after the seeker's liked movies (``SeqScorer.scores``), 0 for the others."""

    path: Path
    scorer: SeqScorer
    ids: list[str]  # the catalog's ids, in catalog order
    reads: Literal["liked", "mentioned"] = "liked"

    def features(self, f: TurnFeatures) -> TurnFeatures:
        """``f`` with its sequential row replaced by this scorer's scores."""
        seq = f.liked if self.reads == "liked" else f.mentioned
        z = self.scorer.scores([self.ids[i] for i in seq], self.ids)
        values = f.values.copy()
        values[FEATURES.index("sequential")] = np.array([z.get(i, 0.0) for i in self.ids], dtype=np.float32)
        return replace(f, values=values)

    def describe(self) -> dict[str, object]:
        m = self.scorer.match
        return {"path": str(self.path), "model": self.scorer.name, "items": m.total, "matched_catalog": m.matched}


def scorer_ablation(
    run: RedialRun, catalog: Catalog, components: Components
) -> dict[str, tuple[ChatScorer, Weights, bool]]:
    """Rows for ``run.scorers``: each alone, and in the chat's ``[scoring]`` weights (one row per
    weight in ``run.scorer_weights``) -> name -> (scorer, weights, filtering)."""
    from crs.rank.scorer import SeqScorer

    rows: dict[str, tuple[ChatScorer, Weights, bool]] = {}
    ids = [it.id for it in catalog]
    for path in run.scorers:
        loaded = SeqScorer.load(path, catalog)
        log.info("chat scorer %s: %s", path.name, loaded.match)
        for reads in run.scorer_inputs:
            sc = ChatScorer(path, loaded, ids, reads)
            name = path.stem if reads == "liked" else f"{path.stem} reading every movie named"
            rows[f"(alone) chat scorer {name}"] = (sc, {"sequential": 1.0}, False)
            for w in run.scorer_weights or (run.scoring.sequential,):
                weights = agent_weights(replace(run.scoring, sequential=w), components)
                rows[f"the chat agent's [scoring] weights, chat scorer {name} (sequential {w:g})"] = (sc, weights, True)
    return rows


def recall_chart(rows: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Recall@k for k = 1..CURVE_K of the main rows, all mentions and no repeats, as a PNG at ``path``."""
    from crs.eval.plots import Panel, line_charts

    shown = [n for n in ("retrieval only", AGENT_ROW, FULL_ROW) if n in rows]
    label = {"retrieval only": "retrieval only", AGENT_ROW: "chat agent's weights", FULL_ROW: "full pipeline"}
    ks = list(range(1, CURVE_K + 1))
    panels = [
        Panel(name, "k", "Recall@k", {label[n]: (ks, get(rows[n])) for n in shown})
        for name, get in (("all mentions", lambda r: r["curve"]), ("repeated mentions removed", lambda r: r["no_repeat"]["curve"]))
    ]  # fmt: skip
    return line_charts(path, panels, title or "ReDial Recall@k, full catalog")


def redial_command(args: object, cfg: Config) -> int:
    """``crs eval redial``: run, print the markdown table, 2 with one error line on bad input.
    Files not given come from the config's ``[paths] data_root``."""
    import sys

    from crs.catalog import CatalogError
    from crs.eval.redial.data import RedialDataError, RedialFiles

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
        ks=tuple(a.get("ks") or KS),
        scorers=tuple(Path(p) for p in a.get("scorer") or ()),
        scorer_weights=tuple(a.get("scorer_weights") or ()),
        scorer_inputs=tuple(a.get("scorer_input") or ("liked",)),
    )
    try:
        report = run_redial(run)
    except (RedialDataError, CatalogError, ValueError) as exc:
        print(f"crs: error: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(report["ablation"]))  # type: ignore[arg-type]
    print(f"report: {run.out}")
    return 0

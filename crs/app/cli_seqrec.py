"""``crs train seqrec`` and ``crs eval seqrec``: train a sequential scorer on interaction data and
measure it (leave-one-out, HR@10 / NDCG@10 under the sampled-100 and full-ranking protocols).

    crs train seqrec --model sasrec --data ../shared/data/movielens-latest-small --out models/ml-sasrec
    crs eval seqrec --checkpoint models/ml-sasrec --data ../shared/data/movielens-latest-small

The output folder gets ``model.pt`` (config, weights, item ids and titles; what ``[scorer]
checkpoint`` points at) and ``train.json`` (settings, timings, validation scores). ``duip`` and
``p2rec`` need item titles (``--titles``, default ``movies.csv`` beside the ratings) and the local LLM.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.config import Config
from crs.seqrec.fit import MODELS  # light to import: torch loads inside fit_model

if TYPE_CHECKING:
    from crs.seqrec.train import EpochLog

log = logging.getLogger(__name__)

CHECKPOINT = "model.pt"


class SeqCliError(ValueError):
    """Bad arguments or data for the seqrec commands (printed as ``crs: error: ...``)."""


def add_train_parser(sub: Any) -> None:
    sp = sub.add_parser("train", help="train a model")
    tr = sp.add_subparsers(dest="train_command", required=True)
    sq = tr.add_parser("seqrec", help="train a sequential scorer (writes OUT/model.pt)")
    sq.add_argument("--model", required=True, choices=MODELS)
    sq.add_argument("--data", required=True, help="ratings.csv, a .inter or SASRec .txt file, or a folder with one")
    sq.add_argument("--out", required=True, help="checkpoint folder")
    sq.add_argument("--titles", help="item titles CSV (id, title[, genres]); default: movies.csv beside the data")
    sq.add_argument("--epochs", type=int, default=200)
    sq.add_argument("--max-minutes", type=float, default=30.0, help="training time budget per network (0: none)")
    sq.add_argument("--max-len", type=int, default=None, help="history length (default: the model's)")
    sq.add_argument("--loss", choices=["bce", "ce", "sce", "bpr-max"], help="training loss (default: the model's)")
    sq.add_argument("--seed", type=int, default=42)
    sq.add_argument("--threads", type=int, default=1)
    sq.add_argument("--steps", type=int, default=300, help="duip: end-to-end steps; p2rec: LoRA tuning steps")
    sq.add_argument("--model-dir", help="duip/p2rec: the LLM's transformers dir (default: the local SmolLM2 cache)")
    sq.add_argument("--device", default="cpu", help="duip/p2rec: device for the LLM stages")


def add_eval_parser(ev: Any) -> None:
    sq = ev.add_parser("seqrec", help="HR@10 / NDCG@10 of a sequential scorer checkpoint (leave-one-out test)")
    sq.add_argument("--checkpoint", required=True, help="model.pt or the folder holding it")
    sq.add_argument("--data", required=True, help="the interaction data it was trained on")
    sq.add_argument("--protocol", choices=["sampled100", "full", "both"], default="both")
    sq.add_argument("--seed", type=int, default=42)
    sq.add_argument("--max-users", type=int, default=None, help="evaluate a seeded subset of users")
    sq.add_argument("--model-dir", help="duip: the LLM's transformers dir if not the one it was trained with")


def _checkpoint_path(path: str) -> Path:
    p = Path(path)
    return p / CHECKPOINT if p.is_dir() else p


def _titles_path(args: argparse.Namespace) -> Path | None:
    if args.titles:
        return Path(args.titles)
    data = Path(args.data)
    folder = data if data.is_dir() else data.parent
    return folder / "movies.csv" if (folder / "movies.csv").is_file() else None


def _model_dir(cfg: Config, given: str | None) -> str:
    if given:
        return given
    from crs.llm.local import ensure_local_model

    return str(ensure_local_model(cfg))


def train_seqrec(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Train ``args.model`` and write OUT/model.pt and OUT/train.json; returns the summary."""
    from crs.seqrec.checkpoint import save
    from crs.seqrec.data import load_dataset, load_item_titles
    from crs.seqrec.fit import LLMStage, fit_model
    from crs.seqrec.train import TrainConfig

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SeqCliError(f"--out {out} exists and is not a folder")
    titles_path = _titles_path(args)
    titles = texts = None
    if titles_path is not None:
        titles, texts = load_item_titles(titles_path, ds.item_ids)
    elif args.model in ("duip", "p2rec"):
        raise SeqCliError(f"--model {args.model} needs item titles: pass --titles (a CSV with id and title columns)")
    start = time.perf_counter()
    overrides: dict[str, Any] = {}
    if args.max_len:
        overrides["max_len"] = args.max_len
    if args.loss and args.model != "duip":
        overrides["loss"] = args.loss
    tcfg = TrainConfig(
        epochs=args.epochs, seed=args.seed, num_threads=args.threads,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None,
    )  # fmt: skip
    stage = None
    if args.model in ("duip", "p2rec"):
        stage = LLMStage(_model_dir(cfg, args.model_dir), args.steps, args.device, args.threads)
    fitted = fit_model(args.model, ds, tcfg, overrides, texts, titles, stage)
    curves = fitted.curves
    summary: dict[str, Any] = {
        "model": args.model, "data": str(args.data), "dataset": ds.stats(), "seed": args.seed, **fitted.summary,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    if args.model == "duip":
        fitted.model.save(out / CHECKPOINT, ds.item_ids)
    else:
        save(fitted.model, out / CHECKPOINT, ds.item_ids, titles)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["history"] = {name: [dataclasses.asdict(e) for e in logs] for name, logs in curves.items()}
    (out / "train.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    training_chart(curves, out / "train.png")
    return summary


def training_chart(curves: dict[str, list[EpochLog]], path: Path) -> Path | None:
    """Loss and validation NDCG@10 per epoch of each trained model, as a PNG."""
    from crs.eval.plots import Panel, line_charts

    loss = {name: ([e.epoch for e in logs], [e.loss for e in logs]) for name, logs in curves.items()}
    ndcg = {
        name: ([e.epoch for e in logs if e.valid_ndcg is not None], [e.valid_ndcg for e in logs if e.valid_ndcg is not None])
        for name, logs in curves.items()
    }  # fmt: skip
    return line_charts(
        path, [Panel("training loss", "epoch", "loss", loss), Panel("validation", "epoch", "NDCG@10", ndcg)]
    )


def eval_seqrec(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from crs.seqrec.checkpoint import load
    from crs.seqrec.data import load_dataset
    from crs.seqrec.metrics import evaluate

    ck = load(_checkpoint_path(args.checkpoint), args.model_dir)
    ds = load_dataset(args.data)
    if ck.item_ids is not None and list(ck.item_ids) != list(ds.item_ids):
        raise SeqCliError(
            f"the checkpoint's {len(ck.item_ids) - 1} items are not the {ds.num_items} items of {args.data}; "
            "evaluate on the data it was trained on"
        )
    protocols = ["sampled100", "full"] if args.protocol == "both" else [args.protocol]
    out = {}
    for protocol in protocols:
        ev = evaluate(ck.model, ds, "test", protocol, seed=args.seed, max_users=args.max_users)  # type: ignore[arg-type]
        out[protocol] = {**ev.metrics, "users": ev.users}
    return out


def cmd_train(cfg: Config, args: argparse.Namespace) -> int:
    from crs.seqrec.data import DataFormatError

    try:
        summary = train_seqrec(cfg, args)
    except (SeqCliError, DataFormatError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"crs: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {Path(args.out) / CHECKPOINT} ({summary['seconds']:.0f}s); details in {Path(args.out) / 'train.json'}"
    )
    return 0


def cmd_eval_seqrec(cfg: Config, args: argparse.Namespace) -> int:
    from crs.seqrec.data import DataFormatError

    try:
        results = eval_seqrec(args)
    except (SeqCliError, DataFormatError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"crs: error: {exc}", file=sys.stderr)
        return 2
    for protocol, m in results.items():
        print(f"{protocol}: HR@10 {m['hr@10']:.4f}  NDCG@10 {m['ndcg@10']:.4f}  ({m['users']} users)")
    return 0

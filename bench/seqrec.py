"""Sequential recommendation benchmark: SASRec, GRU4Rec and the LSTM intent encoder on Amazon Games
(the SASRec paper's "Games", reported HR@10 0.7410 / NDCG@10 0.5360 with 100 sampled negatives) and
MovieLens ml-latest-small, leave-one-out, selected on validation NDCG@10 (sampled), tested under
both protocols (``sampled100`` and ``full``).

    .venv/bin/python bench/seqrec.py --dataset games --models sasrec --epochs 400 --patience 8 --max-minutes 28
        # the reported run (HR@10 0.7424 / NDCG@10 0.5385, best epoch 270, 25.7 min, --threads 1)
    .venv/bin/python bench/seqrec.py --dataset ml-latest-small --models sasrec,gru4rec,lstm

A model spec ``name[:loss]`` picks a loss (``sasrec:sce``); rows are merged into
bench/results/seqrec.json (keyed by dataset, model, protocol, seed) and the table rewritten to
bench/results/seqrec.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crs.app.cli_seqrec import training_chart  # noqa: E402
from crs.config import load_config  # noqa: E402
from crs.seqrec.checkpoint import build_model  # noqa: E402
from crs.seqrec.data import load_dataset  # noqa: E402
from crs.seqrec.metrics import evaluate  # noqa: E402
from crs.seqrec.train import TrainConfig, train  # noqa: E402

log = logging.getLogger("bench.seqrec")

DATA = load_config().paths.data_root
DATASETS = {
    "games": DATA / "amazon-sasrec-video" / "Video.txt.gz",
    "ml-latest-small": DATA / "movielens-latest-small" / "ratings.csv.gz",
}
# Per dataset model settings: the SASRec paper's (d=50, 2 blocks, 1 head; max_len 50 and dropout 0.5 on
# the sparse Amazon sets, 200 and 0.2 on MovieLens).
MODEL_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "games": {
        "sasrec": {"max_len": 50, "hidden": 50, "blocks": 2, "heads": 1, "dropout": 0.5},
        "gru4rec": {"max_len": 50, "embedding": 64, "hidden": 100, "dropout": 0.3},
        "lstm": {"max_len": 50, "embedding": 64, "hidden": 128, "dropout": 0.3},
    },
    "ml-latest-small": {
        "sasrec": {"max_len": 200, "hidden": 50, "blocks": 2, "heads": 1, "dropout": 0.2},
        "gru4rec": {"max_len": 200, "embedding": 64, "hidden": 100, "dropout": 0.2},
        "lstm": {"max_len": 200, "embedding": 64, "hidden": 128, "dropout": 0.2},
    },
}
PAPER = {("games", "sasrec", "sampled100"): (0.7410, 0.5360)}
RESULTS = ROOT / "bench" / "results"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    datasets = list(DATASETS) if args.dataset == "all" else [args.dataset]
    rows = []
    for ds_name in datasets:
        ds = load_dataset(DATASETS[ds_name], name=ds_name)
        print(ds.stats(), flush=True)
        for spec in args.models.split(","):
            name, _, loss = spec.partition(":")
            settings = dict(MODEL_SETTINGS[ds_name][name])
            if loss:
                settings["loss"] = loss
            model = build_model(name, ds.num_items, **settings)
            label = name if not loss else f"{name}-{loss}"
            cfg = TrainConfig(
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
                eval_every=args.eval_every,
                patience=args.patience,
                eval_users=args.eval_users,
                max_seconds=args.max_minutes * 60 if args.max_minutes else None,
                num_threads=args.threads,
                grad_clip=args.grad_clip or None,
                bucket=not args.no_bucket,
                position_weighted=not args.unweighted,
                progress=not args.no_progress,
                checkpoint=Path(args.checkpoint_dir) / f"{ds_name}-{label}.pt" if args.checkpoint_dir else None,
            )
            res = train(model, ds, cfg)
            training_chart({label: res.history}, args.out.parent / f"{args.out.name}_{ds_name}_{label}_train.png")
            print(
                f"{ds_name} {label}: best epoch {res.best_epoch}/{res.epochs_run}, valid NDCG@10 {res.best_valid_ndcg:.4f}, "
                f"{res.train_seconds:.0f}s ({res.mean_epoch_seconds:.1f}s/epoch)",
                flush=True,
            )
            for protocol in ("sampled100", "full"):
                ev = evaluate(model, ds, "test", protocol, seed=args.seed, progress=not args.no_progress)
                row = {
                    "dataset": ds_name,
                    "model": label,
                    "protocol": protocol,
                    "hr@10": round(ev["hr@10"], 4),
                    "ndcg@10": round(ev["ndcg@10"], 4),
                    "train_seconds": round(res.train_seconds, 1),
                    "seed": args.seed,
                    "epochs": res.epochs_run,
                    "best_epoch": res.best_epoch,
                    "epoch_seconds": round(res.mean_epoch_seconds, 2),
                    "valid_ndcg@10": round(res.best_valid_ndcg, 4),
                    "users": ev.users,
                    "settings": {
                        **settings,
                        "loss": model.config.loss,
                        "bucket": cfg.bucket,
                        "grad_clip": cfg.grad_clip,
                    },
                    "threads": args.threads,
                }
                rows.append(row)
                print(f"  test {protocol}: HR@10 {row['hr@10']:.4f} NDCG@10 {row['ndcg@10']:.4f}", flush=True)
            write(rows, args.out)  # after every model, so a long run leaves partial results
    return rows


def merge_rows(new_rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Merge ``new_rows`` into the JSON list at ``path`` (a row with the same dataset, model,
    protocol and seed is replaced), write it back and return all rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(path.read_text()) if path.exists() else []

    def key(r: dict[str, Any]) -> tuple:
        return r["dataset"], r["model"], r["protocol"], r["seed"]

    fresh = {key(r) for r in new_rows}
    rows = [r for r in rows if key(r) not in fresh] + new_rows
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def write(new_rows: list[dict[str, Any]], out: Path) -> None:
    """Merge ``new_rows`` into ``out``.json and rewrite ``out``.md."""
    rows = merge_rows(new_rows, out.with_suffix(".json"))
    out.with_suffix(".md").write_text(table(rows) + "\n")


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Leave-one-out (last item test, second last valid); model selected on valid NDCG@10 (sampled100); "
        "sampled100 = target vs 100 seeded negatives the user never interacted with; full = all items "
        "except the user's input history. 2-core CPU, shared with other work.",
        "",
        "| dataset | model | protocol | HR@10 | NDCG@10 | paper HR@10 / NDCG@10 | epochs (best) | s/epoch | train s | seed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["model"], r["protocol"] != "sampled100", r["seed"])):
        paper = PAPER.get((r["dataset"], r["model"].split("-")[0], r["protocol"]))
        ref = f"{paper[0]:.4f} / {paper[1]:.4f}" if paper and r["model"] == "sasrec" else ""
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['protocol']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {ref} | "
            f"{r.get('epochs', '')} ({r.get('best_epoch', '')}) | {r.get('epoch_seconds', '')} | {r['train_seconds']:.0f} | {r['seed']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="games", choices=[*DATASETS, "all"])
    p.add_argument("--models", default="sasrec,gru4rec,lstm", help="comma-separated name[:loss] specs")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=28.0, help="training time budget per model (0: none)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--eval-users", type=int, default=None, help="validate on a seeded subset (SASRec code: 10000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core CPU)")
    p.add_argument(
        "--no-bucket", action="store_true", help="plain shuffled batches (the SASRec code's), not length buckets"
    )
    p.add_argument("--unweighted", action="store_true", help="every length bucket weighs the same (the old default)")
    p.add_argument("--grad-clip", type=float, default=5.0, help="gradient norm clip (0: none, as the SASRec code)")
    p.add_argument("--checkpoint-dir", default=None)
    p.add_argument("--out", type=Path, default=RESULTS / "seqrec")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    start = time.perf_counter()
    rows = run(args)
    print()
    print(table(rows))
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()

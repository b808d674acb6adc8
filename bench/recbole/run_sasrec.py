"""RecBole's SASRec on the bench's Games split, side by side with bench/seqrec.py (issue 4, item 6).

Runs in its own venv (RecBole pins old libraries), made by bench/recbole/setup.sh:

    bash bench/recbole/setup.sh
    bench/recbole/.venv/bin/python bench/recbole/run_sasrec.py --max-minutes 25 --threads 2
    bench/recbole/.venv/bin/python bench/recbole/run_sasrec.py --max-users 500 --epochs 1 --out /tmp/rb/seqrec  # smoke

Converts Games (SASRec's ``Video.txt``: ``user item`` per line, time-ordered per user) into the RecBole
atomic file ``bench/recbole/work/games/games.inter`` (timestamp = the item's position in the user's
sequence), trains RecBole's SASRec with the bench's settings (d=50, 2 blocks, 1 head, max_len 50,
dropout 0.5, lr 1e-3, batch 128) under an epoch and wall-time budget, tests the best-on-validation
model under RecBole's ``uni100`` and ``full`` modes, and merges the rows (model ``recbole-sasrec``,
protocols ``sampled100``/``full``) into bench/results/seqrec.json, rewriting seqrec.md with
bench/seqrec.py's own table. What differs from our protocol: bench/recbole/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / "recbole" / "work"
# RecBole runs in its own venv without crs: the data root is read from the same setting crs uses.
DATA_ROOT = Path(os.environ.get("CRS_PATHS__DATA_ROOT") or ROOT.parent / "shared" / "data")
GAMES = DATA_ROOT / "amazon-sasrec-video" / "Video.txt.gz"
RESULTS = ROOT / "bench" / "results" / "seqrec"

log = logging.getLogger("bench.recbole")

NOTE = (
    "recbole-sasrec: RecBole {version} SASRec ({loss} loss, one training example per prefix, selected on valid "
    "NDCG@10 under {valid}); same users and leave-one-out targets as ours, but RecBole's uni100 draws its own "
    "100 negatives (uniform, excluding the user's items, its own RNG) and its full ranking does not mask the "
    "user's history items. See bench/recbole/README.md."
)


def _compat() -> None:
    """Runtime fixes for RecBole 1.2.1 on current libraries (site-packages stays untouched)."""
    import numpy as np

    # RecBole uses the aliases removed in numpy 1.24 (interaction.py, evaluator/metrics.py).
    for name, typ in (("float", float), ("int", int), ("bool", bool)):
        if name not in np.__dict__:
            setattr(np, name, typ)


def _dedup_predict(sasrec_cls: type) -> None:
    """Make ``SASRec.predict`` run the transformer once per distinct input sequence.

    RecBole's uni100 repeats each user's row for the target and its 100 negatives and runs the whole
    transformer on every copy, which makes sampled evaluation ~100x the cost of full ranking on a CPU.
    The scores are the same (eval mode has no dropout); only the repeated forward passes are skipped."""
    import torch

    def predict(self: Any, interaction: Any) -> torch.Tensor:
        item_seq = interaction[self.ITEM_SEQ]  # (B, L), right-padded with 0
        item_seq_len = interaction[self.ITEM_SEQ_LEN]  # (B,)
        uniq, inverse = torch.unique(item_seq, dim=0, return_inverse=True)  # (U, L), (B,)
        first = torch.zeros(len(uniq), dtype=torch.long, device=item_seq.device)
        first.scatter_(0, inverse, torch.arange(len(inverse), device=item_seq.device))  # a row of each
        seq_output = self.forward(uniq, item_seq_len[first])[inverse]  # (B, d)
        test_item_emb = self.item_embedding(interaction[self.ITEM_ID])  # (B, d)
        return torch.mul(seq_output, test_item_emb).sum(dim=1)  # (B,)

    sasrec_cls.stock_predict = sasrec_cls.predict
    sasrec_cls.predict = predict


def write_inter(src: Path, dst: Path, max_users: int | None = None) -> tuple[int, int]:
    """SASRec ``user item`` lines -> RecBole ``.inter`` (timestamp = position in the user's sequence).
    Keeps the first ``max_users`` users (in order of appearance) when given -> (users, interactions)."""
    opener = gzip.open if src.suffix == ".gz" else open
    pos: dict[str, int] = {}
    rows = 0
    tmp = dst.with_suffix(".tmp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with opener(src, "rt") as f, tmp.open("w") as out:
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{src}:{n}: expected 'user item', got {line.strip()[:80]!r}")
            user, item = parts
            if user not in pos:
                if max_users is not None and len(pos) >= max_users:
                    continue
                pos[user] = 0
            out.write(f"{user}\t{item}\t{pos[user]}\n")
            pos[user] += 1
            rows += 1
    tmp.replace(dst)
    return len(pos), rows


def recbole_config(args: argparse.Namespace, dataset: str, valid_mode: str, test_mode: str) -> dict[str, Any]:
    """RecBole settings matching bench/seqrec.py's Games SASRec as far as RecBole allows."""
    return {
        "data_path": str(WORK),
        "dataset": dataset,
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "MAX_ITEM_LIST_LENGTH": 50,
        # model: ours is d=50, 2 blocks, 1 head, point-wise FFN d->d with ReLU, LayerNorm eps 1e-8
        "hidden_size": 50,
        "inner_size": 50,
        "n_layers": 2,
        "n_heads": 1,
        "hidden_act": "relu",
        "layer_norm_eps": 1e-8,
        "hidden_dropout_prob": 0.5,
        "attn_dropout_prob": 0.5,
        "loss_type": args.loss.upper(),  # RecBole's SASRec has CE and BPR only (no BCE)
        "train_neg_sample_args": (
            {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
            if args.loss == "bpr"
            else None
        ),
        # training
        "learning_rate": args.lr,
        "train_batch_size": args.batch_size,
        "epochs": args.epochs,
        "eval_step": 1,
        "stopping_step": args.patience,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "log_wandb": False,
        "checkpoint_dir": str(WORK / "saved"),
        # evaluation: leave-one-out on time order, per user
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "group_by": "user",
            "mode": {"valid": valid_mode, "test": test_mode},
        },
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "eval_batch_size": 101 * 64 if "uni100" in (valid_mode, test_mode) else 1024,
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    _compat()
    warnings.filterwarnings("ignore", category=FutureWarning)  # pandas/torch deprecations inside RecBole
    sys.argv = sys.argv[:1]  # RecBole's Config also reads `--key=value` from the command line
    import recbole
    import recbole.trainer.trainer as rtrainer
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    _dedup_predict(SASRec)
    # recbole/model/sequential_recommender/sine.py turns on autograd anomaly detection at import, for every
    # model: it records a Python stack per op and checks every backward for NaN (~40% of our epoch time)
    torch.autograd.set_detect_anomaly(False)

    dataset = "games" if args.max_users is None else f"games-sub{args.max_users}"
    inter = WORK / dataset / f"{dataset}.inter"
    users, rows = write_inter(args.data, inter, args.max_users)
    print(f"{inter}: {users} users, {rows} interactions", flush=True)
    os.chdir(WORK)  # RecBole writes log/ and log_tensorboard/ into the working directory

    valid_mode = "uni100" if args.valid_protocol == "sampled100" else "full"
    config = Config(model="SASRec", dataset=dataset, config_dict=recbole_config(args, dataset, valid_mode, "full"))
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(args.threads)
    init_logger(config)
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.WARNING)
    ds = create_dataset(config)
    print(ds, flush=True)
    train_data, valid_data, test_full = data_preparation(config, ds)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])

    epoch_seconds: list[float] = []
    budget = args.max_minutes * 60 if args.max_minutes else None
    start = time.perf_counter()

    class TimedTrainer(Trainer):
        def _train_epoch(self, *a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            loss = super()._train_epoch(*a, **kw)
            epoch_seconds.append(time.perf_counter() - t)
            print(f"epoch {len(epoch_seconds)}: loss {float(loss):.4f} ({epoch_seconds[-1]:.1f}s)", flush=True)
            return loss

    stock_stopping = rtrainer.early_stopping

    def stopping(*a: Any, **kw: Any) -> tuple[float, int, bool, bool]:
        best, cur_step, stop, update = stock_stopping(*a, **kw)
        print(f"  valid NDCG@10 {a[0]:.4f} (best {best:.4f})", flush=True)
        elapsed = time.perf_counter() - start
        per_epoch = elapsed / max(len(epoch_seconds), 1)
        if budget is not None and elapsed + per_epoch > budget:  # the next epoch would not fit
            print(f"time budget {budget:.0f}s: stopping after epoch {len(epoch_seconds)}", flush=True)
            stop = True
        return best, cur_step, stop, update

    rtrainer.early_stopping = stopping  # the wall-time budget; RecBole only has epochs and stopping_step
    trainer = TimedTrainer(config, model)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=args.verbose)
    train_seconds = time.perf_counter() - start
    best_epoch = len(epoch_seconds) - trainer.cur_step * trainer.eval_step
    # our own checkpoint, written by trainer.fit: it pickles the Config, so weights_only must be off
    state = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(state["state_dict"])
    print(
        f"best epoch {best_epoch}/{len(epoch_seconds)}, valid NDCG@10 {best_valid:.4f}, {train_seconds:.0f}s",
        flush=True,
    )

    # the sampled test: the same split rebuilt with mode uni100 (item ids are remapped identically)
    config_s = Config(model="SASRec", dataset=dataset, config_dict=recbole_config(args, dataset, "uni100", "uni100"))
    init_seed(config_s["seed"], config_s["reproducibility"])
    torch.set_num_threads(args.threads)
    ds_s = create_dataset(config_s)
    if ds_s.field2id_token["item_id"].tolist() != ds.field2id_token["item_id"].tolist():
        raise RuntimeError("the uni100 rebuild mapped item ids differently")
    _, _, test_sampled = data_preparation(config_s, ds_s)
    tester = Trainer(config_s, model)

    settings = {
        "max_len": 50, "hidden": 50, "inner": 50, "blocks": 2, "heads": 1, "dropout": 0.5, "act": "relu",
        "loss": args.loss, "lr": args.lr, "batch_size": args.batch_size, "valid_protocol": args.valid_protocol,
    }  # fmt: skip
    label = "recbole-sasrec" if args.loss == "ce" else f"recbole-sasrec-{args.loss}"
    out_rows = []
    for protocol, loader, who in (("sampled100", test_sampled, tester), ("full", test_full, trainer)):
        t = time.perf_counter()
        res = who.evaluate(loader, load_best_model=False, show_progress=False)
        row = {
            "dataset": "games" if args.max_users is None else dataset,
            "model": label,
            "protocol": protocol,
            "hr@10": round(float(res["hit@10"]), 4),
            "ndcg@10": round(float(res["ndcg@10"]), 4),
            "train_seconds": round(train_seconds, 1),
            "seed": args.seed,
            "epochs": len(epoch_seconds),
            "best_epoch": best_epoch,
            "epoch_seconds": round(sum(epoch_seconds) / max(len(epoch_seconds), 1), 2),
            "valid_ndcg@10": round(float(best_valid), 4),
            "users": len(loader._dataset.inter_feat) if hasattr(loader._dataset, "inter_feat") else None,
            "eval_seconds": round(time.perf_counter() - t, 1),
            "settings": settings,
            "threads": args.threads,
            "recbole": recbole.__version__,
            "note": NOTE.format(version=recbole.__version__, loss=args.loss.upper(), valid=args.valid_protocol),
        }
        out_rows.append(row)
        print(f"  test {protocol}: HR@10 {row['hr@10']:.4f} NDCG@10 {row['ndcg@10']:.4f} ({row['eval_seconds']}s)")
    return out_rows


def save(rows: list[dict[str, Any]], out: Path) -> str:
    """Merge into ``out``.json and rewrite ``out``.md with bench/seqrec.py's writer, plus the RecBole note."""
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from seqrec import write  # bench/seqrec.py

    write(rows, out)
    md = out.with_suffix(".md")
    text = md.read_text().rstrip("\n")
    notes = sorted({r["note"] for r in rows if r.get("note")})
    text += "\n\n" + "\n".join(f"Note: {n}" for n in notes) + "\n"
    md.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=GAMES, help="SASRec-format 'user item' file (.gz ok)")
    p.add_argument("--max-users", type=int, default=None, help="keep the first N users (smoke runs)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=25.0, help="wall-time budget for training (0: none)")
    p.add_argument("--patience", type=int, default=10, help="RecBole stopping_step, in epochs")
    p.add_argument("--loss", choices=["ce", "bpr"], default="ce", help="RecBole's SASRec has no BCE")
    p.add_argument(
        "--valid-protocol",
        choices=["full", "sampled100"],
        default="sampled100",
        help="protocol of the validation NDCG@10 that selects the model (ours: sampled100)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS, help="results stem: .json merged, .md rewritten")
    p.add_argument("--verbose", action="store_true", help="RecBole's own INFO log")
    args = p.parse_args(argv)
    if args.max_users is not None and args.out == RESULTS:
        p.error("--max-users is for smoke runs: pass --out elsewhere so bench/results keeps full-data rows")
    rows = run(args)
    print()
    print(save(rows, args.out))


if __name__ == "__main__":
    main()

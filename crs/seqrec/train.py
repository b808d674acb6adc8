"""Training loop for the sequential models, checkpoint loading and a model factory.

``train(model, dataset, TrainConfig)``: each epoch visits every user with at least two training items
once (shuffled, seeded); a user's example is the last ``max_len + 1`` training items, predicting each
next item from the prefix (SASRec style), with one negative per position drawn from the items the
user did not train on. Adam; every ``eval_every`` epochs NDCG@10 on the validation targets under the
sampled-100 protocol (negatives drawn once, seeded); stops after ``patience`` evaluations without
improvement and restores the best weights.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crs.seqrec.base import SeqRecModel
from crs.seqrec.data import NegativeSampler, SeqDataset, pad_left
from crs.seqrec.metrics import evaluate, sample_eval_negatives

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_len: int | None = None  # default: model.config.max_len
    seed: int = 0
    eval_every: int = 5  # epochs between validation runs
    patience: int = 4  # validation runs without improvement before stopping
    eval_users: int | None = None  # validate on a seeded subset (None: every user)
    max_seconds: float | None = None  # stop after the epoch that passes this wall time (validating then)
    num_threads: int | None = None  # torch.set_num_threads when set (process-wide)
    device: str = "cpu"  # the model is moved here for training and stays there
    grad_clip: float | None = 5.0
    bucket: bool = True  # batch users of similar length together and trim padding (much faster on CPU)
    # Scale each batch's loss by its number of target positions over the mean per batch, so every
    # position weighs the same in expectation as with plain shuffled batches (length buckets otherwise
    # give a batch of 2-item users as much weight as a batch of 50-item users; on Amazon Games that cost
    # SASRec 0.022 NDCG@10: bench/results/seqrec.md, sasrec vs sasrec-unweighted).
    position_weighted: bool = True
    progress: bool = True
    checkpoint: Path | None = None  # best model written here (with the item id map)


@dataclass
class EpochLog:
    epoch: int
    loss: float
    seconds: float  # training time of the epoch (excluding validation)
    valid_hr: float | None = None
    valid_ndcg: float | None = None


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_ndcg: float
    best_valid_hr: float
    train_seconds: float  # wall time of train() including validation
    history: list[EpochLog] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    @property
    def mean_epoch_seconds(self) -> float:
        return float(np.mean([e.seconds for e in self.history])) if self.history else 0.0


def _training_windows(dataset: SeqDataset, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Users with >= 2 training items and their last ``max_len + 1`` training items, left-padded
    -> (users (U,), windows (U, max_len + 1))."""
    users = np.array([u for u in range(dataset.num_users) if len(dataset.train(u)) >= 2], dtype=np.int64)
    windows = pad_left([dataset.train(u) for u in users], max_len + 1)
    return users, windows


def _batches(lengths: np.ndarray, batch_size: int, bucket: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices per batch for one epoch: a shuffle, or (``bucket``) rows sorted by length with
    random tie-breaks, cut into batches whose order is shuffled."""
    order = rng.permutation(len(lengths))
    if bucket:
        order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))] if bucket else batches


def training_setup(
    dataset: SeqDataset, users: np.ndarray, max_eval_users: int | None, seed: int
) -> tuple[NegativeSampler, np.ndarray, np.ndarray | None]:
    """What every trainer needs besides its model: a negative sampler over the training users'
    items, the (seeded, optionally capped) validation users, and their fixed 100 negatives."""
    sampler = NegativeSampler([dataset.train(u) for u in users], dataset.num_items)
    eval_users = dataset.eval_users()
    if max_eval_users is not None and len(eval_users) > max_eval_users:
        eval_users = np.sort(np.random.default_rng(seed).choice(eval_users, max_eval_users, replace=False))
    valid_negs = sample_eval_negatives(dataset, eval_users, 100, seed) if len(eval_users) else None
    return sampler, eval_users, valid_negs


def train(model: SeqRecModel, dataset: SeqDataset, config: TrainConfig | None = None) -> TrainResult:
    """Train ``model`` on ``dataset``'s training split; returns the log and leaves the best weights loaded."""
    from tqdm.auto import tqdm

    cfg = config or TrainConfig()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    max_len = cfg.max_len or model.config.max_len
    start = time.perf_counter()

    model.to(cfg.device)
    users, windows = _training_windows(dataset, max_len)
    lengths = (windows != 0).sum(1)  # (U,)
    if len(users) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no user with two training items")
    sampler, eval_users, valid_negs = training_setup(dataset, users, cfg.eval_users, cfg.seed)
    mean_positions = float((lengths - 1).clip(min=0).sum()) / max(-(-len(users) // cfg.batch_size), 1)
    log.info("training %s on %d users (%s)", type(model).__name__, len(users), dataset.stats())

    opt = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay, fused=True
    )  # fused: one kernel for all parameters, ~10x faster than the per-parameter loop on CPU
    history: list[EpochLog] = []
    best: tuple[float, float, int] = (-1.0, 0.0, 0)  # (ndcg, hr, epoch)
    best_state: dict[str, Any] | None = None
    bad_evals = 0
    epochs = tqdm(range(1, cfg.epochs + 1), desc=f"train {type(model).__name__}", disable=not cfg.progress)
    for epoch in epochs:
        t0 = time.perf_counter()
        model.train()
        losses = []
        batches = _batches(lengths, cfg.batch_size, cfg.bucket, rng)
        for rows in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not cfg.progress):
            win = windows[rows]  # (B, L + 1)
            win = win[:, int((win != 0).any(0).argmax()) :]  # drop all-padding leading columns -> (B, l + 1)
            seq = torch.from_numpy(win[:, :-1]).to(cfg.device)  # (B, l)
            pos = torch.from_numpy(win[:, 1:]).to(cfg.device)  # (B, l)
            neg = sampler.sample(rng, rows, win.shape[1] - 1) * (win[:, 1:] != 0)  # (B, l)
            neg = torch.from_numpy(neg).to(cfg.device)
            loss = model(seq, pos, neg)
            if cfg.position_weighted:
                loss = loss * (float((win[:, 1:] != 0).sum()) / mean_positions)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(loss.item())
        entry = EpochLog(epoch, float(np.mean(losses)), time.perf_counter() - t0)
        history.append(entry)
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
        last = epoch == cfg.epochs or out_of_time
        if valid_negs is not None and (epoch % cfg.eval_every == 0 or last):
            res = evaluate(
                model, dataset, "valid", "sampled100", max_len=max_len, seed=cfg.seed, max_users=cfg.eval_users,
                negatives=valid_negs, progress=False,
            )  # fmt: skip
            entry.valid_hr, entry.valid_ndcg = res["hr@10"], res["ndcg@10"]
            if entry.valid_ndcg > best[0]:
                best = (entry.valid_ndcg, entry.valid_hr, epoch)
                best_state = copy.deepcopy(model.state_dict())
                bad_evals = 0
                if cfg.checkpoint:
                    model.save(cfg.checkpoint, dataset.item_ids)
            else:
                bad_evals += 1
            log.info(
                "epoch %d loss %.4f (%.1fs) valid HR@10 %.4f NDCG@10 %.4f",
                epoch, entry.loss, entry.seconds, entry.valid_hr, entry.valid_ndcg,
            )  # fmt: skip
            epochs.set_postfix(loss=f"{entry.loss:.4f}", ndcg=f"{entry.valid_ndcg:.4f}", best=f"{best[0]:.4f}")
            if bad_evals >= cfg.patience:
                log.info("early stop at epoch %d (best %d)", epoch, best[2])
                break
            if out_of_time:
                log.info("time budget of %.0fs spent at epoch %d (best %d)", cfg.max_seconds, epoch, best[2])
                break
        else:
            epochs.set_postfix(loss=f"{entry.loss:.4f}", best=f"{best[0]:.4f}")
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # no validation data: keep the last weights
        best = (float("nan"), float("nan"), len(history))
    model.eval()
    return TrainResult(best[2], best[0], best[1], time.perf_counter() - start, history)

"""Ranking metrics and the two evaluation protocols for leave-one-out sequential recommendation.

- ``sampled100`` (SASRec paper, Kang & McAuley 2018): the true item is ranked against 100 negatives
  drawn uniformly (with replacement, seeded) from the items the user never interacted with.
- ``full``: the true item is ranked against every item except those in the user's input history
  (the target itself is never masked, even when it was consumed before).

Ranks are 0-based and pessimistic on ties (a negative scoring equal to the target ranks above it).
HR@K = share of users with rank < K; NDCG@K = mean of 1 / log2(rank + 2) over those users (one
relevant item, so IDCG = 1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from crs.seqrec.data import NegativeSampler, SeqDataset, Split, pad_left

if TYPE_CHECKING:
    import torch

    from crs.seqrec.base import SeqRecModel

log = logging.getLogger(__name__)

Protocol = Literal["sampled100", "full"]


def hit_ndcg(ranks: np.ndarray, k: int) -> tuple[float, float]:
    """(HR@k, NDCG@k) from 0-based ranks of the single relevant item, int (U,)."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        return 0.0, 0.0
    hit = ranks < k
    ndcg = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(hit.mean()), float(ndcg.mean())


def rank_of_target(scores: torch.Tensor, target_col: torch.Tensor | int = 0) -> torch.Tensor:
    """0-based rank of the target column among all columns of ``scores`` (B, C), ties counted
    against the target -> LongTensor (B,). Columns scored -inf never rank above a finite target."""
    import torch

    if isinstance(target_col, int):
        target_col = torch.full((scores.shape[0],), target_col, dtype=torch.long, device=scores.device)
    t = scores.gather(1, target_col[:, None])  # (B, 1)
    return (scores >= t).sum(1) - 1  # (B,): minus the target itself


@dataclass
class EvalResult:
    protocol: str
    split: str
    users: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)  # "hr@10", "ndcg@10", ...

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def sample_eval_negatives(dataset: SeqDataset, users: np.ndarray, n: int = 100, seed: int = 0) -> np.ndarray:
    """int64 (U, n): per user, ``n`` items (with replacement) the user never interacted with in any split."""
    sampler = NegativeSampler([dataset.sequences[u] for u in users], dataset.num_items)
    return sampler.sample(np.random.default_rng(seed), np.arange(len(users)), n)


def evaluate(
    model: SeqRecModel,
    dataset: SeqDataset,
    split: Split = "test",
    protocol: Protocol = "sampled100",
    ks: Sequence[int] = (10,),
    max_len: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
    max_users: int | None = None,
    negatives: np.ndarray | None = None,
    progress: bool = True,
) -> EvalResult:
    """HR@K and NDCG@K of ``model`` on ``split`` targets under ``protocol``.

    ``max_users`` evaluates a seeded random subset (the SASRec code uses 10,000); ``negatives``
    (U, 100) reuses pre-drawn sampled negatives for the same user order (e.g. across epochs).
    """
    import torch
    from tqdm.auto import tqdm

    start = time.perf_counter()
    max_len = max_len or model.config.max_len
    users = dataset.eval_users()
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    if protocol == "sampled100" and negatives is None:
        negatives = sample_eval_negatives(dataset, users, 100, seed)
    if protocol not in ("sampled100", "full"):
        raise ValueError(f"unknown protocol {protocol!r} (sampled100, full)")
    was_training = model.training
    model.eval()
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))  # inputs go there; scores come back
    ranks = []
    bar = tqdm(range(0, len(users), batch_size), desc=f"eval {split}/{protocol}", disable=not progress, leave=False)
    with torch.inference_mode():
        for lo in bar:
            batch = users[lo : lo + batch_size]
            hists = [dataset.history(u, split) for u in batch]
            seq = torch.from_numpy(pad_left(hists, max_len, trim=True)).to(dev)  # (B, <= L)
            target = torch.tensor([dataset.target(u, split) for u in batch])  # (B,)
            if protocol == "sampled100":
                cand = torch.cat([target[:, None], torch.from_numpy(negatives[lo : lo + batch_size])], 1)  # (B, 101)
                scores = model.score(seq, cand.to(dev)).float().cpu()  # (B, 101)
                ranks.append(rank_of_target(scores, 0))
            else:
                scores = model.score_all(seq).float().cpu()  # (B, N + 1)
                full_hist = torch.from_numpy(pad_left(hists, max(len(h) for h in hists)))  # (B, H), 0-padded
                t_score = scores.gather(1, target[:, None])  # (B, 1)
                scores.scatter_(1, full_hist, float("-inf"))  # history (and padding column 0) masked
                scores[:, 0] = float("-inf")
                scores.scatter_(1, target[:, None], t_score)  # the target is never masked
                ranks.append(rank_of_target(scores, target))
    model.train(was_training)
    r = torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)
    metrics: dict[str, float] = {}
    for k in ks:
        metrics[f"hr@{k}"], metrics[f"ndcg@{k}"] = hit_ndcg(r, k)
    res = EvalResult(protocol, split, len(users), time.perf_counter() - start, metrics)
    log.info("eval %s/%s on %d users: %s (%.1fs)", split, protocol, len(users), metrics, res.seconds)
    return res

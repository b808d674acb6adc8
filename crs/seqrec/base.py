"""What the sequential models share: the scoring interface, the training losses, and running an RNN
over left-padded sequences.

Every model maps a left-padded item sequence (B, L) (0 = padding, the last column is the most recent
item) to per-position states (B, L, H); ``head`` maps a state to item-embedding space (B, D), and an
item's score is the dot product with its (shared input/output) embedding.

Losses (``config.loss``), computed on non-padding positions only:
- ``bce``: SASRec's binary cross-entropy with one sampled negative per position.
- ``ce``: softmax cross-entropy over all items.
- ``sce``: sampled softmax cross-entropy: the positive against a pool of the batch's sampled
  negatives shared by every position (much cheaper than ``ce`` on large catalogs).
- ``bpr-max``: GRU4Rec's BPR-max (Hidasi & Karatzoglou 2018) over the same shared pool.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

Loss = Literal["bce", "ce", "sce", "bpr-max"]
POOL = 1024  # at most this many of the batch's sampled negatives are shared by every position (sce, bpr-max)


def item_embedding(num_items: int, dim: int) -> nn.Embedding:
    """Item table for ids 1..num_items with row 0 the zero padding, scaled like the RNN papers."""
    emb = nn.Embedding(num_items + 1, dim, padding_idx=0)
    nn.init.normal_(emb.weight, std=dim**-0.5)
    with torch.no_grad():
        emb.weight[0].zero_()
    return emb


class SeqRecModel(nn.Module):
    """Base class. Subclasses set ``config`` (a dataclass with ``num_items``, ``max_len``, ``loss``),
    ``item_emb`` (``num_items + 1`` rows, padding_idx=0) and implement ``hidden``."""

    config: Any
    item_emb: nn.Embedding

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """Per-position states (B, L, H) for a left-padded sequence (B, L)."""
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """States (..., H) -> item-embedding space (..., D). Identity unless H != D."""
        return h

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """The user state after the last item: (B, L) -> (B, H)."""
        return self.hidden(seq)[:, -1]

    def score(self, seq: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores of ``candidates`` (B, C) given ``seq`` (B, L) -> (B, C); higher is better."""
        u = self.head(self.encode(seq))  # (B, D)
        e = self.item_emb(candidates)  # (B, C, D)
        return torch.einsum("bcd,bd->bc", e, u)

    def score_all(self, seq: torch.Tensor) -> torch.Tensor:
        """Scores of every item index (B, num_items + 1); column 0 is padding."""
        return self.head(self.encode(seq)) @ self.item_emb.weight.T  # (B, N + 1)

    def forward(self, seq: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss. ``seq`` (B, L) inputs, ``pos`` (B, L) next items (0 = no target),
        ``neg`` (B, L) sampled negatives (needed for ``bce`` and ``bpr-max``)."""
        out = self.head(self.hidden(seq))  # (B, L, D)
        return sequence_loss(
            out, pos, neg, self.item_emb.weight, self.config.loss, getattr(self.config, "bpr_reg", 1.0)
        )

    def save(self, path: str | Path, item_ids: list[str] | None = None) -> None:
        """One file: model class name, config, state_dict and the item id map (``SeqDataset.item_ids``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "model": type(self).__name__,
            "config": asdict(self.config),
            "state_dict": self.state_dict(),
            "item_ids": list(item_ids) if item_ids is not None else None,
        }
        torch.save(blob, path)
        log.info("saved %s to %s", type(self).__name__, path)


def sequence_loss(
    out: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor | None,
    item_weight: torch.Tensor,
    kind: str,
    bpr_reg: float = 1.0,
) -> torch.Tensor:
    """Loss over non-padding positions. ``out`` (B, L, D), ``pos``/``neg`` (B, L), ``item_weight`` (N + 1, D)."""
    mask = pos != 0  # (B, L)
    h = out[mask]  # (P, D)
    p = pos[mask]  # (P,)
    if kind == "ce":
        logits = h @ item_weight.T  # (P, N + 1)
        logits[:, 0] = float("-inf")
        return F.cross_entropy(logits, p)
    if neg is None:
        raise ValueError(f"loss {kind!r} needs sampled negatives")
    n = neg[mask]  # (P,)
    pos_logit = (h * item_weight[p]).sum(-1)  # (P,)
    if kind == "bce":
        neg_logit = (h * item_weight[n]).sum(-1)  # (P,)
        return F.binary_cross_entropy_with_logits(
            pos_logit, torch.ones_like(pos_logit)
        ) + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))
    if kind in ("sce", "bpr-max"):
        pool = n[:POOL]  # (K,)
        neg_logit = h @ item_weight[pool].T  # (P, K): every position against the shared negatives
        neg_logit = neg_logit.masked_fill(pool[None, :] == p[:, None], float("-inf"))  # drop collisions
        if kind == "sce":
            logits = torch.cat([pos_logit[:, None], neg_logit], 1)  # (P, 1 + K)
            return F.cross_entropy(logits, torch.zeros_like(p))
        w = torch.softmax(neg_logit, dim=1)  # (P, K)
        finite = neg_logit.nan_to_num(neginf=0.0)
        loss = -torch.log((w * torch.sigmoid(pos_logit[:, None] - finite)).sum(1) + 1e-24)
        return (loss + bpr_reg * (w * finite.pow(2)).sum(1)).mean()
    raise ValueError(f"unknown loss {kind!r} (bce, ce, bpr-max)")


class Dropout(nn.Module):
    """Inverted dropout from ``rand_like`` (about 3x faster than ``nn.Dropout``'s bernoulli_ on CPU)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """Run ``rnn`` (batch_first) over left-padded inputs so padding never enters the state.
    ``x`` (B, L, E) embeddings, ``seq`` (B, L) item ids -> outputs (B, L, H) aligned with ``seq``
    (zeros at padding positions, so an empty sequence encodes to zeros)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    B, L, _ = x.shape
    lengths = (seq != 0).sum(1)  # (B,)
    ar = torch.arange(L, device=seq.device)[None, :]  # (1, L)
    shift = (L - lengths)[:, None]  # (B, 1)
    to_right = (ar + shift) % L  # left-padded -> padding at the end
    xr = x.gather(1, to_right[..., None].expand_as(x))  # (B, L, E)
    packed = pack_padded_sequence(xr, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=L)  # (B, L, H)
    back = (ar - shift) % L  # right-padded -> left-padded
    return out.gather(1, back[..., None].expand(B, L, out.shape[-1]))

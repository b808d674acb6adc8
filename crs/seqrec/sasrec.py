"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Item embeddings (scaled by sqrt(d)) plus learned positional embeddings, a stack of pre-norm causal
self-attention blocks with point-wise feed-forward layers, a final layer norm; an item's score is the
dot product of the last state with its (shared) embedding. Trained with the paper's binary
cross-entropy and one sampled negative per position (``loss="bce"``), or softmax cross-entropy over
all items (``loss="ce"``). Paper settings: d=50, 2 blocks, 1 head, max_len 200 (ML-1M) / 50 (others),
dropout 0.2 (ML-1M) / 0.5 (sparse Amazon sets), Adam lr 1e-3, batch 128.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from crs.seqrec.base import Dropout, Loss, SeqRecModel


@dataclass
class SASRecConfig:
    num_items: int
    max_len: int = 50
    hidden: int = 50
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.5
    loss: Loss = "bce"


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"hidden {d} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """``allowed`` (B, 1, L, L) bool: query i may attend to key j."""
        B, L, D = q_in.shape
        q = self.q(q_in)  # (B, L, D)
        k, v = self.kv(kv_in).chunk(2, dim=-1)  # (B, L, D) each

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(B, L, self.heads, D // self.heads).transpose(1, 2)  # (B, h, L, D/h)

        y = F.scaled_dot_product_attention(
            split(q), split(k), split(v), attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0
        )  # (B, h, L, D/h)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    """Pre-norm block as in the SASRec code: Q = LN(x); x = Q + Attn(Q, x, x); x = x + FFN(LN(x))."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(d, eps=1e-8)
        self.attn = CausalSelfAttention(d, heads, dropout)
        self.ln_ffn = nn.LayerNorm(d, eps=1e-8)
        self.ffn = nn.Sequential(nn.Linear(d, d), Dropout(dropout), nn.ReLU(), nn.Linear(d, d), Dropout(dropout))

    def forward(self, x: torch.Tensor, keep: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        q = self.ln_attn(x)  # (B, L, D)
        x = q + self.attn(q, x, allowed)
        h = self.ln_ffn(x)
        x = h + self.ffn(h)
        return x * keep  # (B, L, D), padding positions zeroed


class SASRec(SeqRecModel):
    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.config = c = config
        self.item_emb = nn.Embedding(c.num_items + 1, c.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(c.max_len, c.hidden)
        self.emb_dropout = Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.hidden, c.heads, c.dropout) for _ in range(c.blocks))
        self.ln_out = nn.LayerNorm(c.hidden, eps=1e-8)
        for name, p in self.named_parameters():
            if p.dim() > 1 and "ln_" not in name:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        seq = seq[:, -self.config.max_len :]  # (B, L): the most recent max_len items
        L = seq.shape[1]
        keep = (seq != 0).unsqueeze(-1).to(self.item_emb.weight.dtype)  # (B, L, 1)
        x = self.item_emb(seq) * math.sqrt(self.config.hidden)  # (B, L, D)
        pos = torch.arange(self.config.max_len - L, self.config.max_len, device=seq.device)  # right-aligned
        x = self.emb_dropout(x + self.pos_emb(pos)[None]) * keep
        # causal attention over non-padding keys; every position may see itself, so no row is empty
        # (with padding keys masked, trimming all-padding leading columns leaves the result unchanged)
        eye = torch.eye(L, dtype=torch.bool, device=seq.device)
        causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()
        allowed = (causal & (seq != 0)[:, None, None, :]) | eye  # (B, 1, L, L)
        for block in self.blocks:
            x = block(x, keep, allowed)
        return self.ln_out(x)  # (B, L, D)

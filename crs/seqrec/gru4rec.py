"""GRU4Rec: session-based recommendation with recurrent networks (Hidasi et al., ICLR 2016;
Hidasi & Karatzoglou, CIKM 2018 for BPR-max).

Item embedding -> dropout -> GRU -> (linear to embedding size when the sizes differ) -> dot product
with the shared item embeddings. Trained on every position of the sequence with sampled softmax over
a pool of sampled negatives shared by the batch (``loss="sce"``, default), softmax cross-entropy over
all items (``loss="ce"``, best on small catalogs), BPR-max over the same pool (``loss="bpr-max"``),
or SASRec's BCE (``loss="bce"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from crs.seqrec.base import Dropout, Loss, SeqRecModel, item_embedding, run_rnn


@dataclass
class GRU4RecConfig:
    num_items: int
    max_len: int = 50
    embedding: int = 64
    hidden: int = 100
    layers: int = 1
    dropout: float = 0.3  # on the input embeddings and the GRU output
    loss: Loss = "sce"
    bpr_reg: float = 1.0  # BPR-max score regularisation


class GRU4Rec(SeqRecModel):
    def __init__(self, config: GRU4RecConfig) -> None:
        super().__init__()
        self.config = c = config
        self.item_emb = item_embedding(c.num_items, c.embedding)
        self.dropout = Dropout(c.dropout)
        self.gru = nn.GRU(c.embedding, c.hidden, num_layers=c.layers, batch_first=True)
        self.out = nn.Linear(c.hidden, c.embedding) if c.hidden != c.embedding else nn.Identity()

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        seq = seq[:, -self.config.max_len :]
        x = self.dropout(self.item_emb(seq))  # (B, L, E)
        return self.dropout(run_rnn(self.gru, x, seq))  # (B, L, H)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)  # (..., E)

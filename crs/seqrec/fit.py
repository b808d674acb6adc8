"""Fitting one named sequential model on a dataset, the LLM stages included: what ``crs train seqrec``
and ``scripts/train_demo_scorer.py`` both run.

``fit_model("p2rec", dataset, texts=..., ...)`` trains the SASRec backbone, builds P2Rec's knowledge
with the LLM (``crs.seqrec.p2rec.build_knowledge``) and trains a fresh knowledge-enhanced SASRec;
``"duip"`` trains the LSTM and then DUIP from it; the others train one network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crs.seqrec.base import SeqRecModel
    from crs.seqrec.data import SeqDataset
    from crs.seqrec.train import EpochLog, TrainConfig

log = logging.getLogger(__name__)

MODELS = ("lstm", "sasrec", "gru4rec", "duip", "p2rec")
BACKBONE = {"duip": "lstm", "p2rec": "sasrec"}


@dataclass
class LLMStage:
    """Settings of the LLM stages (P2Rec, DUIP)."""

    model_dir: str = ""  # the LLM's transformers dir
    steps: int = 300  # P2Rec LoRA tuning steps / DUIP end-to-end steps
    device: str = "cpu"
    threads: int | None = None
    layers: int = 0  # P2Rec: keep only the first n decoder layers (0: all); a CPU scale-down

    @property
    def dtype(self) -> str:
        """bfloat16 on an accelerator; float32 on a CPU, where bfloat16 matmuls without native support
        ran about 20x slower here (a LoRA step of 8 x 200 tokens: 63 s against 3.4 s)."""
        return "float32" if self.device == "cpu" else "bfloat16"


@dataclass
class Fitted:
    model: SeqRecModel
    curves: dict[str, list[EpochLog]] = field(default_factory=dict)  # network name -> epoch logs
    summary: dict[str, Any] = field(default_factory=dict)


def fit_model(
    name: str,
    ds: SeqDataset,
    tcfg: TrainConfig,
    overrides: dict[str, Any] | None = None,
    texts: list[str] | None = None,
    titles: list[str] | None = None,
    llm: LLMStage | None = None,
) -> Fitted:
    """Train model ``name`` (``MODELS``); ``texts``/``titles`` are per item index (P2Rec reads texts,
    DUIP titles)."""
    from crs.seqrec.checkpoint import build_model
    from crs.seqrec.train import train

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    if name in ("p2rec", "duip") and (llm is None or not llm.model_dir):
        raise ValueError(f"{name} needs the LLM's transformers dir")
    if name == "p2rec" and texts is None:
        raise ValueError("p2rec needs item texts")
    if name == "duip" and titles is None:
        raise ValueError("duip needs item titles")
    overrides = dict(overrides or {})
    backbone = BACKBONE.get(name, name)
    model = build_model(backbone, ds.num_items, **overrides)
    res = train(model, ds, tcfg)
    out = Fitted(model, {backbone: res.history})
    out.summary["backbone"] = {"name": backbone, "best_epoch": res.best_epoch, "epochs": res.epochs_run,
                               "valid_ndcg@10": res.best_valid_ndcg, "seconds": round(res.train_seconds, 1)}  # fmt: skip
    if name == "p2rec":
        from crs.seqrec.duip import load_llm
        from crs.seqrec.p2rec import P2RecConfig, attach_knowledge, build_knowledge

        lm, tok = load_llm(llm.model_dir, llm.dtype, llm.layers)  # type: ignore[union-attr]
        lm.to(llm.device)  # type: ignore[union-attr]
        pcfg = P2RecConfig(seed=tcfg.seed, tune_steps=llm.steps, progress=tcfg.progress)  # type: ignore[union-attr]
        know = build_knowledge(model, ds, texts, lm, tok, pcfg)  # type: ignore[arg-type]
        del lm
        model = attach_knowledge(build_model("sasrec", ds.num_items, **overrides), know.knowledge, know.projection)
        res = train(model, ds, tcfg)
        out.model = model
        out.curves["p2rec"] = res.history
        out.summary["p2rec"] = {"stage_seconds": know.seconds, "tune_kl": know.tune_losses[-1:], "best_epoch": res.best_epoch,
                                "valid_ndcg@10": res.best_valid_ndcg, "seconds": round(res.train_seconds, 1)}  # fmt: skip
    elif name == "duip":
        from crs.seqrec.duip import DUIP, DUIPConfig, DUIPTrainConfig, init_from_lstm, train_duip

        lc = model.config
        dcfg = DUIPConfig(
            num_items=ds.num_items, max_len=lc.max_len, embedding=lc.embedding, hidden=lc.hidden,
            model_dir=llm.model_dir, dtype=llm.dtype,  # type: ignore[union-attr]
        )  # fmt: skip
        duip = DUIP(dcfg, titles)  # type: ignore[arg-type]
        init_from_lstm(duip, model)
        duip.to(llm.device)  # type: ignore[union-attr]
        d = train_duip(duip, ds, DUIPTrainConfig(steps=llm.steps, seed=tcfg.seed, num_threads=llm.threads))  # type: ignore[union-attr]
        out.model = duip
        out.summary["duip"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}
    return out

"""Sequential recommenders over item-id histories: data loading and leave-one-out splits, SASRec,
GRU4Rec and an LSTM intent encoder, the LLM-based DUIP (LSTM intent -> soft prompts -> LLM) and
P2Rec (LLM-knowledge-enhanced item embeddings), training, and HR/NDCG evaluation (sampled-100 and
full ranking).

Names are imported lazily so that ``import crs.seqrec`` does not load torch. The trainer is
``crs.seqrec.train.train`` (``crs.seqrec.train`` is the module); saving, loading and the model
registry are in ``crs.seqrec.checkpoint``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SeqDataset": "data",
    "DataFormatError": "data",
    "load_dataset": "data",
    "load_sasrec_txt": "data",
    "load_movielens": "data",
    "load_recbole_inter": "data",
    "EvalResult": "metrics",
    "evaluate": "metrics",
    "hit_ndcg": "metrics",
    "SeqRecModel": "base",
    "SASRec": "sasrec",
    "SASRecConfig": "sasrec",
    "GRU4Rec": "gru4rec",
    "GRU4RecConfig": "gru4rec",
    "LSTMIntent": "lstm",
    "LSTMConfig": "lstm",
    "DUIP": "duip",
    "DUIPConfig": "duip",
    "DUIPTrainConfig": "duip",
    "train_duip": "duip",
    "P2RecConfig": "p2rec",
    "build_knowledge": "p2rec",
    "attach_knowledge": "p2rec",
    "load_item_titles": "data",
    "TrainConfig": "train",
    "TrainResult": "train",
    "Checkpoint": "checkpoint",
    "build_model": "checkpoint",
    "save": "checkpoint",
    "load": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crs.seqrec' has no attribute {name!r}")
    return getattr(importlib.import_module(f"crs.seqrec.{_EXPORTS[name]}"), name)

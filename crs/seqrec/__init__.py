"""Sequential recommenders over item-id histories: data loading and leave-one-out splits, SASRec,
GRU4Rec and an LSTM intent encoder, training, and HR/NDCG evaluation (sampled-100 and full ranking).

Names are imported lazily so that ``import crs.seqrec`` does not load torch. The trainer is
``crs.seqrec.train.train`` (``crs.seqrec.train`` is the module).
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
    "TrainConfig": "train",
    "TrainResult": "train",
    "Checkpoint": "train",
    "build_model": "train",
    "save": "train",
    "load": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crs.seqrec' has no attribute {name!r}")
    return getattr(importlib.import_module(f"crs.seqrec.{_EXPORTS[name]}"), name)

"""Checkpoints and the model registry: one file per trained model (config, weights, item id map and
item titles), the model names the trainer and the CLI accept, and rebuilding a model from its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crs.seqrec.base import SeqRecModel


@dataclass
class Checkpoint:
    model: SeqRecModel
    item_ids: list[str] | None  # item_ids[i]: original id of item index i (index 0 is padding)
    titles: list[str] | None = None  # titles[i]: "Title (year)" of item index i, when known


def model_classes() -> dict[str, tuple[type[SeqRecModel], type]]:
    """Model name -> (class, config class)."""
    from crs.seqrec.gru4rec import GRU4Rec, GRU4RecConfig
    from crs.seqrec.lstm import LSTMConfig, LSTMIntent
    from crs.seqrec.sasrec import SASRec, SASRecConfig

    return {"sasrec": (SASRec, SASRecConfig), "gru4rec": (GRU4Rec, GRU4RecConfig), "lstm": (LSTMIntent, LSTMConfig)}


def build_model(name: str, num_items: int, **overrides: Any) -> SeqRecModel:
    """``build_model("sasrec", dataset.num_items, dropout=0.2)``; unknown names or fields raise."""
    classes = model_classes()
    if name not in classes:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(classes)})")
    cls, cfg_cls = classes[name]
    return cls(cfg_cls(num_items=num_items, **overrides))


def save(
    model: SeqRecModel, path: str | Path, item_ids: list[str] | None = None, titles: list[str] | None = None
) -> None:
    """Write config + state_dict + item id map as one file (``model.save``), plus the item titles
    (``titles[i]`` names item index i) that let a scorer match the items to a catalog by name."""
    model.save(path, item_ids)
    if titles is not None:
        if item_ids is not None and len(titles) != len(item_ids):
            raise ValueError(f"{len(titles)} titles for {len(item_ids)} item ids")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        blob["titles"] = list(titles)
        torch.save(blob, path)


def load(path: str | Path, model_dir: str | Path | None = None) -> Checkpoint:
    """Rebuild a model written by ``save``/``model.save``; returns it in eval mode with its item id map
    (and item titles when the checkpoint has them). A P2Rec-enhanced backbone comes back with its
    knowledge embeddings; a DUIP checkpoint reloads its LLM from ``model_dir`` (default: the one it
    was trained with)."""
    import pickle
    import zipfile

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable crs.seqrec checkpoint ({exc})") from None
    by_class = {cls.__name__: (cls, cfg_cls) for cls, cfg_cls in model_classes().values()}
    name = blob.get("model") if isinstance(blob, dict) else None
    if name == "DUIP":
        from crs.seqrec.duip import DUIP

        model: SeqRecModel = DUIP.from_blob(blob, str(model_dir) if model_dir else None)
        return Checkpoint(model.eval(), blob["item_ids"], blob.get("titles"))
    if name not in by_class:
        raise ValueError(f"{path}: not a crs.seqrec checkpoint (model {name!r})")
    cls, cfg_cls = by_class[name]
    model = cls(cfg_cls(**blob["config"]))
    knowledge = blob["state_dict"].get("item_emb.knowledge")
    if knowledge is not None:
        from crs.seqrec.p2rec import attach_knowledge

        attach_knowledge(model, torch.zeros_like(knowledge))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return Checkpoint(model, blob["item_ids"], blob.get("titles"))

"""The trained parts of the ReDial ranking: popularity and item-item co-occurrence counted on
training dialogues, a SASRec sequential scorer over the movies mentioned in them, and item-item
cosine over ml-latest-small users' liked films (matched by IMDb id). Saved to and loaded from a
folder."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crs.config import ScoringConfig

log = logging.getLogger(__name__)

FEATURES = (
    "retrieval", "sequential", "cooccurrence", "external", "popularity", "genre", "repeat", "repeat_seeker", "profile",
)  # fmt: skip
Weights = dict[str, float]
DEFAULT_WEIGHTS: Weights = {
    "retrieval": 1.0,
    "sequential": 0.5,
    "cooccurrence": 1.0,
    "external": 0.0,
    "popularity": 0.5,
    "genre": 0.25,
    "repeat": 0.0,  # all-mentions ranking only: the recommender named the movie before
    "repeat_seeker": 0.0,  # all-mentions ranking only: the seeker named the movie before
    "disliked_genre": 1.0,
    "profile": 0.0,  # the seeker's liked movies from their earlier training dialogues
}


def agent_weights(scoring: ScoringConfig, components: Components) -> Weights:
    """The agent's ``[scoring]`` weights on this pipeline's features, so ReDial measures what the chat
    ranks with: retrieval similarity as the scale, the sequential model's z-score, log popularity (the
    feature here is divided by the log of the largest count, so the weight is multiplied back), and
    one bonus per liked genre. The agent has no co-occurrence, MovieLens or profile term."""
    top = math.log1p(float(components.pop.max()) or 1.0)
    return {
        "retrieval": 1.0,
        "sequential": scoring.sequential,
        "popularity": scoring.popularity * top,
        "genre": scoring.genre,
        "disliked_genre": 1.0,
    }


@dataclass
class SeqTrainConfig:
    hidden: int = 64
    max_len: int = 20
    dropout: float = 0.3
    epochs: int = 60
    batch_size: int = 128
    lr: float = 2e-3
    max_seconds: float = 150.0
    seed: int = 0


@dataclass
class Components:
    """Popularity, co-occurrence and SASRec over catalog indices (catalog order; SASRec uses index+1)."""

    item_ids: list[str]
    pop: np.ndarray  # (N,) training dialogues mentioning each item
    cooc: Any  # scipy.sparse.csr_matrix (N, N): training dialogues mentioning both items
    ext: Any = None  # scipy.sparse.csr_matrix (N, N): cosine of items over external users (MovieLens)
    sasrec: Any = None  # crs.seqrec.sasrec.SASRec or None
    weights: Weights = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    meta: dict[str, Any] = field(default_factory=dict)
    # seeker id -> [(training dialogue id, catalog indices the seeker liked there)], dialogue order
    profiles: dict[str, list[tuple[str, list[int]]]] = field(default_factory=dict)

    def profile(self, seeker: str, before: str) -> list[int]:
        """The movies ``seeker`` liked in training dialogues older than dialogue ``before``."""
        if not seeker or not before.isdigit():
            return []
        return list(
            dict.fromkeys(i for d, items in self.profiles.get(seeker, []) if int(d) < int(before) for i in items)
        )

    def profile_scores(self, profile: Sequence[int]) -> np.ndarray:
        """How well every item goes with a profile: co-mentions plus external item-item -> [0, 1]."""
        out = self.cooccurrence(profile) + self.external(profile)
        peak = float(out.max()) if len(out) else 0.0
        return out / peak if peak > 0 else out

    def popularity(self) -> np.ndarray:
        top = math.log1p(float(self.pop.max()) or 1.0)
        return (np.log1p(self.pop) / top).astype(np.float32)

    def cooccurrence(self, context: Sequence[int]) -> np.ndarray:
        """Sum over context items of their co-mention counts, damped by how common each is -> [0, 1]."""
        out = np.zeros(len(self.item_ids), dtype=np.float32)
        for a in context:
            row = self.cooc.getrow(a)
            out[row.indices] += row.data / math.log2(2.0 + float(self.pop[a]))
        peak = float(out.max())
        return out / peak if peak > 0 else out

    def external(self, context: Sequence[int]) -> np.ndarray:
        """Sum of the context items' cosine to every item over external users' likes -> [0, 1]."""
        out = np.zeros(len(self.item_ids), dtype=np.float32)
        if self.ext is None:
            return out
        for a in context:
            row = self.ext.getrow(a)
            out[row.indices] += row.data
        peak = float(out.max())
        return out / peak if peak > 0 else out

    def sequential(self, context: Sequence[int]) -> np.ndarray:
        """SASRec log-probabilities of every item after the context sequence, standardised per turn."""
        import torch

        if self.sasrec is None:
            return np.zeros(len(self.item_ids), dtype=np.float32)
        seq = torch.tensor([[i + 1 for i in context] or [0]], dtype=torch.long)
        with torch.no_grad():
            logits = self.sasrec.score_all(seq)[0, 1:]  # (N,)
            logp = torch.log_softmax(logits, dim=0).numpy()
        return ((logp - logp.mean()) / (logp.std() or 1.0)).astype(np.float32)

    # -- persistence ----------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        c = self.cooc
        e = self.ext if self.ext is not None else c[:0, :0].tocsr()
        np.savez_compressed(
            folder / "counts.npz", pop=self.pop, data=c.data, indices=c.indices, indptr=c.indptr,
            ext_data=e.data, ext_indices=e.indices, ext_indptr=e.indptr,
        )  # fmt: skip
        if self.sasrec is not None:
            self.sasrec.save(folder / "sasrec.pt", ["<pad>", *self.item_ids])
        meta = dict(self.meta) | {"weights": self.weights, "item_ids": self.item_ids, "profiles": self.profiles}
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Components:
        from scipy.sparse import csr_matrix

        from crs.seqrec.checkpoint import load

        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            blob = np.load(folder / "counts.npz")
            item_ids = list(meta.pop("item_ids"))
            n = len(item_ids)
            cooc = csr_matrix((blob["data"], blob["indices"], blob["indptr"]), shape=(n, n))
            ext = None
            if len(blob["ext_indptr"]) == n + 1:
                ext = csr_matrix((blob["ext_data"], blob["ext_indices"], blob["ext_indptr"]), shape=(n, n))
            sasrec = load(folder / "sasrec.pt").model if (folder / "sasrec.pt").exists() else None
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"{folder}: not a trained ReDial model folder ({exc})") from None
        profiles = {k: [(str(d), list(v)) for d, v in h] for k, h in (meta.pop("profiles", None) or {}).items()}
        return cls(item_ids, blob["pop"], cooc, ext, sasrec, dict(meta.pop("weights")), meta, profiles)


def train_components(
    item_ids: list[str],
    dialogue_sequences: Sequence[Sequence[str]],
    external_sequences: Sequence[Sequence[str]] = (),
    config: SeqTrainConfig | None = None,
    progress: bool = True,
    seeker_history: dict[str, list[tuple[str, list[str]]]] | None = None,
) -> Components:
    """Count popularity and co-occurrence on the dialogues' mention sequences; train SASRec on
    them; item-item cosine over the external sequences; keep the seekers' liked movies per training
    dialogue (``crs.eval.redial.data.seeker_history``) for profiles. Ids outside ``item_ids`` are skipped."""
    from scipy.sparse import coo_matrix, csr_matrix, diags

    index = {i: k for k, i in enumerate(item_ids)}
    n = len(item_ids)
    seqs = [[index[i] for i in dict.fromkeys(s) if i in index] for s in dialogue_sequences]
    pop = np.zeros(n, dtype=np.float64)
    rows, cols = [], []
    for s in seqs:
        pop[s] += 1
        for a in s:
            for b in s:
                if a != b:
                    rows.append(a)
                    cols.append(b)
    cooc = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    users = [sorted({index[i] for i in s if i in index}) for s in external_sequences]
    ext = None
    if users:
        x = csr_matrix(
            (
                np.ones(sum(map(len, users))),
                ([u for u, s in enumerate(users) for _ in s], [i for s in users for i in s]),
            ),
            shape=(len(users), n),
        )  # (U, N) binary likes
        norm = 1.0 / np.sqrt(np.asarray(x.sum(0)).ravel() + 1.0)
        ext = (diags(norm) @ (x.T @ x) @ diags(norm)).tocsr()  # (N, N) cosine-like
        ext.setdiag(0.0)
        ext.eliminate_zeros()
    sasrec = train_sasrec(n, [s for s in seqs if len(s) >= 2], config or SeqTrainConfig(), progress)
    meta = {"dialogues": len(dialogue_sequences), "external_users": len(users), "sasrec_sequences": len(seqs)}
    profiles = {
        seeker: [(d, [index[i] for i in liked if i in index]) for d, liked in history]
        for seeker, history in (seeker_history or {}).items()
    }
    return Components(list(item_ids), pop, cooc, ext, sasrec, meta=meta, profiles=profiles)


def train_sasrec(num_items: int, seqs: list[list[int]], cfg: SeqTrainConfig, progress: bool = True) -> Any:
    """SASRec with softmax cross-entropy over all items, predicting each next mention. Items are
    catalog index + 1 (0 is padding)."""
    import torch
    from tqdm.auto import tqdm

    from crs.seqrec.data import pad_left
    from crs.seqrec.sasrec import SASRec, SASRecConfig

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = SASRec(SASRecConfig(num_items, cfg.max_len, cfg.hidden, 2, 1, cfg.dropout, "ce"))
    if not seqs:
        return model.eval()
    windows = pad_left([np.asarray(s[-(cfg.max_len + 1) :], dtype=np.int64) + 1 for s in seqs], cfg.max_len + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98))
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="train SASRec", disable=not progress)
    for _ in bar:
        model.train()
        order = rng.permutation(len(windows))
        losses = []
        for lo in range(0, len(order), cfg.batch_size):
            win = torch.from_numpy(windows[order[lo : lo + cfg.batch_size]])  # (B, L + 1)
            loss = model(win[:, :-1], win[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses):.3f}")
        if time.perf_counter() - start > cfg.max_seconds:
            log.info("SASRec: time budget spent")
            break
    return model.eval()

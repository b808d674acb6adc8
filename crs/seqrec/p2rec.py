"""P2Rec: knowledge-enhanced item embeddings from an LLM tuned on each user's latent categories.

(a) A pre-trained backbone (SASRec) gives item embeddings; k-means clusters them into K latent
    categories (``kmeans``, ``item_categories``).
(b) Each user's target distribution over the K categories is the (smoothed) share of their training
    items in each (``user_distributions``).
(c) User-level LoRA fine-tuning (peft): the LLM reads a user's item titles, a head on its mean-pooled
    hidden states predicts the K-way distribution, trained with KL(target || predicted)
    (``CategoryTuner``, ``tune_llm``).
(d) The tuned LLM embeds each item's text (title and genres): mean-pooled hidden states (N + 1, D)
    (``item_knowledge``), standardised per dimension (``standardize``), mapped into the backbone's item space by a ridge regression onto the
    pre-trained item embeddings (``ridge_projection``).
(e) A fresh backbone is trained with item embedding = its own id embedding + a learned linear map
    (started at the ridge solution) of the frozen knowledge vectors (``KnowledgeEmbedding``,
    ``attach_knowledge``); compare it with the same backbone without enhancement.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crs.seqrec.base import SeqRecModel
from crs.seqrec.data import SeqDataset

log = logging.getLogger(__name__)


@dataclass
class P2RecConfig:
    categories: int = 16  # K latent categories
    kmeans_iters: int = 50
    smoothing: float = 0.1  # added to every category count before normalising
    max_titles: int = 10  # most recent training items named in a user's text
    title_tokens: int = 24  # tokens per item text
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    tune_steps: int = 100
    tune_batch: int = 8
    tune_lr: float = 5e-4
    tune_users: int | None = None  # tune on a seeded subset of users (a CPU scale-down)
    embed_batch: int = 64
    ridge: float = 1.0
    seed: int = 0
    progress: bool = True
    losses: list[float] = field(default_factory=list)  # KL per tuning step, filled by tune_llm


# --- (a) latent categories ---
def kmeans(x: np.ndarray, k: int, iters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding on rows of ``x`` (N, D) -> (labels (N,), centroids (k, D))."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < k:
        raise ValueError(f"k-means: {n} points for {k} clusters")
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(n)]]
    d2 = ((x - centroids[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centroids.append(x[rng.choice(n, p=probs)])
        d2 = np.minimum(d2, ((x - centroids[-1]) ** 2).sum(1))
    c = np.stack(centroids)  # (k, D)
    labels = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        dist = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None, :]  # (N, k)
        new = dist.argmin(1)
        if it and (new == labels).all():
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            c[j] = members.mean(0) if len(members) else x[rng.integers(n)]  # re-seed an empty cluster
    return labels, c


def item_categories(backbone: SeqRecModel, k: int, iters: int = 50, seed: int = 0) -> np.ndarray:
    """K-means of the backbone's item embeddings -> int64 (N + 1,) category per item index (-1 for padding)."""
    emb = backbone.item_emb.weight.detach().float().cpu().numpy()[1:]  # (N, d)
    labels, _ = kmeans(emb, k, iters, seed)
    return np.concatenate([[-1], labels]).astype(np.int64)


# --- (b) user targets ---
def user_distributions(dataset: SeqDataset, categories: np.ndarray, k: int, smoothing: float = 0.1) -> np.ndarray:
    """Per user, the smoothed share of their training items in each category -> float32 (U, k)."""
    out = np.full((dataset.num_users, k), smoothing, dtype=np.float64)
    for u in range(dataset.num_users):
        cats = categories[dataset.train(u)]
        np.add.at(out[u], cats[cats >= 0], 1.0)
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


def user_text(dataset: SeqDataset, u: int, texts: list[str], max_titles: int) -> str:
    """The user's most recent training items, by name."""
    items = dataset.train(u)[-max_titles:]
    return "A viewer who watched: " + "; ".join(texts[int(i)] for i in items)


# --- token batches (the tokenizer need only map text -> {"input_ids": [...]}) ---
def encode_texts(tokenizer: Any, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and mask (B, T); every text keeps at least one token."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] or [pad] for t in texts]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = 1
    return ids, mask


def pooled(llm: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the LLM's last hidden states over real tokens: (B, T) -> float32 (B, D)."""
    device = llm.get_input_embeddings().weight.device
    ids, mask = ids.to(device), mask.to(device)
    h = llm(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # (B, T, D)
    m = mask[..., None].float()
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


# --- (c) user-level LoRA tuning ---
class CategoryTuner(nn.Module):
    """LLM (+ LoRA) -> mean-pooled state (B, D) -> linear head -> log-probabilities over K categories."""

    def __init__(self, llm: Any, k: int, lora_r: int, lora_alpha: int, lora_targets: tuple[str, ...]) -> None:
        super().__init__()
        for p in llm.parameters():
            p.requires_grad_(False)
        if lora_r > 0:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError as exc:
                raise ImportError("P2Rec's LoRA tuning needs peft: pip install peft") from exc
            llm = get_peft_model(llm, LoraConfig(r=lora_r, lora_alpha=lora_alpha, target_modules=list(lora_targets)))
        self.llm = llm
        d = llm.get_input_embeddings().weight.shape[1]
        self.head = nn.Linear(d, k)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        z = pooled(self.llm, ids, mask)  # (B, D)
        return F.log_softmax(self.head(z.to(self.head.weight.device)), -1)  # (B, K)


def tune_llm(
    tuner: CategoryTuner, tokenizer: Any, texts: list[str], targets: np.ndarray, cfg: P2RecConfig
) -> CategoryTuner:
    """Fit the LoRA adapters and the head so that each user's text predicts their category
    distribution (KL divergence, batches of ``cfg.tune_batch`` users); losses go to ``cfg.losses``."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed)
    params = [p for p in tuner.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.tune_lr)
    tuner.train()
    device = tuner.head.weight.device
    bar = tqdm(range(cfg.tune_steps), desc="P2Rec LoRA tuning", disable=not cfg.progress)
    for _ in bar:
        rows = rng.choice(len(texts), size=min(cfg.tune_batch, len(texts)), replace=False)
        ids, mask = encode_texts(tokenizer, [texts[r] for r in rows], cfg.max_titles * (cfg.title_tokens + 2) + 8)
        logp = tuner(ids, mask)  # (B, K)
        target = torch.from_numpy(targets[rows]).to(device)  # (B, K)
        loss = F.kl_div(logp, target, reduction="batchmean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        cfg.losses.append(loss.item())
        bar.set_postfix(kl=f"{np.mean(cfg.losses[-10:]):.4f}")
    tuner.eval()
    return tuner


# --- (d) knowledge vectors and their projection ---
def item_knowledge(
    llm: Any, tokenizer: Any, texts: list[str], max_tokens: int = 24, batch: int = 64, progress: bool = True
) -> torch.Tensor:
    """Mean-pooled hidden states of each item's text -> float32 (N + 1, D); row 0 (padding) is zero.
    Texts are sorted by length so batches carry little padding."""
    from tqdm.auto import tqdm

    n = len(texts) - 1
    lengths = np.array([len(t) for t in texts[1:]])
    order = np.argsort(lengths, kind="stable") + 1  # item indices, shortest text first
    d = llm.get_input_embeddings().weight.shape[1]
    out = torch.zeros(n + 1, d)
    with torch.inference_mode():
        for lo in tqdm(range(0, n, batch), desc="P2Rec item knowledge", disable=not progress):
            idx = order[lo : lo + batch]
            ids, mask = encode_texts(tokenizer, [texts[i] for i in idx], max_tokens)
            out[torch.from_numpy(idx)] = pooled(llm, ids, mask).cpu()
    return out


def standardize(knowledge: torch.Tensor) -> torch.Tensor:
    """Each dimension to mean 0, sd 1 over the items (rows 1..N; row 0 stays zero). LLM hidden states
    have a few huge, nearly constant dimensions that would otherwise add one large vector to every item."""
    k = knowledge.clone()
    rows = k[1:]
    k[1:] = (rows - rows.mean(0)) / rows.std(0).clamp(min=1e-6)
    k[0] = 0.0
    return k


def ridge_projection(knowledge: torch.Tensor, target: torch.Tensor, ridge: float = 1.0) -> torch.Tensor:
    """W (D, d) minimising ||(K - mean) W - (E - mean)||^2 + ridge ||W||^2 over item rows 1..N
    (standardised knowledge, so one ``ridge`` suits any LLM)."""
    k = knowledge[1:].double()
    e = target[1:].double()
    mu, sd = k.mean(0), k.std(0).clamp(min=1e-6)
    ks = (k - mu) / sd
    a = ks.T @ ks + ridge * torch.eye(ks.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, ks.T @ (e - e.mean(0)))  # (D, d) on standardised inputs
    return (w / sd[:, None]).float()  # for knowledge centred like ``standardize``'s output


class KnowledgeEmbedding(nn.Module):
    """Item table = id embedding + Linear(knowledge); knowledge (N + 1, D) is a frozen buffer.
    Stands in for ``nn.Embedding``: ``forward(idx)`` and a ``weight`` (N + 1, d) property."""

    def __init__(self, base: nn.Embedding, knowledge: torch.Tensor, proj_init: torch.Tensor | None = None) -> None:
        super().__init__()
        self.base = base
        k = knowledge.float().clone()
        k[0] = 0.0
        self.register_buffer("knowledge", k)
        self.proj = nn.Linear(k.shape[1], base.weight.shape[1], bias=False)
        with torch.no_grad():
            if proj_init is not None:
                self.proj.weight.copy_(proj_init.T)
            else:
                self.proj.weight.zero_()
        self.padding_idx = 0

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight + self.proj(self.knowledge)  # (N + 1, d); row 0 stays zero

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.base(idx) + self.proj(self.knowledge[idx])  # (..., d)


def attach_knowledge(model: SeqRecModel, knowledge: torch.Tensor, proj_init: torch.Tensor | None = None) -> SeqRecModel:
    """Replace ``model.item_emb`` by a ``KnowledgeEmbedding`` over its current table; returns the model."""
    base = model.item_emb
    if isinstance(base, KnowledgeEmbedding):
        raise ValueError("the model already has knowledge-enhanced item embeddings")
    if knowledge.shape[0] != base.weight.shape[0]:
        raise ValueError(f"knowledge has {knowledge.shape[0]} rows, the item table {base.weight.shape[0]}")
    model.item_emb = KnowledgeEmbedding(base, knowledge, proj_init)  # type: ignore[assignment]
    return model


@dataclass
class P2RecResult:
    categories: np.ndarray  # (N + 1,)
    knowledge: torch.Tensor  # (N + 1, D)
    projection: torch.Tensor  # (D, d)
    tune_losses: list[float]
    seconds: dict[str, float]


def build_knowledge(
    backbone: SeqRecModel,
    dataset: SeqDataset,
    texts: list[str],
    llm: Any,
    tokenizer: Any,
    cfg: P2RecConfig,
) -> P2RecResult:
    """Steps (a)-(d) for a pre-trained ``backbone``; ``texts[i]`` describes item index i. Items that
    no training sequence holds (cold items in the vocabulary) get knowledge from their text like any
    other, which is what lets the enhanced model tell them apart."""
    if len(texts) != dataset.num_items + 1:
        raise ValueError(f"{len(texts)} item texts for {dataset.num_items} items (expected num_items + 1)")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    cats = item_categories(backbone, cfg.categories, cfg.kmeans_iters, cfg.seed)
    targets = user_distributions(dataset, cats, cfg.categories, cfg.smoothing)
    seconds["kmeans"] = time.perf_counter() - t
    users = [u for u in range(dataset.num_users) if len(dataset.train(u))]
    if cfg.tune_users is not None and len(users) > cfg.tune_users:
        users = sorted(np.random.default_rng(cfg.seed).choice(users, cfg.tune_users, replace=False).tolist())
    user_texts = [user_text(dataset, u, texts, cfg.max_titles) for u in users]
    t = time.perf_counter()
    tuner = CategoryTuner(llm, cfg.categories, cfg.lora_r, cfg.lora_alpha, cfg.lora_targets)
    tuner.head.to(llm.get_input_embeddings().weight.device)
    tune_llm(tuner, tokenizer, user_texts, targets[users], cfg)
    seconds["tune"] = time.perf_counter() - t
    t = time.perf_counter()
    knowledge = standardize(
        item_knowledge(tuner.llm, tokenizer, texts, cfg.title_tokens, cfg.embed_batch, cfg.progress)
    )
    seconds["embed"] = time.perf_counter() - t
    projection = ridge_projection(knowledge, backbone.item_emb.weight.detach().float().cpu(), cfg.ridge)
    log.info("P2Rec knowledge: %s, tuning KL %.4f -> %.4f, %s", tuple(knowledge.shape),
             cfg.losses[0] if cfg.losses else float("nan"), np.mean(cfg.losses[-10:]) if cfg.losses else float("nan"),
             {k: round(v, 1) for k, v in seconds.items()})  # fmt: skip
    return P2RecResult(cats, knowledge, projection, list(cfg.losses), seconds)


def fold_knowledge(model: SeqRecModel) -> SeqRecModel:
    """A knowledge-enhanced model as a plain one of the same class and the same scores: its item table
    becomes the ``KnowledgeEmbedding``'s effective table (id embedding + projected knowledge), so the
    file no longer carries the (N + 1, D) knowledge buffer (tens of MB for a catalog). In eval mode."""
    emb = model.item_emb
    if not isinstance(emb, KnowledgeEmbedding):
        raise ValueError("the model has no knowledge-enhanced item embeddings to fold")
    with torch.no_grad():
        table = emb.weight.detach().clone()  # (N + 1, d)
    folded = type(model)(model.config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("item_emb.")}
    missing, unexpected = folded.load_state_dict(state | {"item_emb.weight": table}, strict=False)
    if missing or unexpected:
        raise ValueError(f"cannot fold the knowledge: missing {missing}, unexpected {unexpected}")
    return folded.eval()

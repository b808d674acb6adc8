"""DUIP: an LSTM intent encoder prompts an LLM to recommend the next item.

The LSTM (``crs.seqrec.lstm``) reads the interaction history; its last hidden state h (B, H) goes
through f(·), a two-layer MLP, into ``soft_prompts`` vectors of the LLM's embedding size (B, k, D).
They are prepended to the token embeddings of a hard prompt naming the user's most recent items
("Recently watched: Alien (1979); Heat (1995). Next:"), the LLM (SmolLM2 by default; frozen, or
with LoRA adapters through peft when ``lora_r > 0``) reads the whole input, and its final hidden
state at the last prompt token (B, D) is mapped by the scoring head to item-embedding space (B, E);
an item's score is the dot product with its embedding (the LSTM's input table, shared).
With ``residual`` the head also sees the intent h (concatenated), so the LLM refines the LSTM.

Trained end to end (soft prompts, f, LSTM, head, item table, LoRA) with softmax cross-entropy over
all items (``loss="ce"``) or sampled softmax (``loss="sce"``), on the last position of each input.
The frozen LLM weights are not written into checkpoints; ``model_dir`` names where they load from.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crs.seqrec.base import Dropout, SeqRecModel, item_embedding, run_rnn, sequence_loss
from crs.seqrec.data import SeqDataset, pad_left

log = logging.getLogger(__name__)

PROMPT_PREFIX = "Recently watched: "
PROMPT_SEPARATOR = "; "
PROMPT_SUFFIX = ". Next:"


@dataclass
class DUIPConfig:
    num_items: int
    max_len: int = 50  # LSTM input length
    embedding: int = 64  # item embedding size E
    hidden: int = 128  # LSTM intent size H
    dropout: float = 0.2
    soft_prompts: int = 4  # k soft-prompt vectors
    prompt_items: int = 5  # recent items named in the hard prompt
    title_tokens: int = 16  # each title is cut to this many tokens
    residual: bool = True  # the scoring head sees [LLM state; intent] instead of the LLM state alone
    use_llm: bool = True  # False: an ablation with the LLM state replaced by zeros (needs residual)
    lora_r: int = 0  # 0: frozen LLM; >0: LoRA rank on the attention projections
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    llm_layers: int = 0  # keep only the first n decoder layers (0: all); a CPU scale-down
    model_dir: str = ""  # transformers model dir of the LLM (recorded in checkpoints)
    dtype: str = "float32"  # LLM weights: float32 or bfloat16
    loss: Literal["ce", "sce"] = "ce"


def load_llm(model_dir: str | Path, dtype: str = "float32", layers: int = 0) -> tuple[Any, Any]:
    """(causal LM's base model, tokenizer) from a transformers dir, offline; ``layers`` > 0 keeps the first n."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise ImportError("DUIP needs transformers: pip install transformers") from exc
    from crs.llm.local import dtype_kwarg

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no transformers model in {path} (config.json missing)")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    lm = AutoModelForCausalLM.from_pretrained(str(path), **{dtype_kwarg(): getattr(torch, dtype)})
    base = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model
    if layers and layers < len(base.layers):
        base.layers = base.layers[:layers]
        base.config.num_hidden_layers = layers
    return base, tokenizer


def title_token_ids(tokenizer: Any, titles: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each title (index 0, the padding item, gets none), cut to ``max_tokens``."""
    out: list[list[int]] = [[]]
    for t in titles[1:]:
        out.append(tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens])
    return out


class DUIP(SeqRecModel):
    """``DUIP(config, titles, llm=None, tokenizer=None)``: ``titles[i]`` names item index i (titles[0]
    is padding); the LLM is loaded from ``config.model_dir`` unless given (any decoder whose forward
    takes ``inputs_embeds`` and returns ``last_hidden_state``, e.g. a ``LlamaModel``)."""

    def __init__(self, config: DUIPConfig, titles: list[str], llm: Any = None, tokenizer: Any = None) -> None:
        super().__init__()
        if len(titles) != config.num_items + 1:
            raise ValueError(f"{len(titles)} titles for {config.num_items} items (expected num_items + 1)")
        if llm is None or tokenizer is None:
            if not config.model_dir:
                raise ValueError("DUIP needs an LLM: pass llm and tokenizer, or set config.model_dir")
            llm, tokenizer = load_llm(config.model_dir, config.dtype, config.llm_layers)
        self.config = c = config
        self.titles = list(titles)
        self.tokenizer = tokenizer
        for p in llm.parameters():
            p.requires_grad_(False)
        if c.lora_r > 0:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError as exc:
                raise ImportError("DUIP with lora_r > 0 needs peft: pip install peft") from exc
            llm = get_peft_model(
                llm, LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, target_modules=list(c.lora_targets))
            )
        self.llm = llm
        d = llm.get_input_embeddings().weight.shape[1]  # D, the LLM's embedding size
        self.llm_dim = d
        # the intent encoder (as LSTMIntent)
        self.item_emb = item_embedding(c.num_items, c.embedding)
        self.dropout = Dropout(c.dropout)
        self.lstm = nn.LSTM(c.embedding, c.hidden, batch_first=True)
        # f(·): intent (B, H) -> k soft prompts (B, k, D), scaled like the LLM's token embeddings
        self.f = nn.Sequential(
            nn.Linear(c.hidden, 2 * c.hidden), nn.GELU(), nn.Linear(2 * c.hidden, c.soft_prompts * d)
        )
        tok_std = float(llm.get_input_embeddings().weight.float().std())
        self.prompt_scale = nn.Parameter(torch.tensor(tok_std))
        self.score_head = nn.Linear(d + (c.hidden if c.residual else 0), c.embedding)
        # hard prompt pieces, tokenised once
        self._prefix = tokenizer(PROMPT_PREFIX, add_special_tokens=False)["input_ids"]
        self._sep = tokenizer(PROMPT_SEPARATOR, add_special_tokens=False)["input_ids"]
        self._suffix = tokenizer(PROMPT_SUFFIX, add_special_tokens=False)["input_ids"]
        self._title_ids = title_token_ids(tokenizer, self.titles, c.title_tokens)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # --- the pieces ---
    def intent(self, seq: torch.Tensor) -> torch.Tensor:
        """LSTM intent after the last item: (B, L) -> (B, H)."""
        seq = seq[:, -self.config.max_len :]
        x = self.dropout(self.item_emb(seq))  # (B, L, E)
        return run_rnn(self.lstm, x, seq)[:, -1]  # (B, H)

    def soft_prompt(self, h: torch.Tensor) -> torch.Tensor:
        """f(h): (B, H) -> (B, k, D), each vector normalised to the token-embedding scale."""
        p = self.f(h).view(h.shape[0], self.config.soft_prompts, self.llm_dim)  # (B, k, D)
        return F.normalize(p, dim=-1) * self.prompt_scale * self.llm_dim**0.5

    def hard_prompt(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids naming the last ``prompt_items`` items, right-padded -> ids (B, T), mask (B, T)."""
        rows = []
        for r in seq.tolist():
            recent = [i for i in r if i][-self.config.prompt_items :]
            ids = list(self._prefix)
            for n, i in enumerate(recent):
                ids += (self._sep if n else []) + self._title_ids[i]
            rows.append(ids + self._suffix)
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        return ids.to(seq.device), mask.to(seq.device)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """The user vector in item-embedding space: (B, L) -> (B, E)."""
        k = self.config.soft_prompts
        h = self.intent(seq)  # (B, H)
        if not self.config.use_llm:  # ablation: the same model and training without the LLM
            z = torch.zeros(h.shape[0], self.llm_dim, device=h.device)  # (B, D)
            return self.score_head(self.dropout(torch.cat([z, h], -1)))  # (B, E)
        ids, mask = self.hard_prompt(seq)  # (B, T)
        emb_layer = self.llm.get_input_embeddings()
        tokens = emb_layer(ids)  # (B, T, D)
        soft = self.soft_prompt(h).to(tokens.dtype)  # (B, k, D)
        x = torch.cat([soft, tokens], 1)  # (B, k + T, D)
        attn = torch.cat([torch.ones_like(mask[:, :1]).expand(-1, k), mask], 1)  # (B, k + T)
        out = self.llm(inputs_embeds=x, attention_mask=attn).last_hidden_state  # (B, k + T, D)
        last = k + mask.sum(1) - 1  # (B,): the last real token (right padding)
        z = out[torch.arange(out.shape[0], device=out.device), last].float()  # (B, D)
        if self.config.residual:
            z = torch.cat([z, h], -1)  # (B, D + H)
        return self.score_head(self.dropout(z))  # (B, E)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return h  # encode already maps to item space

    def score(self, seq: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, L), (B, C) -> (B, C), on the inputs' device whatever device the model is on."""
        dev = self.item_emb.weight.device
        u = self.encode(seq.to(dev))  # (B, E)
        return torch.einsum("bcd,bd->bc", self.item_emb(candidates.to(dev)), u).float().to(seq.device)

    def score_all(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, N + 1), on the input's device."""
        return (self.encode(seq.to(self.item_emb.weight.device)) @ self.item_emb.weight.T).float().to(seq.device)

    def forward(self, seq: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of predicting the last target of each row: ``seq`` (B, L), ``pos`` (B, L) next items
        (the last column is used), ``neg`` (any shape) sampled negatives shared by every row (``sce``)."""
        u = self.encode(seq)  # (B, E)
        target = pos[:, -1]  # (B,)
        if self.config.loss == "ce":
            return sequence_loss(u[:, None], target[:, None], None, self.item_emb.weight, "ce")
        if neg is None:
            raise ValueError("loss 'sce' needs sampled negatives")
        pool = neg.flatten()  # (K,)
        pos_logit = (u * self.item_emb(target)).sum(-1, keepdim=True)  # (B, 1)
        neg_logit = u @ self.item_emb(pool).T  # (B, K)
        neg_logit = neg_logit.masked_fill(pool[None, :] == target[:, None], float("-inf"))
        return F.cross_entropy(torch.cat([pos_logit, neg_logit], 1), torch.zeros_like(target))

    # --- checkpoints: everything but the frozen LLM weights ---
    def trainable_state(self) -> dict[str, torch.Tensor]:
        frozen = {n for n, p in self.named_parameters() if n.startswith("llm.") and not p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    def save(self, path: str | Path, item_ids: list[str] | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.config)
        cfg["lora_targets"] = list(cfg["lora_targets"])
        blob = {
            "model": "DUIP",
            "config": cfg,
            "state_dict": self.trainable_state(),
            "item_ids": list(item_ids) if item_ids is not None else None,
            "titles": self.titles,
        }
        torch.save(blob, path)
        log.info("saved DUIP to %s (LLM weights stay in %s)", path, self.config.model_dir)

    @classmethod
    def from_blob(
        cls, blob: dict[str, Any], model_dir: str | None = None, llm: Any = None, tokenizer: Any = None
    ) -> DUIP:
        cfg = dict(blob["config"])
        cfg["lora_targets"] = tuple(cfg.get("lora_targets", ("q_proj", "v_proj")))
        if model_dir:
            cfg["model_dir"] = str(model_dir)
        model = cls(DUIPConfig(**cfg), blob["titles"], llm, tokenizer)
        missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
        missing = [k for k in missing if k in model.trainable_state()]
        if missing or unexpected:
            raise ValueError(
                f"DUIP checkpoint does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        return model.eval()


@dataclass
class DUIPTrainConfig:
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    llm_lr: float = 1e-4  # LoRA adapters
    seed: int = 0
    eval_every: int = 50  # steps between validation runs (sampled-100 NDCG@10)
    eval_users: int | None = 256
    max_seconds: float | None = None
    grad_clip: float | None = 5.0
    num_threads: int | None = None
    progress: bool = True
    checkpoint: Path | None = None
    losses: list[float] = field(default_factory=list)  # filled during training


def init_from_lstm(model: DUIP, lstm: SeqRecModel) -> None:
    """Start DUIP's intent encoder and item table from a trained ``LSTMIntent`` of the same sizes; with
    ``residual``, the scoring head starts as the LSTM's own head with zero weight on the LLM state, so
    DUIP begins exactly where the LSTM is and training decides how much the LLM adds."""
    model.item_emb.load_state_dict(lstm.item_emb.state_dict())
    model.lstm.load_state_dict(lstm.lstm.state_dict())  # type: ignore[union-attr]
    if model.config.residual:
        out: nn.Linear = lstm.out  # type: ignore[assignment]
        with torch.no_grad():
            model.score_head.weight.zero_()
            model.score_head.weight[:, model.llm_dim :] = out.weight
            model.score_head.bias.copy_(out.bias)


def train_duip(model: DUIP, dataset: SeqDataset, cfg: DUIPTrainConfig | None = None) -> dict[str, Any]:
    """End-to-end training on random prefixes of each user's training items (one target per example);
    keeps the weights of the best validation NDCG@10 (sampled-100). Returns a summary dict."""
    from tqdm.auto import tqdm

    from crs.seqrec.metrics import evaluate
    from crs.seqrec.train import training_setup

    cfg = cfg or DUIPTrainConfig()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    users = np.array([u for u in range(dataset.num_users) if len(dataset.train(u)) >= 2], dtype=np.int64)
    if len(users) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no user with two training items")
    sampler, eval_users, valid_negs = training_setup(dataset, users, cfg.eval_users, cfg.seed)
    llm_params = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("llm.")]
    own = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("llm.")]
    groups = [{"params": own, "lr": cfg.lr}] + ([{"params": llm_params, "lr": cfg.llm_lr}] if llm_params else [])
    opt = torch.optim.Adam(groups)
    best = (-1.0, 0)
    best_state: dict[str, torch.Tensor] | None = None
    L = model.config.max_len
    device = model.item_emb.weight.device
    bar = tqdm(range(1, cfg.steps + 1), desc="train DUIP", disable=not cfg.progress)
    for step in bar:
        model.train()
        rows = rng.choice(len(users), size=min(cfg.batch_size, len(users)), replace=False)
        seqs, targets = [], []
        for r in rows:
            items = dataset.train(int(users[r]))
            cut = int(rng.integers(1, len(items)))  # predict items[cut] from items[:cut]
            seqs.append(items[:cut])
            targets.append(items[cut])
        seq = torch.from_numpy(pad_left(seqs, L, trim=True)).to(device)  # (B, l)
        pos = torch.tensor(targets)[:, None].to(device)  # (B, 1)
        neg = torch.from_numpy(sampler.sample(rng, rows, 8)).flatten()[None, :].to(device)  # (1, B*8): sce pool
        loss = model(seq, pos, neg if model.config.loss == "sce" else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], cfg.grad_clip)
        opt.step()
        cfg.losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(cfg.losses[-20:]):.3f}")
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
        if valid_negs is not None and (step % cfg.eval_every == 0 or step == cfg.steps or out_of_time):
            res = evaluate(
                model, dataset, "valid", "sampled100", seed=cfg.seed, max_users=cfg.eval_users,
                negatives=valid_negs, batch_size=64, progress=False,
            )  # fmt: skip
            log.info("DUIP step %d loss %.4f valid NDCG@10 %.4f", step, np.mean(cfg.losses[-20:]), res["ndcg@10"])
            if res["ndcg@10"] > best[0]:
                best = (res["ndcg@10"], step)
                best_state = {k: v.detach().clone() for k, v in model.trainable_state().items()}
                if cfg.checkpoint:
                    model.save(cfg.checkpoint, dataset.item_ids)
        if out_of_time:
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    return {
        "best_step": best[1],
        "best_valid_ndcg": best[0],
        "steps": len(cfg.losses),
        "train_seconds": time.perf_counter() - start,
    }

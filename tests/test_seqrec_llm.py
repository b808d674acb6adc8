"""crs.seqrec.duip and crs.seqrec.p2rec: the LLM-based sequential models, on tiny synthetic data.

Shapes and gradients are checked on a tiny randomly initialised Llama (fast); one test per model runs
the real SmolLM2-135M (from the test model cache) for a few steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from crs.seqrec.data import PAD, SeqDataset, pad_left
from tests.conftest import train_steps

NUM_ITEMS = 30
GENRES = ["Comedy", "Horror", "Drama"]


def synthetic(num_users: int = 40, length: int = 8) -> SeqDataset:
    """User u walks i -> i + 1 (mod 30) from item u % 30 + 1."""
    seqs = [np.array([(u + t) % NUM_ITEMS + 1 for t in range(length)], dtype=np.int64) for u in range(num_users)]
    return SeqDataset(
        "synthetic", seqs, [PAD] + [f"i{i}" for i in range(1, NUM_ITEMS + 1)], [f"u{u}" for u in range(num_users)]
    )


def titles() -> list[str]:
    return [""] + [f"Film {i} ({1970 + i}) {GENRES[i % 3]}" for i in range(1, NUM_ITEMS + 1)]


class CharTokenizer:
    """A byte-level tokenizer for the tiny random Llama (the real tokenizer is tested with SmolLM2)."""

    pad_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [b + 1 for b in text.encode()][:64]}


def tiny_llm():  # noqa: ANN201
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=260, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512,
    )  # fmt: skip
    return LlamaModel(cfg)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct safetensors dir (converted once into the test cache)."""
    from conftest import test_config

    from crs.llm.local import ensure_local_model

    return ensure_local_model(test_config(Path("/tmp")))


def _batch(ds: SeqDataset, n: int = 16, width: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    seq = torch.from_numpy(pad_left([ds.train(u) for u in range(n)], width + 1))
    return seq[:, :-1], seq[:, 1:]


# --- DUIP ---
def _duip(**overrides: object):  # noqa: ANN202
    from crs.seqrec.duip import DUIP, DUIPConfig

    cfg = DUIPConfig(num_items=NUM_ITEMS, max_len=10, embedding=16, hidden=24, soft_prompts=3, dropout=0.0, **overrides)
    return DUIP(cfg, titles(), tiny_llm(), CharTokenizer())


def test_duip_shapes_and_hard_prompt() -> None:
    model = _duip(prompt_items=2, title_tokens=40).eval()
    seq = torch.tensor([[0, 0, 3, 4, 5], [0, 0, 0, 0, 7]])
    ids, mask = model.hard_prompt(seq)
    text = bytes(i - 1 for i in ids[0, : int(mask[0].sum())].tolist()).decode()
    assert text == "Recently watched: Film 4 (1974) Horror; Film 5 (1975) Drama. Next:"
    assert mask[1].sum() < mask[0].sum() and mask[1, -1] == 0  # right-padded
    assert model.soft_prompt(model.intent(seq)).shape == (2, 3, 32)
    cand = torch.randint(1, NUM_ITEMS + 1, (2, 7))
    assert model.score(seq, cand).shape == (2, 7)
    assert model.score_all(seq).shape == (2, NUM_ITEMS + 1)
    # padding on the left of the LSTM input changes nothing
    padded = torch.cat([torch.zeros(2, 3, dtype=torch.long), seq], 1)
    assert torch.allclose(model.score(padded, cand), model.score(seq, cand), atol=1e-5)


def test_duip_gradients_reach_the_lstm_through_the_llm() -> None:
    model = _duip(residual=False)  # the intent reaches the loss only through the soft prompts and the LLM
    inp, pos = _batch(synthetic())
    model(inp, pos).backward()
    assert all(p.grad is None for p in model.llm.parameters())  # frozen
    for name in ("lstm.weight_hh_l0", "lstm.weight_ih_l0", "f.0.weight", "f.2.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("loss", ["ce", "sce"])
def test_duip_loss_falls(loss: str) -> None:
    model = _duip(loss=loss)
    inp, pos = _batch(synthetic())
    neg = torch.randint(1, NUM_ITEMS + 1, (1, 64))
    losses = train_steps(model, inp, pos, neg, 25)
    assert losses[-1] < 0.6 * losses[0]


def test_duip_lora_trains_adapters_and_checkpoint_round_trips(tmp_path: Path) -> None:
    from crs.seqrec.duip import DUIP

    model = _duip(lora_r=4, lora_targets=("q_proj", "v_proj"))
    trainable = [n for n, p in model.llm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    inp, pos = _batch(synthetic())
    model(inp, pos).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.llm.named_parameters() if "lora_B" in n)
    path = tmp_path / "duip.pt"
    ds = synthetic()
    model.eval().save(path, ds.item_ids)
    blob = torch.load(path, weights_only=True)
    assert not any(k.startswith("llm.") and "lora_" not in k for k in blob["state_dict"])  # frozen weights not saved
    loaded = DUIP.from_blob(blob, llm=tiny_llm(), tokenizer=CharTokenizer())  # same seeded base weights
    cand = torch.arange(1, NUM_ITEMS + 1).repeat(2, 1)
    with torch.no_grad():
        assert torch.allclose(loaded.score(inp[:2], cand), model.score(inp[:2], cand), atol=1e-5)


def test_duip_starts_where_its_lstm_is() -> None:
    from crs.seqrec.checkpoint import build_model
    from crs.seqrec.duip import init_from_lstm

    lstm = build_model("lstm", NUM_ITEMS, embedding=16, hidden=24, max_len=10).eval()
    model = _duip()
    init_from_lstm(model, lstm)
    model.eval()
    inp, _ = _batch(synthetic(), 4)
    with torch.no_grad():
        assert torch.allclose(model.score_all(inp), lstm.score_all(inp), atol=1e-5)
    control = _duip(use_llm=False)  # the ablation: the same model without the LLM
    init_from_lstm(control, lstm)
    with torch.no_grad():
        assert torch.allclose(control.eval().score_all(inp), lstm.score_all(inp), atol=1e-5)


def test_duip_validates_titles() -> None:
    from crs.seqrec.duip import DUIP, DUIPConfig

    with pytest.raises(ValueError, match="titles"):
        DUIP(DUIPConfig(num_items=NUM_ITEMS), titles()[:5], tiny_llm(), CharTokenizer())
    with pytest.raises(ValueError, match="needs an LLM"):
        DUIP(DUIPConfig(num_items=NUM_ITEMS), titles())


def test_duip_with_real_smollm2_trains(smollm2_dir: Path) -> None:
    """A few end-to-end steps through the real SmolLM2 (frozen, 2 of its 30 layers to stay fast):
    the loss falls and the LSTM gets gradients through the LLM."""
    from crs.seqrec.duip import DUIP, DUIPConfig, DUIPTrainConfig, train_duip

    cfg = DUIPConfig(
        num_items=NUM_ITEMS, max_len=10, embedding=16, hidden=24, soft_prompts=2, prompt_items=2, llm_layers=2,
        model_dir=str(smollm2_dir), residual=False, dropout=0.0,
    )  # fmt: skip
    model = DUIP(cfg, titles())
    assert model.llm_dim == 576 and len(model.llm.layers) == 2
    ds = synthetic()
    tcfg = DUIPTrainConfig(steps=12, batch_size=8, lr=0.01, eval_every=100, eval_users=8, progress=False)
    lstm_before = model.lstm.weight_hh_l0.detach().clone()
    summary = train_duip(model, ds, tcfg)
    assert np.mean(tcfg.losses[-3:]) < np.mean(tcfg.losses[:3])
    assert not torch.equal(model.lstm.weight_hh_l0, lstm_before)
    assert summary["steps"] == 12


# --- P2Rec ---
def test_kmeans_finds_separated_clusters() -> None:
    from crs.seqrec.p2rec import kmeans

    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + rng.normal(0, 0.5, (20, 2)) for c in centers])
    labels, cent = kmeans(x, 3, seed=1)
    for j in range(3):
        assert len(set(labels[j * 20 : (j + 1) * 20])) == 1  # each blob is one cluster
    assert len(set(labels)) == 3 and cent.shape == (3, 2)
    with pytest.raises(ValueError, match="clusters"):
        kmeans(x[:2], 3)


def test_user_distributions_and_text() -> None:
    from crs.seqrec.p2rec import user_distributions, user_text

    ds = synthetic()
    cats = np.concatenate([[-1], np.arange(NUM_ITEMS) % 3])  # item i -> (i - 1) % 3
    dist = user_distributions(ds, cats, 3, smoothing=0.0)
    assert dist.shape == (40, 3) and np.allclose(dist.sum(1), 1)
    # user 0 trains on items 1..6 -> two of each category
    assert np.allclose(dist[0], [1 / 3, 1 / 3, 1 / 3])
    short = SeqDataset("s", [np.array([1, 4, 7, 2, 5])], ds.item_ids, ["u"])  # trains on 1, 4, 7
    assert np.allclose(user_distributions(short, cats, 3, smoothing=0.0)[0], [1, 0, 0])
    assert user_text(short, 0, titles(), 2) == "A viewer who watched: Film 4 (1974) Horror; Film 7 (1977) Horror"


def test_ridge_projection_recovers_a_linear_map() -> None:
    from crs.seqrec.p2rec import ridge_projection

    g = torch.Generator().manual_seed(0)
    k = torch.randn(200, 12, generator=g)
    w = torch.randn(12, 4, generator=g)
    e = k @ w
    k[0], e[0] = 0, 0
    est = ridge_projection(k, e, ridge=1e-6)
    assert torch.allclose(est, w, atol=1e-3)


def test_knowledge_embedding_trains_with_a_backbone_and_round_trips(tmp_path: Path) -> None:
    from crs.seqrec.checkpoint import build_model, load, save
    from crs.seqrec.p2rec import KnowledgeEmbedding, attach_knowledge

    model = build_model("sasrec", NUM_ITEMS, hidden=16, blocks=1, heads=2, dropout=0.1, max_len=10)
    knowledge = torch.randn(NUM_ITEMS + 1, 8)
    attach_knowledge(model, knowledge, torch.randn(8, 16) * 0.1)
    assert isinstance(model.item_emb, KnowledgeEmbedding)
    assert model.item_emb.weight.shape == (NUM_ITEMS + 1, 16) and model.item_emb.weight[0].abs().sum() == 0
    inp, pos = _batch(synthetic(), 32, 8)
    neg = torch.randint(1, NUM_ITEMS + 1, pos.shape) * (pos != 0)
    losses = train_steps(model, inp, pos, neg, 30)
    assert losses[-1] < 0.7 * losses[0]
    assert model.item_emb.proj.weight.grad is not None and "knowledge" not in dict(model.named_parameters())
    path = tmp_path / "p2rec.pt"
    model.eval()
    save(model, path, synthetic().item_ids, titles())
    ck = load(path)
    assert isinstance(ck.model.item_emb, KnowledgeEmbedding) and ck.titles == titles()
    cand = torch.arange(1, NUM_ITEMS + 1).repeat(4, 1)
    with torch.no_grad():
        assert torch.equal(ck.model.score(inp[:4], cand), model.score(inp[:4], cand))
    with pytest.raises(ValueError, match="rows"):
        attach_knowledge(build_model("gru4rec", NUM_ITEMS, embedding=16), knowledge[:5])


def _p2rec_pipeline(llm, tokenizer, **overrides: object):  # noqa: ANN001, ANN202
    from crs.seqrec.checkpoint import build_model
    from crs.seqrec.p2rec import P2RecConfig, build_knowledge
    from crs.seqrec.train import TrainConfig, train

    ds = synthetic()
    backbone = build_model("sasrec", NUM_ITEMS, hidden=16, blocks=1, heads=2, dropout=0.1, max_len=10)
    train(backbone, ds, TrainConfig(epochs=5, batch_size=16, lr=0.01, eval_every=5, num_threads=1, progress=False))
    cfg = P2RecConfig(categories=3, tune_batch=4, tune_lr=0.01, progress=False, **overrides)  # type: ignore[arg-type]
    return ds, backbone, cfg, build_knowledge(backbone, ds, titles(), llm, tokenizer, cfg)


def test_fold_knowledge_keeps_the_scores_without_the_knowledge_buffer(tmp_path: Path) -> None:
    """Folding writes the effective item table into a plain SASRec (same scores, no knowledge buffer),
    and the folded file round-trips through the chat's scorer, matched to a catalog by title."""
    from crs.catalog import Catalog, Item
    from crs.rank.scorer import SeqScorer
    from crs.seqrec.checkpoint import build_model, load, save
    from crs.seqrec.p2rec import KnowledgeEmbedding, attach_knowledge, fold_knowledge

    model = build_model("sasrec", NUM_ITEMS, hidden=16, blocks=1, heads=2, dropout=0.1, max_len=10)
    attach_knowledge(model, torch.randn(NUM_ITEMS + 1, 8), torch.randn(8, 16))
    model.eval()
    folded = fold_knowledge(model)
    assert not isinstance(folded.item_emb, KnowledgeEmbedding) and folded.config == model.config
    inp, _ = _batch(synthetic(), 4, 8)
    cand = torch.arange(1, NUM_ITEMS + 1).repeat(4, 1)
    with torch.no_grad():
        assert torch.allclose(folded.score(inp, cand), model.score(inp, cand), atol=1e-5)
    with pytest.raises(ValueError, match="no knowledge"):
        fold_knowledge(folded)
    names = ["", *(f"Film {i} ({1970 + i})" for i in range(1, NUM_ITEMS + 1))]
    save(folded, tmp_path / "folded.pt", synthetic().item_ids, names)
    assert "item_emb.knowledge" not in torch.load(tmp_path / "folded.pt", weights_only=True)["state_dict"]
    ck = load(tmp_path / "folded.pt")
    catalog = Catalog([Item("a", "Film 3", 1973), Item("b", "Film 4", 1974), Item("c", "Film 5", 1975)])
    scorer = SeqScorer(ck.model, ck.item_ids, catalog, ck.titles)
    assert scorer.match.matched == 3 and set(scorer.scores(["a"], ["b", "c"])) == {"b", "c"}


def test_lora_tuning_fits_user_distributions() -> None:
    """Users whose texts name different films get different targets; tuning the LoRA adapters and
    the head brings the KL over all users down."""
    import torch.nn.functional as F

    from crs.seqrec.p2rec import CategoryTuner, P2RecConfig, encode_texts, tune_llm

    texts = [f"A viewer who watched: {'Alien; Heat' if u % 2 else 'Toy Story; Babe'} {u}" for u in range(8)]
    targets = np.array([[0.9, 0.05, 0.05] if u % 2 else [0.05, 0.05, 0.9] for u in range(8)], dtype=np.float32)
    tuner = CategoryTuner(tiny_llm(), 3, lora_r=4, lora_alpha=8, lora_targets=("q_proj", "v_proj"))
    tok = CharTokenizer()

    def kl() -> float:
        with torch.no_grad():
            return F.kl_div(
                tuner(*encode_texts(tok, texts, 64)), torch.from_numpy(targets), reduction="batchmean"
            ).item()

    before = kl()
    tune_llm(tuner, tok, texts, targets, P2RecConfig(tune_steps=40, tune_batch=8, tune_lr=0.01, progress=False))
    assert kl() < 0.3 * before
    assert any(p.grad is not None for n, p in tuner.llm.named_parameters() if "lora_" in n)


def test_p2rec_pipeline_on_a_tiny_llm() -> None:
    ds, backbone, cfg, res = _p2rec_pipeline(tiny_llm(), CharTokenizer(), tune_steps=30, lora_r=4)
    assert res.categories.shape == (NUM_ITEMS + 1,) and res.categories[0] == -1
    assert set(res.categories[1:]) <= {0, 1, 2}
    assert len(res.tune_losses) == 30 and all(np.isfinite(res.tune_losses))
    assert res.knowledge.shape == (NUM_ITEMS + 1, 32) and res.knowledge[0].abs().sum() == 0
    assert res.knowledge[1:].abs().sum(1).min() > 0
    assert res.projection.shape == (32, 16)


def test_p2rec_with_real_smollm2(smollm2_dir: Path) -> None:
    """Steps (a)-(d) through the real SmolLM2 with LoRA (2 of its layers, a few steps)."""
    from crs.seqrec.duip import load_llm

    llm, tok = load_llm(smollm2_dir, "float32", layers=2)
    _, _, _, res = _p2rec_pipeline(llm, tok, tune_steps=6, lora_r=4, max_titles=3)
    assert res.knowledge.shape == (NUM_ITEMS + 1, 576)
    assert len(res.tune_losses) == 6 and all(np.isfinite(res.tune_losses))
    assert any("lora_" in n for n, _ in llm.named_parameters())  # tuned in place by peft

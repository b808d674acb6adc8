"""crs.seqrec: loaders, leave-one-out split, metrics and protocols, the three models, training and checkpoints."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from crs.seqrec.checkpoint import build_model, load
from crs.seqrec.data import (
    PAD,
    DataFormatError,
    NegativeSampler,
    SeqDataset,
    load_dataset,
    load_movielens,
    load_recbole_inter,
    load_sasrec_txt,
    pad_left,
)
from crs.seqrec.metrics import evaluate, hit_ndcg, rank_of_target, sample_eval_negatives
from crs.seqrec.train import TrainConfig, train
from tests.conftest import train_steps

NUM_ITEMS = 30
MODELS = {
    "sasrec": {"hidden": 16, "blocks": 1, "heads": 2, "dropout": 0.1, "max_len": 10},
    "gru4rec": {"embedding": 16, "hidden": 24, "dropout": 0.1, "max_len": 10},
    "lstm": {"embedding": 16, "hidden": 24, "dropout": 0.1, "max_len": 10},
}


def synthetic(num_users: int = 50, length: int = 8) -> SeqDataset:
    """User u walks i -> i + 1 (mod 30) from item u % 30 + 1; a few short users are not evaluated."""
    seqs = [np.array([(u + t) % NUM_ITEMS + 1 for t in range(length)], dtype=np.int64) for u in range(num_users)]
    seqs[0] = seqs[0][:2]  # too short to evaluate
    return SeqDataset(
        "synthetic", seqs, [PAD] + [f"i{i}" for i in range(1, NUM_ITEMS + 1)], [f"u{u}" for u in range(num_users)]
    )


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    """Seeded, single-threaded: tiny models on a busy 2-core machine are much slower with 2 threads."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- data ---
def test_leave_one_out_split() -> None:
    ds = synthetic()
    assert ds.num_items == NUM_ITEMS and ds.num_users == 50
    seq = ds.sequences[3]  # 4, 5, ..., 11
    assert list(ds.train(3)) == list(seq[:-2]) and ds.valid(3) == seq[-2] and ds.test(3) == seq[-1]
    assert list(ds.history(3, "valid")) == list(seq[:-2]) and list(ds.history(3, "test")) == list(seq[:-1])
    assert ds.target(3, "test") == 11 and ds.target(3, "valid") == 10
    assert list(ds.train(0)) == [1, 2] and ds.valid(0) == 0 and ds.test(0) == 0
    assert 0 not in ds.eval_users() and len(ds.eval_users()) == 49
    assert ds.encode_items(["i3", "i30"]) == [3, 30] and ds.decode_items([3, 30]) == ["i3", "i30"]
    with pytest.raises(KeyError, match="nope"):
        ds.encode_items(["nope"])


def test_whole_trains_on_every_item_and_validates_nothing() -> None:
    ds = synthetic()
    whole = ds.whole()
    assert list(whole.train(3)) == list(ds.sequences[3]) and whole.valid(3) == 0 and whole.test(3) == 0
    assert len(whole.eval_users()) == 0 and ds.holdout and len(ds.eval_users()) == 49  # the original is unchanged
    model = build_model("sasrec", NUM_ITEMS, **MODELS["sasrec"])
    res = train(model, whole, TrainConfig(epochs=3, batch_size=16, lr=0.01, progress=False))
    assert res.epochs_run == 3 and res.best_epoch == 3 and math.isnan(res.best_valid_ndcg)  # all epochs, last kept


def test_pad_left_and_trim() -> None:
    seqs = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    assert pad_left(seqs, 4).tolist() == [[0, 1, 2, 3], [0, 0, 0, 4], [0, 0, 0, 0]]
    assert pad_left(seqs, 2).tolist() == [[2, 3], [0, 4], [0, 0]]
    assert pad_left(seqs, 10, trim=True).shape == (3, 3)


def test_negative_sampler_rejects_seen_items() -> None:
    rows = [np.array([1, 2, 3]), np.arange(1, 10)]
    sampler = NegativeSampler(rows, 10)
    out = sampler.sample(np.random.default_rng(0), np.array([0, 1, 1]), 50)
    assert out.shape == (3, 50)
    assert not np.isin(out[0], rows[0]).any() and (out[1:] == 10).all()
    again = sampler.sample(np.random.default_rng(0), np.array([0, 1, 1]), 50)
    assert (out == again).all()
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler([np.arange(1, 11)], 10).sample(np.random.default_rng(0), np.array([0]), 1)


def test_load_sasrec_txt(tmp_path: Path) -> None:
    path = tmp_path / "Toy.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("1 5\n1 3\n2 3\n\n1 10\n2 7\n2 5\n")
    ds = load_sasrec_txt(path)
    assert ds.name == "Toy" and ds.users == ["1", "2"]
    assert ds.item_ids == [PAD, "3", "5", "7", "10"]  # numeric order
    assert ds.decode_items(ds.sequences[0]) == ["5", "3", "10"]  # file order kept
    assert ds.decode_items(ds.sequences[1]) == ["3", "7", "5"]
    assert load_dataset(path).num_interactions == 6
    (tmp_path / "README.txt").write_text("about\n")
    assert load_dataset(tmp_path).name == tmp_path.name  # the folder's one .txt besides the README
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n1 2 3\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: expected 'user item'"):
        load_sasrec_txt(bad)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_sasrec_txt(tmp_path / "missing.txt")


def test_load_movielens_orders_by_timestamp(tmp_path: Path) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "README.txt").write_text("not interactions\n")
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,10,4.0,300\n1,20,2.0,100\n1,30,5.0,200\n2,20,3.5,50\n2,10,1.0,50\n"
    )
    ds = load_dataset(folder)
    assert ds.name == "ml" and ds.extra["format"] == "movielens"
    assert ds.decode_items(ds.sequences[0]) == ["20", "30", "10"]
    assert ds.decode_items(ds.sequences[1]) == ["20", "10"]  # tie: file order
    assert load_movielens(folder / "ratings.csv", min_rating=3.0).num_interactions == 3
    bad = tmp_path / "ratings.csv"
    bad.write_text("userId,movieId,rating,timestamp\n1,10,4.0,300\n1,20,x,100\n")
    with pytest.raises(DataFormatError, match=r"ratings\.csv:3"):
        load_movielens(bad)
    (tmp_path / "h.csv").write_text("user,item\n1,2\n")
    with pytest.raises(DataFormatError, match=r"h\.csv:1: expected a header"):
        load_movielens(tmp_path / "h.csv")


def test_load_recbole_inter(tmp_path: Path) -> None:
    path = tmp_path / "toy.inter"
    path.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\na\tx\t5\t3\na\ty\t4\t1\nb\tz\t3\t2\na\tz\t1\t2\n"
    )
    ds = load_dataset(path)
    assert ds.users == ["a", "b"] and ds.item_ids == [PAD, "x", "y", "z"]
    assert ds.decode_items(ds.sequences[0]) == ["y", "z", "x"]
    bad = tmp_path / "bad.inter"
    bad.write_text("user_id:token\titem_id:token\na\tx\nb\n")
    with pytest.raises(DataFormatError, match=r"bad\.inter:3: 1 fields, expected 2"):
        load_recbole_inter(bad)
    untyped = tmp_path / "untyped.inter"
    untyped.write_text("user_id\titem_id\na\tx\n")
    with pytest.raises(DataFormatError, match=r"untyped\.inter:1: header field 'user_id'"):
        load_recbole_inter(untyped)
    with pytest.raises(DataFormatError, match="no 'item_id' field"):
        (tmp_path / "noitem.inter").write_text("user_id:token\tthing:token\na\tx\n")
        load_recbole_inter(tmp_path / "noitem.inter")


# --- metrics and protocols ---
def test_hit_ndcg_hand_computed() -> None:
    hr, ndcg = hit_ndcg(np.array([0, 1, 9, 10, 50]), 10)
    assert hr == pytest.approx(3 / 5)
    assert ndcg == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(11)) / 5)
    assert hit_ndcg(np.array([0]), 1) == (1.0, 1.0)


def test_rank_of_target_ties_count_against_target() -> None:
    scores = torch.tensor([[0.5, 0.1, 0.9, 0.5], [1.0, 0.0, 0.0, float("-inf")]])
    assert rank_of_target(scores, 0).tolist() == [2, 0]
    assert rank_of_target(scores, torch.tensor([2, 1])).tolist() == [0, 2]


class NextItemOracle(torch.nn.Module):
    """Scores item last + 1 highest, then the history items, then the rest."""

    def __init__(self, config: object) -> None:
        super().__init__()
        self.config = config

    def score_all(self, seq: torch.Tensor) -> torch.Tensor:
        scores = torch.zeros(seq.shape[0], NUM_ITEMS + 1)
        scores.scatter_(1, seq, 5.0)  # history items would outrank the target if not masked
        scores.scatter_(1, (seq[:, -1:] % NUM_ITEMS) + 1, 1.0)
        return scores

    def score(self, seq: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return self.score_all(seq).gather(1, candidates)


def test_protocols_with_an_oracle() -> None:
    ds = synthetic()
    oracle = NextItemOracle(build_model("sasrec", NUM_ITEMS, max_len=10).config)
    full = evaluate(oracle, ds, "test", "full", ks=(1, 10), progress=False)
    assert full.users == 49 and full["hr@1"] == 1.0 and full["ndcg@10"] == 1.0  # history masked
    sampled = evaluate(oracle, ds, "valid", "sampled100", progress=False)
    assert sampled["hr@10"] == 1.0  # negatives never include the user's items
    negs = sample_eval_negatives(ds, ds.eval_users(), 100, seed=1)
    assert negs.shape == (49, 100)
    for row, u in zip(negs, ds.eval_users(), strict=True):
        assert not np.isin(row, ds.sequences[u]).any()
    assert (negs == sample_eval_negatives(ds, ds.eval_users(), 100, seed=1)).all()


# --- models ---
@pytest.mark.parametrize("name", list(MODELS))
def test_model_loss_falls_and_shapes(name: str) -> None:
    ds = synthetic()
    model = build_model(name, NUM_ITEMS, **MODELS[name])
    seq = torch.from_numpy(pad_left([ds.train(u) for u in range(1, 33)], 11))  # (32, 11)
    inp, pos = seq[:, :-1], seq[:, 1:]
    neg = torch.randint(1, NUM_ITEMS + 1, pos.shape) * (pos != 0)
    losses = train_steps(model, inp, pos, neg, 30)
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    cand = torch.randint(1, NUM_ITEMS + 1, (32, 7))
    assert model.score(inp, cand).shape == (32, 7)
    assert model.score_all(inp).shape == (32, NUM_ITEMS + 1)
    # leading all-padding columns change nothing (padding never enters the state)
    padded = torch.cat([torch.zeros(32, 3, dtype=torch.long), inp[:, :7]], 1)
    assert torch.allclose(model.score(padded, cand), model.score(padded[:, 3:], cand), atol=1e-5)


@pytest.mark.parametrize("loss", ["ce", "sce", "bpr-max", "bce"])
def test_every_loss_trains(loss: str) -> None:
    model = build_model("gru4rec", NUM_ITEMS, **{**MODELS["gru4rec"], "loss": loss})
    seq = torch.from_numpy(pad_left([synthetic().train(u) for u in range(1, 33)], 6))
    neg = torch.randint(1, NUM_ITEMS + 1, seq[:, 1:].shape)
    first = model(seq[:, :-1], seq[:, 1:], neg)
    assert torch.isfinite(first)
    first.backward()


def test_lstm_encode_is_the_intent() -> None:
    model = build_model("lstm", NUM_ITEMS, **MODELS["lstm"]).eval()
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    h = model.encode(seq)
    assert h.shape == (2, 24)
    assert torch.allclose(model.encode(seq[:1, 2:]), h[:1], atol=1e-6)


def test_train_learns_the_pattern_and_checkpoint_round_trips(tmp_path: Path) -> None:
    ds = synthetic()
    model = build_model("sasrec", NUM_ITEMS, **MODELS["sasrec"])
    cfg = TrainConfig(epochs=30, batch_size=16, lr=0.01, eval_every=5, patience=3, num_threads=1, progress=False)
    res = train(model, ds, cfg)
    assert res.best_valid_ndcg > 0.8 and res.history and res.history[0].seconds > 0
    assert evaluate(model, ds, "test", "full", progress=False)["hr@10"] > 0.8
    path = tmp_path / "m.pt"
    model.save(path, ds.item_ids)
    loaded = load(path)
    assert loaded.item_ids == ds.item_ids and type(loaded.model) is type(model)
    seq = torch.from_numpy(pad_left([ds.history(u, "test") for u in range(5)], 10))
    cand = torch.arange(1, NUM_ITEMS + 1).repeat(5, 1)
    model.eval()
    assert torch.equal(model.score(seq, cand), loaded.model.score(seq, cand))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("bert4rec", NUM_ITEMS)

"""crs.rank.scorer: mapping a sequential model's items to the catalog, fusing its scores into the ranking,
and the agent using a checkpoint trained here on synthetic sequences over demo-catalog items."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crs.catalog import Catalog, Item
from crs.llm.scripted import ScriptedChatModel
from crs.rank.candidates import Candidate, score
from crs.rank.scorer import ScorerError, SeqScorer, match_items, title_keys
from crs.seqrec.data import PAD, SeqDataset
from crs.state import BeliefState, Preference, Session, ToolEvent
from tests.conftest import test_config


def test_title_keys_handle_movielens_names() -> None:
    assert ("matrix", 1999) in title_keys("Matrix, The (1999)")
    assert title_keys("The Matrix", 1999)[0] == ("matrix", 1999)
    keys = title_keys("City of Lost Children, The (Cité des enfants perdus, La) (1995)")
    assert ("city of lost children", 1995) in keys
    assert title_keys("Alien (1979)") == [("alien", 1979)]
    assert title_keys("") == []


def test_match_items_by_id_then_title_and_year() -> None:
    catalog = Catalog([
        Item("alien-1979", "Alien", 1979), Item("the-matrix-1999", "The Matrix", 1999),
        Item("heat-1995", "Heat", 1995), Item("heat-1972", "Heat", 1972),
    ])  # fmt: skip
    ids = [PAD, "alien-1979", "2571", "6", "99", "7"]
    titles = ["", "Alien (1979)", "Matrix, The (1999)", "Heat (1995)", "Unknown Film (2001)", "Heat (1995)"]
    mapping, report = match_items(ids, titles, catalog)
    assert mapping == {"alien-1979": 1, "the-matrix-1999": 2, "heat-1995": 3}  # the 1972 Heat is another film
    assert (report.total, report.by_id, report.by_title, report.matched) == (5, 1, 2, 3)
    assert report.rate == pytest.approx(0.6) and "3 of 5" in str(report)
    assert match_items(ids, None, catalog)[1].matched == 1  # no titles: ids only


def test_match_items_takes_a_year_one_off_only_after_every_exact_match() -> None:
    catalog = Catalog([Item("heat-1995", "Heat", 1995), Item("alien-1979", "Alien", 1979)])
    ids = [PAD, "1", "2", "3"]
    titles = ["", "Heat (1996)", "Heat (1995)", "Alien (1981)"]  # 1 is one off; 2 is exact; 3 is two off
    mapping, report = match_items(ids, titles, catalog)
    assert mapping == {"heat-1995": 2}  # the exact match wins although the near one comes first
    assert (report.by_title, report.by_near_year) == (1, 0)
    mapping, report = match_items([PAD, "1"], ["", "Heat (1996)"], catalog)
    assert mapping == {"heat-1995": 1} and report.by_near_year == 1 and "a year one off" in str(report)


def test_score_fuses_sequential_scores_and_never_returns_rejected_items() -> None:
    belief = BeliefState(preferences=(Preference("item", "hated", -1),))
    cands = [Candidate(Item(i, i.title(), 2000), s, s) for i, s in [("a", 0.60), ("b", 0.55), ("hated", 0.50)]]
    assert [c.item.id for c in score(cands, belief)] == ["a", "b"]
    fused = score(cands, belief, seq_scores={"b": 2.0, "hated": 100.0})
    assert [c.item.id for c in fused] == ["b", "a"]  # the model's pick moves up; the rejected one stays out
    assert fused[0].score == pytest.approx(0.55 + 0.2 + 0.01 * np.log1p(0.0))


def test_load_errors_are_clear(tmp_path: Path) -> None:
    catalog = Catalog([Item("alien-1979", "Alien", 1979)])
    with pytest.raises(ScorerError, match="not found"):
        SeqScorer.load(tmp_path / "missing.pt", catalog)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ScorerError, match="junk.pt"):
        SeqScorer.load(tmp_path / "junk.pt", catalog)


# --- the agent with a trained checkpoint ---
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, embedder):  # noqa: ANN001, ANN201
    from crs.rank.store import ItemStore

    cfg = test_config(tmp_path_factory.mktemp("scorer"))
    s = ItemStore(cfg, embedder=embedder)
    s.index(small_catalog.items, progress=False)
    return s


def _train_checkpoint(small_catalog: Catalog, retrieved: list[str], target: str, path: Path) -> None:
    """GRU4Rec over the retrieved and other small-catalog items, where whoever watches Alien watches
    ``target`` next. Half the model's items carry MovieLens-style numeric ids and are matched by title."""
    from crs.seqrec.checkpoint import build_model, save
    from crs.seqrec.train import TrainConfig, train

    ids = list(dict.fromkeys([*retrieved, *(it.id for it in small_catalog)]))
    items = [small_catalog[i] for i in ids if i != "alien-1979"][:150] + [small_catalog["alien-1979"]]
    ids = [PAD] + [it.id if n % 2 else str(1000 + n) for n, it in enumerate(items)]
    titles = [""] + [f"{it.title} ({it.year})" for it in items]
    index = {it.id: n + 1 for n, it in enumerate(items)}
    rng = np.random.default_rng(0)
    seqs = []
    for _u in range(300):
        noise = rng.choice([index[it.id] for it in items[:-1] if it.id != target], 4, replace=False)
        seqs.append(np.array([*noise, index["alien-1979"], index[target], *rng.choice(noise, 2)], dtype=np.int64))
    ds = SeqDataset("synthetic", seqs, ids, [f"u{u}" for u in range(300)])
    model = build_model("gru4rec", ds.num_items, embedding=32, hidden=32, dropout=0.0, max_len=10, loss="ce")
    train(model, ds, TrainConfig(epochs=15, batch_size=32, lr=0.01, eval_every=5, num_threads=1, progress=False))
    save(model, path, ds.item_ids, titles)


def test_sequential_score_changes_the_agents_ranking(
    store,  # noqa: ANN001
    small_catalog: Catalog,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    from crs.agent import Agent

    torch.manual_seed(0)
    llm = ScriptedChatModel(default="Here are some picks.")
    cfg = test_config(tmp_path, scoring={"sequential": 0.5})

    def run(agent: Agent) -> tuple[list[str], list[str], str]:
        events = list(agent.step(Session(), "I loved Alien"))
        tools = {e.call.name: e for e in events if isinstance(e, ToolEvent)}
        retrieved = [c.item.id for c in tools["retrieve"].result.output]
        return [i.id for i in events[-1].items], retrieved, tools["sequential"].result.summary

    plain_top, retrieved, summary = run(Agent(cfg, catalog, store, llm))
    assert "no sequential model: retrieval + popularity" in summary
    target = retrieved[-1]  # a candidate the plain ranking leaves out of the top
    assert target not in plain_top
    path = tmp_path / "model.pt"
    _train_checkpoint(small_catalog, retrieved, target, path)
    scorer = SeqScorer.load(path, catalog)
    assert scorer.match.by_id >= 70 and scorer.match.by_title >= 70 and scorer.match.rate > 0.9
    assert scorer.sequence(["alien-1979", "not-in-the-model"]) == [scorer.to_index["alien-1979"]]
    z = scorer.scores(["alien-1979"], retrieved)
    assert max(z, key=z.get) == target and abs(np.mean(list(z.values()))) < 1e-5

    seq_top, _, summary = run(Agent(cfg, catalog, store, llm, scorer=scorer))
    assert "sequential model GRU4Rec (model.pt) on 1 liked item(s)" in summary
    assert seq_top[0] == target and seq_top != plain_top
    assert scorer.scores(["never-heard-of-it"], retrieved) == {}  # no known liked item: no signal


# --- crs train seqrec / crs eval seqrec ---
def _movielens_folder(root: Path) -> Path:
    """A tiny MovieLens folder: user u rates movies u+1, u+2, ... in time order (a clear next-item pattern)."""
    folder = root / "ml"
    folder.mkdir()
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(60):
        lines += [f"{u},{(u + t) % 20 + 1},4.0,{1000 + t}" for t in range(8)]
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"] + [f"{i},Film {i} ({1980 + i}),Drama|Comedy" for i in range(1, 21)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder


def test_cli_trains_and_evaluates_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crs.app.cli import main
    from crs.seqrec.checkpoint import load

    data = _movielens_folder(tmp_path)
    out = tmp_path / "ck"
    args = ["train", "seqrec", "--model", "gru4rec", "--data", str(data), "--out", str(out), "--epochs", "10"]
    assert main(args) == 0
    assert (out / "model.pt").is_file() and (out / "train.json").is_file()
    history = json.loads((out / "train.json").read_text())["history"]["gru4rec"]
    assert [e["epoch"] for e in history][:2] == [1, 2] and all(e["loss"] > 0 for e in history)
    if importlib.util.find_spec("matplotlib"):  # the training curves beside it
        assert (out / "train.png").read_bytes()[:4] == b"\x89PNG"
    ck = load(out / "model.pt")
    assert ck.titles is not None and ck.titles[1] == "Film 1 (1981)"
    capsys.readouterr()
    assert main(["eval", "seqrec", "--checkpoint", str(out), "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert "sampled100: HR@10" in text and "full: HR@10" in text


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crs.app.cli import main

    bad = tmp_path / "ratings.csv"
    bad.write_text("userId,movieId,rating,timestamp\n1,2,x,3\n")
    assert main(["train", "seqrec", "--model", "sasrec", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crs: error:") and "ratings.csv:2" in err and "\n" not in err
    data = _movielens_folder(tmp_path)
    (data / "movies.csv").unlink()
    assert main(["train", "seqrec", "--model", "duip", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "needs item titles" in capsys.readouterr().err
    assert main(["eval", "seqrec", "--checkpoint", str(tmp_path / "nope"), "--data", str(data)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


# --- the shipped scorers (knowledge/scorer/, trained by scripts/train_demo_scorer.py) ---
def _after_heroes_and_romance(scorer: SeqScorer) -> None:
    candidates = ["guardians-of-the-galaxy-2014", "the-notebook-2004", "titanic-1997", "mean-girls-2004"]
    after_heroes = scorer.scores(["the-avengers-2012", "iron-man-2008"], candidates)
    after_romance = scorer.scores(["the-notebook-2004"], candidates)
    assert max(after_heroes, key=after_heroes.__getitem__) == "guardians-of-the-galaxy-2014"
    assert after_romance["titanic-1997"] > after_romance["guardians-of-the-galaxy-2014"]


def test_the_shipped_p2rec_scorer_is_the_default_and_scores_every_indexed_film() -> None:
    """The default is the P2Rec-enhanced SASRec over ReDial + MovieLens, keyed by demo-catalog ids: every
    indexed film is in its vocabulary (the ones no sequence holds as cold items), most from sequences."""
    import json

    from crs.catalog import load_catalog
    from crs.config import DEFAULT_SCORER, Config
    from crs.rank.store import index_subset

    cfg = Config()
    assert Path(cfg.scorer.checkpoint) == DEFAULT_SCORER and DEFAULT_SCORER.is_file()
    catalog = load_catalog(cfg.catalog.path)
    scorer = SeqScorer.load(DEFAULT_SCORER, catalog)
    indexed = index_subset(cfg, catalog)
    assert all(it.id in scorer.to_index for it in indexed)
    assert scorer.match.by_id > 0.99 * scorer.match.matched  # keyed by the catalog's own ids
    meta = json.loads(DEFAULT_SCORER.with_suffix(".json").read_text())
    assert meta["model"] == "p2rec" and meta["indexed_in_vocabulary"] == len(indexed)
    assert meta["indexed_with_sequences"] > 0.4 * len(indexed)  # the old ReDial-only scorer: 21.9%
    assert DEFAULT_SCORER.stat().st_size < 8e6  # the LLM's vectors are folded into the item table
    _after_heroes_and_romance(scorer)


def test_the_redial_only_scorer_is_one_setting_away() -> None:
    from crs.catalog import load_catalog
    from crs.config import REDIAL_SCORER, Config

    scorer = SeqScorer.load(REDIAL_SCORER, load_catalog(Config().catalog.path))
    assert scorer.match.rate > 0.6, scorer.match  # ReDial titles found in the demo catalog by title and year
    _after_heroes_and_romance(scorer)


def test_a_shipped_scorer_that_fits_no_item_is_skipped_but_a_chosen_bad_one_is_an_error(tmp_path: Path) -> None:
    from dataclasses import replace

    from crs.config import ConfigError
    from crs.resources import load_scorer

    cfg = test_config(tmp_path)
    small = Catalog([Item(id="x-2000", title="Nothing In ReDial Like This", year=2000, genres=("Drama",))])
    assert load_scorer(cfg, small) is None  # the default, matching none of these items: a warning
    assert load_scorer(replace(cfg, scorer=replace(cfg.scorer, checkpoint="")), small) is None
    with pytest.raises(ConfigError, match="scorer"):
        load_scorer(replace(cfg, scorer=replace(cfg.scorer, checkpoint=str(tmp_path / "nope.pt"))), small)

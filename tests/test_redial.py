"""`crs eval redial` on a real slice of ReDial: the first 30 turns of the iEvaLM validation file,
a catalog of the movies they and 100 training dialogues mention, the real embedder, real Chroma
and a SASRec trained for 2 epochs."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from crs.app.cli import main
from crs.eval.redial.data import (
    RedialDataError,
    RedialFiles,
    load_redial_catalog,
    processed_turns,
    read_turns,
    seeker_history,
)
from crs.eval.redial.features import TurnFeatures
from crs.eval.redial.model import DEFAULT_WEIGHTS, FEATURES, Components, SeqTrainConfig, train_components
from crs.eval.redial.ranking import Recall, fuse
from crs.eval.redial.run import FULL_ROW

FILES = RedialFiles.from_config()
pytestmark = pytest.mark.skipif(not FILES.turns.exists(), reason="ReDial data not present")
N_TURNS = 30


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """turns.jsonl (30 processed turns), train.jsonl (80 KGSF + 20 iEvaLM raw dialogues: the
    iEvaLM ones are in the turn file's dialogues), movies.csv (what they mention)."""
    root = tmp_path_factory.mktemp("redial")
    turn_lines = _lines(FILES.turns)[:N_TURNS]
    (root / "turns.jsonl").write_text("".join(turn_lines), encoding="utf-8")
    train = _lines(FILES.train[0])[:80] + _lines(FILES.train[1])[:20]
    (root / "train.jsonl").write_text("".join(train), encoding="utf-8")
    names = set()
    for line in turn_lines:
        rec = json.loads(line)
        names.update(re.sub(r"\s+", " ", n).strip() for n in rec["entity"] + rec["rec"])
    ids = {i for line in train for i in re.findall(r"@(\d+)", line)}
    with open(FILES.movies, encoding="utf-8") as fh, open(root / "movies.csv", "w", encoding="utf-8") as out:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(out, reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            if row["movieId"] in ids or re.sub(r"\s+", " ", row["movieName"]).strip() in names:
                writer.writerow(row)
    return root


def _run(d: Path, turns: str, model_dir: Path, *extra: str) -> int:
    return main(
        ["eval", "redial", "--turns", str(d / turns), "--out", str(d / "out.json"), "--movies", str(d / "movies.csv"),
         "--model-dir", str(model_dir), "--train", str(d / "train.jsonl"), "--movielens", "", "--epochs", "2", *extra]
    )  # fmt: skip


def test_eval_redial_end_to_end(slice_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = slice_dir / "model"
    assert _run(slice_dir, "turns.jsonl", model_dir) == 0
    report = json.loads((slice_dir / "out.json").read_text())
    for key in ("recall@1", "recall@10", "recall@50"):
        assert 0.0 <= report[key] <= 1.0
        assert 0.0 <= report["no_repeat"][key] <= 1.0
        assert report["recall@1"] <= report["recall@10"] <= report["recall@50"]
    assert report["turns"] == N_TURNS
    assert report["samples"] == 38  # gold movies of the 30 turns (all in the sliced catalog)
    # 4 gold movies of the slice were already named in their context: no_repeat leaves them out.
    assert report["no_repeat"]["samples"] <= 38 - 4
    assert report["understanding"]["linked_movie_mentions"] > 0
    assert {
        "retrieval only",
        "+ sequential scorer (SASRec, co-occurrence, MovieLens item-item, popularity, genres)",
        "+ belief-state dispreference filtering",
    } <= set(report["ablation"])
    assert report["recall@10"] == report["ablation"][FULL_ROW]["recall@10"]
    assert "| retrieval only |" in capsys.readouterr().out
    # Recall@k for every k up to 50, and the chart of it beside the report (with matplotlib installed).
    curve = report["curve"]
    assert len(curve) == 50 and curve == sorted(curve) and curve[9] == report["recall@10"]
    assert report["no_repeat"]["curve"][49] == report["no_repeat"]["recall@50"]
    png = slice_dir / "out.png"
    if __import__("importlib").util.find_spec("matplotlib"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --ks reports other cutoffs, from the same run (the trained components are reused).
    assert _run(slice_dir, "turns.jsonl", model_dir, "--ks", "5,20") == 0
    again = json.loads((slice_dir / "out.json").read_text())
    assert again["recall@5"] == curve[4] and again["recall@20"] == curve[19] and "recall@10" not in again
    with pytest.raises(SystemExit):
        _run(slice_dir, "turns.jsonl", model_dir, "--ks", "0,60")

    # Training left out every dialogue of the turn file, and only those.
    file_ids = {json.loads(line)["dialog_id"] for line in (slice_dir / "turns.jsonl").read_text().splitlines()}
    train_ids = {json.loads(line)["conversationId"] for line in (slice_dir / "train.jsonl").read_text().splitlines()}
    meta = json.loads((model_dir / "meta.json").read_text())
    trained = set(meta["train_dialogue_ids"])
    assert train_ids & file_ids, "the slice must hold training dialogues that are also evaluated"
    assert not trained & file_ids
    assert trained == train_ids - file_ids
    assert report["trained_on"]["dialogues"] == len(train_ids - file_ids)

    # A second run reuses the trained components and gives the same figures.
    stamp = (model_dir / "meta.json").stat().st_mtime_ns
    assert _run(slice_dir, "turns.jsonl", model_dir) == 0
    again = json.loads((slice_dir / "out.json").read_text())
    assert (model_dir / "meta.json").stat().st_mtime_ns == stamp
    assert again["recall@50"] == report["recall@50"] and again["no_repeat"] == report["no_repeat"]

    # The raw ReDial format: turns are the recommender's utterances that name a movie.
    raw = (slice_dir / "train.jsonl").read_text().splitlines()[-20:]  # the iEvaLM dialogues
    (slice_dir / "raw.jsonl").write_text("\n".join(raw) + "\n", encoding="utf-8")
    assert _run(slice_dir, "raw.jsonl", slice_dir / "model_raw", "--turn-format", "raw") == 0
    raw_report = json.loads((slice_dir / "out.json").read_text())
    assert raw_report["turns"] > 0 and raw_report["understanding"]["given_movie_mentions"] > 0
    raw_ids = {json.loads(line)["conversationId"] for line in raw}
    assert not raw_ids & set(json.loads((slice_dir / "model_raw" / "meta.json").read_text())["train_dialogue_ids"])

    # Evaluating the training dialogues themselves with those components is refused (leakage).
    assert _run(slice_dir, "train.jsonl", model_dir, "--limit", "5") == 2
    assert "trained on" in capsys.readouterr().err


def test_cross_fit_never_ranks_a_dialogue_with_a_model_trained_on_it(slice_dir: Path) -> None:
    model_dir = slice_dir / "model_cf"
    assert _run(slice_dir, "turns.jsonl", model_dir, "--cross-fit", "3") == 0
    report = json.loads((slice_dir / "out.json").read_text())
    assert report["turns"] == N_TURNS and report["samples"] == 38
    turns = [json.loads(line) for line in (slice_dir / "turns.jsonl").read_text().splitlines()]
    file_ids = {t["dialog_id"] for t in turns}
    train_ids = {json.loads(line)["conversationId"] for line in (slice_dir / "train.jsonl").read_text().splitlines()}
    folds = [model_dir / f"crossfit-nested-3-{k}" for k in range(3)]
    trained = [set(json.loads((f / "meta.json").read_text())["train_dialogue_ids"]) for f in folds]
    left_out = [train_ids - t for t in trained]
    # the folds partition the evaluated dialogues that training could have seen, and only those are left out
    assert set().union(*left_out) == train_ids & file_ids
    assert all(a.isdisjoint(b) for i, a in enumerate(left_out) for b in left_out[i + 1 :])
    # a fold's model learns from the other folds' evaluated dialogues: more data than the strict run
    assert all(t == train_ids - out for t, out in zip(trained, left_out, strict=True))
    assert any(t & file_ids for t in trained)
    assert report["trained_on"]["cross_fit"]["folds"] == 3
    assert _run(slice_dir, "turns.jsonl", model_dir, "--cross-fit", "0") == 2


def test_no_repeat_drops_repeated_gold_and_ranks_without_mentioned() -> None:
    n = 6
    values = np.zeros((len(FEATURES), n), dtype=np.float32)
    values[FEATURES.index("retrieval")] = [0.9, 0.8, 0.7, 0.1, 0.0, 0.5]
    f = TurnFeatures(values, mentioned=[0], disliked=[5], disliked_genre=np.zeros(n, np.float32), gold=[0, 2])
    rec = Recall()
    rec.add(f, {"retrieval": 1.0})
    d = rec.as_dict()
    assert d["samples"] == 2 and d["no_repeat"]["samples"] == 1  # gold 0 was mentioned before
    assert d["recall@1"] == 0.5  # item 0 stays rankable in the all-mentions protocol
    assert d["no_repeat"]["recall@1"] == 0.0 and d["no_repeat"]["recall@10"] == 1.0  # 1 outranks 2
    score = fuse(f, DEFAULT_WEIGHTS | {"sequential": 0.0}, no_repeat=True)
    assert np.isneginf(score[0]) and np.isneginf(score[5])  # mentioned and disliked never come back


def test_bad_turn_files(tmp_path: Path) -> None:
    catalog = load_redial_catalog(FILES.movies, None)
    with pytest.raises(RedialDataError, match="not found"):
        read_turns(tmp_path / "missing.jsonl", catalog)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dialog_id": "1", "context": ["hi"], "rec": ["Alien (1979)"]}\n{oops\n', encoding="utf-8")
    with pytest.raises(RedialDataError, match=r"bad.jsonl:2: not valid JSON"):
        processed_turns(bad, catalog)
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": 1}\n', encoding="utf-8")
    with pytest.raises(RedialDataError, match="neither"):
        read_turns(other, catalog)
    assert main(["eval", "redial", "--turns", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o.json")]) == 2
    assert main(["eval", "redial", "--turns", str(bad), "--out", str(tmp_path / "o.json"), "--limit", "0"]) == 2
    assert not (tmp_path / "o.json").exists()


def test_profile_uses_only_the_seekers_earlier_training_dialogues(tmp_path: Path) -> None:
    catalog = load_redial_catalog(FILES.movies, None)
    all_ids = [it.id for it in catalog]
    a, b, c, d = all_ids[:4]

    def dialogue(conv: str, seeker: int, answers: dict) -> dict:
        return {"conversationId": conv, "initiatorWorkerId": seeker, "initiatorQuestions": answers, "messages": []}

    history = seeker_history(
        [
            dialogue("30", 7, {c: {"liked": 1}}),
            dialogue("10", 7, {a: {"liked": 1}, b: {"liked": 0}, "not-a-movie": {"liked": 1}}),
            dialogue("20", 8, {d: {"liked": 1}}),
        ],
        catalog,
    )
    assert history["7"] == [("10", [a]), ("30", [c])]  # dialogue order; disliked and unknown movies dropped
    comps = train_components(all_ids, [], config=SeqTrainConfig(epochs=0), progress=False, seeker_history=history)
    ix = {i: k for k, i in enumerate(all_ids)}
    assert comps.profile("7", "25") == [ix[a]]  # only dialogues before the evaluated one
    assert comps.profile("7", "40") == [ix[a], ix[c]]
    assert comps.profile("8", "20") == [] and comps.profile("9", "99") == [] and comps.profile("", "99") == []
    comps.save(tmp_path / "m")
    assert Components.load(tmp_path / "m").profiles == comps.profiles


def test_chat_scorer_rows_rank_with_the_scorer_the_chat_would_load(slice_dir: Path) -> None:
    """``--scorer``: a chat scorer checkpoint (trained here on the slice's non-evaluated dialogues'
    liked films) gets its own rows, fed the seeker's liked movies as the chat feeds it."""
    from crs.eval.redial.data import file_dialogue_ids, load_dialogues
    from crs.eval.redial.run import ChatScorer
    from crs.rank.scorer import SeqScorer
    from crs.seqrec.checkpoint import save
    from crs.seqrec.fit import fit_model
    from crs.seqrec.sources import redial_liked
    from crs.seqrec.train import TrainConfig

    catalog = load_redial_catalog(slice_dir / "movies.csv", None)
    evaluated = file_dialogue_ids(slice_dir / "turns.jsonl")
    train = [d for d in load_dialogues([slice_dir / "train.jsonl"]) if str(d["conversationId"]) not in evaluated]
    ds = redial_liked(train, catalog, catalog).dataset()
    fitted = fit_model("sasrec", ds, TrainConfig(epochs=2, progress=False), {"hidden": 16, "max_len": 10})
    path = slice_dir / "chat-scorer.pt"
    save(fitted.model, path, ds.item_ids, ["", *(catalog[i].label for i in ds.item_ids[1:])])

    scorer = ChatScorer(path, SeqScorer.load(path, catalog), [it.id for it in catalog])
    n = len(catalog)
    values = np.ones((len(FEATURES), n), dtype=np.float32)
    known = [k for k, it in enumerate(catalog) if it.id in scorer.scorer.to_index]
    f = TurnFeatures(values, [], [], np.zeros(n, np.float32), [0], liked=known[:2])
    g = scorer.features(f)
    seq = FEATURES.index("sequential")
    assert np.array_equal(np.delete(g.values, seq, 0), np.delete(values, seq, 0)) and f.values[seq].min() == 1.0
    unknown = [k for k in range(n) if k not in set(known)]
    assert (g.values[seq, unknown] == 0).all() and abs(float(g.values[seq, known].mean())) < 1e-4  # z-scores
    assert (scorer.features(TurnFeatures(values, [], [], np.zeros(n, np.float32), [0])).values[seq] == 0).all()
    named = ChatScorer(path, scorer.scorer, scorer.ids, reads="mentioned")  # every movie named, not the liked ones
    assert (named.features(f).values[seq] == 0).all()
    h = named.features(TurnFeatures(values, known[:2], [], np.zeros(n, np.float32), [0]))
    assert np.array_equal(h.values[seq], g.values[seq])

    assert (
        _run(slice_dir, "turns.jsonl", slice_dir / "model", "--scorer", str(path), "--scorer-weights", "0.1,0.5") == 0
    )
    report = json.loads((slice_dir / "out.json").read_text())
    rows = [r for r in report["ablation"] if "chat scorer chat-scorer" in r]
    assert len(rows) == 3 and any(r.startswith("(alone)") for r in rows)
    assert all(report["ablation"][r]["samples"] == 38 for r in rows)
    assert report["scorers"]["chat-scorer.pt"]["matched_catalog"] == ds.num_items

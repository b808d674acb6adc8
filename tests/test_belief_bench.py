"""The belief-extraction bench's scoring on dialogues written here in the raw ReDial format."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from crs.catalog import Catalog, Item
from crs.understand.linker import Linker

_spec = importlib.util.spec_from_file_location(
    "belief_extraction", Path(__file__).resolve().parents[1] / "bench" / "belief_extraction.py"
)
bench = importlib.util.module_from_spec(_spec)
sys.modules["belief_extraction"] = bench  # dataclasses look their module up
_spec.loader.exec_module(bench)

SEEKER, RECOMMENDER = 1, 2


def dialogue(cid: str, mentions: dict, questions: dict | list, messages: list[tuple[int, str]]) -> dict:
    return {
        "conversationId": cid,
        "initiatorWorkerId": SEEKER,
        "respondentWorkerId": RECOMMENDER,
        "movieMentions": mentions,
        "initiatorQuestions": questions,
        "respondentQuestions": {},
        "messages": [
            {"timeOffset": i, "text": text, "senderWorkerId": who, "messageId": i}
            for i, (who, text) in enumerate(messages)
        ],
    }


DIALOGUES = [
    dialogue(
        "1",
        {"101": "Alien (1979)", "102": "Titanic  (1997)", "103": "Heat (1995)"},
        {
            "101": {"suggested": 0, "seen": 1, "liked": 1},
            "102": {"suggested": 0, "seen": 1, "liked": 0},
            "103": {"suggested": 1, "seen": 0, "liked": 1},
        },
        [
            (SEEKER, "I loved @101"),
            (SEEKER, "I didn't like @102"),
            (RECOMMENDER, "Try @103, you will hate @102"),
            (SEEKER, "Have you seen @103?"),
        ],
    ),
    dialogue(
        "2",
        {"104": "Jaws (1975)", "105": "Seven (1995)"},
        {"104": {"suggested": 0, "seen": 1, "liked": 1}, "105": {"suggested": 0, "seen": 1, "liked": 2}},
        [(SEEKER, "@104 was boring"), (SEEKER, "I like @105 and Heat (1995) too")],
    ),
    dialogue("3", {}, [], [(SEEKER, "Hi"), (RECOMMENDER, "Hello")]),
]


@pytest.fixture(scope="module")
def small_linker() -> Linker:
    films = [("101", "Alien", 1979), ("102", "Titanic", 1997), ("103", "Heat", 1995), ("104", "Jaws", 1975)]
    films.append(("105", "Seven", 1995))
    return Linker(Catalog(Item(id=i, title=t, year=y) for i, t, y in films))


def test_messages_and_gold() -> None:
    assert bench.seeker_messages(DIALOGUES[0]) == [
        "I loved Alien (1979)",
        "I didn't like Titanic (1997)",
        "Have you seen Heat (1995)?",
    ]
    assert bench.gold_labels(DIALOGUES[0]) == {"101": 1, "102": -1, "103": 1}
    assert bench.gold_labels(DIALOGUES[1]) == {"104": 1}  # liked=2 is not scored
    assert bench.gold_labels(DIALOGUES[2]) == {}


def test_scores(small_linker: Linker) -> None:
    report = bench.score(DIALOGUES, small_linker)
    assert [(p.movie, p.gold, p.predicted) for p in report.pairs] == [
        ("Alien (1979)", 1, 1),
        ("Titanic (1997)", -1, -1),
        ("Heat (1995)", 1, 0),  # a question is no preference
        ("Jaws (1975)", 1, -1),
    ]
    liked, disliked = report.counts(1), report.counts(-1)
    assert (liked.tp, liked.fp, liked.fn) == (1, 0, 2)
    assert (liked.precision, liked.recall) == (1.0, pytest.approx(1 / 3))
    assert (disliked.tp, disliked.fp, disliked.fn) == (1, 1, 0)
    assert (disliked.precision, disliked.recall, disliked.f1) == (0.5, 1.0, pytest.approx(2 / 3))
    baseline = report.counts(1, baseline=True)
    assert (baseline.precision, baseline.recall) == (0.75, 1.0)
    assert report.counts(-1, baseline=True).recall == 0.0
    summary = report.summary()
    assert summary["pairs"] == 4 and summary["gold_disliked"] == 1 and summary["match_rate"] == 1.0
    assert summary["unscored_predictions"] == 1  # Seven, rated liked=2
    assert summary["unmentioned_predictions"] == 1  # Heat typed by hand in dialogue 2


def test_unmatched_movies_are_missed(small_linker: Linker) -> None:
    report = bench.score(DIALOGUES, small_linker, key_of=lambda name: None if name.startswith("Alien") else name)
    assert not report.pairs[0].matched and report.pairs[0].predicted == 0


def test_load_dialogues_dedupes(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for d in [*DIALOGUES, DIALOGUES[0]]:
            fh.write(json.dumps(d) + "\n")
    assert [d["conversationId"] for d in bench.load_dialogues([path, path])] == ["1", "2", "3"]

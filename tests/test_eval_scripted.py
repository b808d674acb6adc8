"""The scripted dialogue evaluation: the YAML format, the shipped dialogues, and the runner over
a real agent (real Chroma store and embedder, scripted LLM) and over a recording fake."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crs.agent import Agent
from crs.catalog import Catalog, Item
from crs.eval.scripted import DialogueError, load_dialogues, run_scripted
from crs.llm.scripted import ScriptedChatModel
from crs.state import BeliefState, FinalEvent, Preference, Session
from crs.understand.linker import Linker
from tests.conftest import test_config

SHIPPED = Path(__file__).resolve().parents[1] / "crs" / "eval" / "dialogues"
CATEGORIES = (
    "preferences",
    "dispreferences",
    "negation",
    "critiquing",
    "questions",
    "topic_shift",
    "already_seen",
    "elicitation",
)
TOP_LEVEL = {
    "expectations_total",
    "expectations_passed",
    "pass_rate",
    "violations",
    "said_violations",
    "invented_titles",
}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- the format ---------------------------------------------------------------------------


def test_unknown_expect_key_names_the_file_and_turn(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        "name: bad\ncategory: x\nturns:\n  - user: hi\n    expect: {act: ask}\n"
        "  - user: thrillers\n    expect: {act: recommend, liked_genre: [Thriller]}\n",
    )
    with pytest.raises(DialogueError, match=r"bad\.yaml: turn 2: unknown expect key 'liked_genre'"):
        load_dialogues(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nturns:\n  - expect: {act: ask}\n", r"turn 1: missing 'user'"),
        ("name: x\ncategory: y\n", r"missing 'turns'"),
        ("name: x\nturns: []\n", r"missing 'turns'"),
        ("turns:\n  - user: hi\n    expect: {min_items: three}\n", r"turn 1: expect\.min_items: expected a whole"),
        ("turns:\n  - user: hi\n    expect: {act: shout}\n", r"turn 1: expect\.act: expected one of"),
        ("turns:\n  - user: hi\n    expect: {no_repeats: false}\n", r"expected true"),
        ("turns:\n  - user: hi\n    expect: {never_items: [1995]}\n", r"expected a list of strings"),
        ("turns:\n  - user: hi\n    expect: {answer_about: [Heat (1995)]}\n", r"expected an item's label"),
        ("turns:\n  - user: hi\n    said: hello\n", r"turn 1: unknown key"),
        ("name: x\nturn:\n  - user: hi\n", r"unknown key\(s\) turn"),
        ("turns: [\n", r"not valid YAML"),
        ("turns:\n  - user: hi\n    expect:\n      act: ask\n      act: recommend\n", r"duplicate key 'act'"),
        ("- just a list\n", r"expected a mapping"),
    ],
)
def test_bad_dialogues_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(DialogueError, match=message) as err:
        load_dialogues(path)
    assert "broken.yaml" in str(err.value)


def test_folder_loading(tmp_path: Path) -> None:
    with pytest.raises(DialogueError, match="no such file"):
        load_dialogues(tmp_path / "missing")
    with pytest.raises(DialogueError, match="no \\*.yaml"):
        load_dialogues(tmp_path)
    write(tmp_path, "b.yaml", "category: c\nturns:\n  - user: hi\n")
    write(tmp_path, "a.yaml", "name: b\nturns:\n  - user: hello\n    expect: {liked_attributes: Comedy}\n")
    with pytest.raises(DialogueError, match="also used by"):
        load_dialogues(tmp_path)
    (tmp_path / "a.yaml").unlink()
    write(tmp_path, "a.yaml", "turns:\n  - user: hello\n    expect: {liked_attributes: Comedy}\n")
    dialogues = load_dialogues(tmp_path)
    assert [d.name for d in dialogues] == ["a", "b"]  # the file name when 'name' is left out
    assert dialogues[0].category == "uncategorized" and dialogues[1].category == "c"
    assert dialogues[0].turns[0].expect == {"liked_attributes": ["Comedy"]}  # a string becomes a list


def test_shipped_dialogues_load_and_name_real_items(catalog: Catalog) -> None:
    dialogues = load_dialogues(SHIPPED)
    assert len(dialogues) >= 40
    counts = Counter(d.category for d in dialogues)
    assert {c: counts[c] for c in CATEGORIES if counts[c] < 4} == {}
    # Labels must be spelled as the catalog spells them. Items a dialogue wants recommended
    # must be in the default index subset, since recommendations come only from there; the
    # ones it only reads the belief about (a phrase that is also a title: "anything else")
    # may be any catalog item.
    known, subset = catalog.by_label(), catalog.filter(1970, 380).by_label()
    missing = {(d.name, label) for d in dialogues for label in d.labels() if label not in known}
    assert missing == set()
    wanted = {(d.name, x) for d in dialogues for t in d.turns for x in t.expect.get("must_items_any", [])}
    assert {(name, x) for name, x in wanted if x not in subset and "{" not in x} == set()
    asks = [d for d in dialogues if d.category in ("elicitation", "opener")]
    assert all(d.turns[0].expect.get("act") == "ask" for d in asks)


# ---- the runner over a real agent -------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, embedder):  # noqa: ANN001, ANN201
    from crs.rank.store import ItemStore

    # The films the two dialogues below are about: about 130 of the small catalog, to embed fast.
    wanted = {"Thriller", "Horror", "Science Fiction", "Crime"}
    store = ItemStore(test_config(tmp_path_factory.mktemp("scripted")), embedder=embedder)
    store.index([it for it in small_catalog if wanted & set(it.genres)], progress=False)
    return store


NEGATION = """
name: thriller-no-horror
category: negation
turns:
  - user: "I want a thriller, but no horror please"
    expect:
      act: recommend
      liked_attributes: [Thriller]
      disliked_attributes: [Horror]
      never_attributes: [Horror]
  - user: "I already saw Se7en"
    expect:
      seen_items: ["Seven (1995)"]
      never_items: ["Seven (1995)"]
"""
ELICITATION = """
name: ask-then-alien
category: elicitation
turns:
  - user: "recommend me something"
    expect: {act: ask, max_items: 0}
  - user: "I loved Alien"
    expect:
      act: recommend
      liked_items: ["Alien (1979)"]
      never_items: ["Alien (1979)"]
      year_max: 1900   # deliberately impossible
"""


def test_runner_over_a_real_agent(store, catalog: Catalog, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "dialogues"
    write(folder, "negation.yaml", NEGATION)
    write(folder, "elicitation.yaml", ELICITATION)
    agent = Agent(test_config(tmp_path), catalog, store, ScriptedChatModel(default="Here are a few ideas."))
    report = run_scripted(agent, folder, tmp_path / "out", progress=False)

    assert (report.expectations_total, report.expectations_passed) == (12, 11)
    assert report.pass_rate == round(11 / 12, 4)
    assert report.violations == 0 and report.said_violations == 0 and report.invented_titles == 0
    assert report.by_category == {
        "elicitation": {"total": 6, "passed": 5, "pass_rate": round(5 / 6, 4)},
        "negation": {"total": 6, "passed": 6, "pass_rate": 1.0},
    }
    failed = [e for d in report.dialogues for t in d.turns for e in t.expectations if not e.passed]
    assert [e.key for e in failed] == ["year_max"]
    assert "after 1900" in failed[0].reason

    data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert TOP_LEVEL | {"by_category", "dialogues"} <= set(data)
    assert {k: data[k] for k in TOP_LEVEL} == {
        "expectations_total": 12,
        "expectations_passed": 11,
        "pass_rate": round(11 / 12, 4),
        "violations": 0,
        "said_violations": 0,
        "invented_titles": 0,
    }
    turn = data["dialogues"][0]["turns"][1]  # ask-then-alien, turn 2 (files load sorted)
    assert turn["user"] == "I loved Alien" and turn["act"] == "recommend" and turn["reply"]
    assert len(turn["items"]) >= 3 and all(label.endswith(")") for label in turn["items"])
    assert {e["key"]: e["passed"] for e in turn["expectations"]}["year_max"] is False
    assert all(e["reason"] for e in turn["expectations"])

    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| elicitation | 6 | 5 | 83.3% |" in md and "| negation | 6 | 6 | 100.0% |" in md
    assert "## Failed expectations (1)" in md and "`year_max`" in md and '"I loved Alien"' in md


# ---- the runner's bookkeeping, over a fake agent -----------------------------------------------


class FakeAgent:
    """Replays prepared final events and records the messages it was given."""

    def __init__(self, catalog: Catalog, finals: list[FinalEvent | Exception], linker: Linker | None = None) -> None:
        self.catalog = catalog
        self.linker = linker
        self.finals = finals
        self.heard: list[str] = []

    def step(self, session: Session, text: str) -> Iterator[FinalEvent]:
        self.heard.append(text)
        final = self.finals.pop(0)
        if isinstance(final, Exception):
            raise final
        session.belief = final.belief
        yield final


FAKE = """
name: fake
category: critiquing
turns:
  - user: "thrillers, no horror"
    expect: {never_attributes: [Horror], min_items: 2}
  - user: "I've seen {prev_first}, something newer"
    expect: {seen_items: ["{prev_first}"], newer_than_previous: true, no_repeats: true, never_items: ["{prev_first}"]}
  - user: "why {prev_second}?"
    expect: {act: explain}
"""


def test_runner_counts_violations_invented_titles_and_failures(
    catalog: Catalog, linker: Linker, tmp_path: Path
) -> None:
    alien, seven, matrix = catalog["alien-1979"], catalog["seven-1995"], catalog["the-matrix-1999"]
    invented = Item(id="crimson-nebula", title="The Crimson Nebula Protocol", year=1990)
    no_horror = BeliefState(preferences=(Preference("genre", "Horror", -1),))
    seen = BeliefState(preferences=no_horror.preferences, seen=(alien.id,))
    agent = FakeAgent(
        catalog,
        [
            FinalEvent(
                "The user wants thrillers. Seven (1995) is a comedy.", (alien, seven, invented), no_horror, "recommend"
            ),
            FinalEvent("The Matrix (1999) it is, because you asked for newer films.", (matrix,), seen, "recommend"),
            RuntimeError("model exploded"),
        ],
        linker,
    )
    path = write(tmp_path, "fake.yaml", FAKE)
    report = run_scripted(agent, path, tmp_path / "out", progress=False)  # type: ignore[arg-type]

    assert agent.heard == [
        "thrillers, no horror",
        "I've seen Alien, something newer",
        "why that one?",
    ]  # turn 2 showed one item
    assert report.violations == 1 and report.invented_titles == 1  # Alien has Horror; the nebula is made up
    assert report.said_violations == 1  # the script's never_attributes says the same here
    turns = report.dialogues[0].turns
    assert turns[0].violations == ["Alien (1979): rejected genre Horror"]
    assert turns[0].said_violations == ["Alien (1979): said no Horror"]
    assert [(e.key, e.passed) for e in turns[0].expectations] == [("never_attributes", False), ("min_items", True)]
    assert "Alien (1979) has Horror" in turns[0].expectations[0].reason
    assert all(e.passed for e in turns[1].expectations)  # 1999 is after 1995, the newest shown before
    assert turns[2].error == "RuntimeError: model exploded" and not turns[2].expectations[0].passed
    assert (report.expectations_total, report.expectations_passed) == (7, 5)
    assert turns[0].reply_problems == [
        "third person: The user wants thrillers.",
        "unsupported genre: Seven (1995) is a comedy.",
    ]
    assert (turns[0].top_pick_reason, turns[1].top_pick_reason) == (False, True)
    assert report.replies | {} == {
        "turns": 3,
        "third person": 1,
        "own viewing": 0,
        "repeated": 0,
        "ungrounded": 1,
        "ungrounded: unsupported genre": 1,
        "recommend": 2,
        "top_pick_reason": 1,
    }


REFERENCES = """
name: references
category: reference
turns:
  - user: "some sci fi pls"
    expect: {min_items: 5}
  - user: "whats the 4th one about"
    expect: {answer_about: "{prev_fourth}", reply_contains_any: ["{prev_fourth}"], never_items: ["{prev_fifth}"]}
  - user: "who's in {prev_last}?"
    expect: {answer_about: "{prev_last}", reply_contains_any: ["{prev_fifth}"]}
  - user: "and {prev_fifth}?"
    expect: {answer_about: "{prev_second}"}
  - user: "more"
    expect: {answer_about: "{prev_first}"}
  - user: "about the fifth one"
    expect: {answer_about: "{prev_fifth}", liked_items: ["{prev_fifth}"]}
"""


def test_later_placeholders_and_answer_about(catalog: Catalog, tmp_path: Path) -> None:
    five = [catalog[i] for i in ("alien-1979", "seven-1995", "the-matrix-1999", "heat-1995", "jaws-1975")]
    heat, jaws = five[3], five[4]
    empty = BeliefState()
    agent = FakeAgent(
        catalog,
        [
            FinalEvent("ok", tuple(five), empty, "recommend"),
            FinalEvent("HEAT is a crime film: a thief and a detective.", (), empty, "answer"),
            FinalEvent("Jaws stars Roy Scheider.", (), empty, "answer"),
            FinalEvent("Jaws again, not the second one.", (), empty, "answer"),
            FinalEvent("Jaws, Heat and more.", (five[0], five[1]), empty, "recommend"),  # names them, but recommends
            FinalEvent("It is about a shark.", (), empty, "explain"),
        ],
    )
    path = write(tmp_path, "references.yaml", REFERENCES)
    report = run_scripted(agent, path, tmp_path / "out", progress=False)  # type: ignore[arg-type]

    assert agent.heard[2:4] == ["who's in Jaws?", "and Jaws?"]  # {prev_last} is {prev_fifth} here
    assert agent.heard[5] == "about the fifth one"
    turns = report.dialogues[0].turns
    results = [[(e.key, e.expected, e.passed) for e in t.expectations] for t in turns[1:]]
    assert results == [
        [
            ("answer_about", heat.label, True),
            ("reply_contains_any", ["Heat"], True),
            ("never_items", [jaws.label], True),
        ],
        [("answer_about", jaws.label, True), ("reply_contains_any", ["Jaws"], True)],
        [("answer_about", five[1].label, False)],  # the reply names Jaws, not Seven
        [("answer_about", "Alien (1979)", False)],  # a recommendation is no answer
        # turn 5 showed two items, so there is no fifth: the expectations fail
        [("answer_about", "<no earlier fifth item>", False), ("liked_items", ["<no earlier fifth item>"], False)],
    ]
    assert "not an answer" in turns[4].expectations[0].reason
    assert "Seven not named" in turns[3].expectations[0].reason


SAID = """
name: said
category: mixed
turns:
  - user: "no tom cruise, i want action"
    expect: {disliked_attributes: [Tom Cruise], never_attributes: [Tom Cruise], liked_attributes: [Action]}
  - user: "more"
    expect: {min_items: 1}
  - user: "seen {prev_first}, and the second is not my cup of tea"
    expect: {seen_items: ["{prev_first}"], disliked_items: ["{prev_second}"]}
  - user: "ok tom cruise is fine actually, and the second one was great after all"
    expect: {not_disliked_attributes: [Tom Cruise], liked_items: ["{prev_second}"]}
"""


def test_said_violations_count_what_the_user_said_not_the_belief(catalog: Catalog, tmp_path: Path) -> None:
    top_gun, rain_man = catalog.by_label()["Top Gun (1986)"], catalog.by_label()["Rain Man (1988)"]
    heat, matrix = catalog["heat-1995"], catalog["the-matrix-1999"]
    misread = BeliefState(preferences=(Preference("person", "Tom Cruise", 1),))  # the dislike read as a like
    agent = FakeAgent(
        catalog,
        [
            FinalEvent("ok", (top_gun, heat), misread, "recommend"),
            FinalEvent("ok", (rain_man, matrix), misread, "recommend"),
            FinalEvent("ok", (rain_man, matrix, heat), misread, "recommend"),
            FinalEvent("ok", (top_gun, matrix, rain_man), misread, "recommend"),
        ],
    )
    path = write(tmp_path, "said.yaml", SAID)
    report = run_scripted(agent, path, tmp_path / "out", progress=False)  # type: ignore[arg-type]

    turns = report.dialogues[0].turns
    assert [t.violations for t in turns] == [[], [], [], []]  # the belief has no dislike to break
    assert [t.said_violations for t in turns] == [
        ["Top Gun (1986): said no Tom Cruise"],  # this turn's never_attributes
        ["Rain Man (1988): said no Tom Cruise"],  # the dislike holds on later turns
        ["Rain Man (1988): said no Tom Cruise, said seen", "The Matrix (1999): said disliked"],
        ["Rain Man (1988): said seen"],  # Tom Cruise lifted; the Matrix liked after all; seen stays
    ]
    assert report.violations == 0 and report.said_violations == 5

    data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert (data["violations"], data["said_violations"]) == (0, 5)
    assert data["dialogues"][0]["said_violations"] == 5
    assert data["dialogues"][0]["turns"][0]["said_violations"] == ["Top Gun (1986): said no Tom Cruise"]
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "Violations: 0 against the agent's belief, said-violations: 5 against what the user said." in md
    assert "- mixed/said, turn 1: said-violation: Top Gun (1986): said no Tom Cruise" in md

"""Scripted multi-turn evaluation: play YAML dialogues through the agent and check every turn.

One dialogue a ``*.yaml`` file::

    name: thriller-no-horror
    category: negation
    turns:
      - user: "I want a thriller, but no horror please"
        expect: {act: recommend, disliked_attributes: [Horror], never_attributes: [Horror]}

Each key of ``expect`` is one expectation; ``EXPECT_KEYS`` lists them. Items are named by
their label, ``Title (Year)``. Attributes are genres, people or keywords, matched without
regard to case; ``violent|violence`` accepts either spelling.

Placeholders stand for the items shown by the last turn that recommended something:
``{prev_first}`` to ``{prev_fifth}``, and ``{prev_last}`` for the last of them. In ``user``
a placeholder becomes the item's title ("who is in {prev_last}?"); in item-valued
expectations (``liked_items``, ``never_items``, ``answer_about`` ...) its label; in
``reply_contains_any`` its title, so "the answer names the fourth film" can be written. A
placeholder with no such item reads "that one" in ``user`` and fails in an expectation.
A key given twice in one mapping is an error (YAML itself would keep the last one).

``answer_about: "{prev_fourth}"`` (or a label) checks that the act is ``answer`` or
``explain`` and the reply names that item's title (as words, without case, accents or
punctuation): the final event carries no id of the item an answer is about, so the reply
is the only witness; such a field would make the check exact.

Checks on the recommended items' properties (years, attributes, ``newer_than_previous``)
fail when nothing was recommended; ``never_*`` checks pass then.

Each turn counts recommended items that break an exclusion twice: ``violations`` against
the agent's own belief (so a misread dislike is not counted), ``said_violations`` against
what the script says the user said (``crs.eval.report.SaidLedger``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from crs.eval.expectations import EXPECT_KEYS, View
from crs.eval.reply_checks import names_top_pick_with_reason, reply_problems
from crs.eval.report import (
    DialogueResult,
    ExpectationResult,
    SaidLedger,
    ScriptedReport,
    TurnResult,
    belief_problems,
)
from crs.state import FinalEvent, NoticeEvent, Session

if TYPE_CHECKING:
    from crs.agent import Agent
    from crs.catalog import Item

log = logging.getLogger(__name__)

ACTS = ("ask", "recommend", "answer", "explain", "no_results", "acknowledge")
_DIALOGUE_KEYS = {"name", "category", "description", "turns"}
_TURN_KEYS = {"user", "expect", "note"}
_PLACEHOLDER = re.compile(r"\{prev_(first|second|third|fourth|fifth|last)\}")
_ORDINAL = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}


class DialogueError(ValueError):
    """A dialogue file that is missing, not valid YAML, or not in the dialogue format."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one,
    so a repeated ``never_items`` would silently drop the first check)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key.value!r}", key.start_mark)
            seen.add(key.value)
        return super().construct_mapping(node, deep)


@dataclass(frozen=True)
class ScriptTurn:
    user: str
    expect: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dialogue:
    name: str
    category: str
    turns: list[ScriptTurn]
    path: Path
    description: str = ""

    def labels(self) -> set[str]:
        """Item labels the expectations name (placeholders left out)."""
        out: set[str] = set()
        for turn in self.turns:
            for key, value in turn.expect.items():
                kind = EXPECT_KEYS[key][0]
                if kind in ("labels", "label"):
                    out |= {v for v in ([value] if kind == "label" else value) if not _PLACEHOLDER.search(v)}
        return out


# ---- results ------------------------------------------------------------------------------


# ---- loading ------------------------------------------------------------------------------


def _value(kind: str, value: Any, where: str) -> Any:
    if kind == "act":
        if value not in ACTS:
            raise DialogueError(f"{where}: expected one of {', '.join(ACTS)}, got {value!r}")
        return value
    if kind in ("labels", "attributes"):
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise DialogueError(f"{where}: expected a list of strings, got {value!r}")
        return [v.strip() for v in values]
    if kind in ("attribute", "label"):
        if not isinstance(value, str) or not value.strip():
            what = "an item's label" if kind == "label" else "a genre or a person's name"
            raise DialogueError(f"{where}: expected {what}, got {value!r}")
        return value.strip()
    if kind in ("count", "year"):
        low, high = (0, 100) if kind == "count" else (1800, 2100)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DialogueError(f"{where}: expected a whole number from {low} to {high}, got {value!r}")
        return value
    if value is not True:
        raise DialogueError(f"{where}: expected true (leave the key out otherwise), got {value!r}")
    return True


def _parse_turn(raw: Any, where: str) -> ScriptTurn:
    if not isinstance(raw, dict):
        raise DialogueError(f"{where}: expected a mapping with 'user' and 'expect', got {raw!r}")
    unknown = sorted(set(raw) - _TURN_KEYS)
    if unknown:
        raise DialogueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (known: user, expect, note)")
    user = raw.get("user")
    if not isinstance(user, str) or not user.strip():
        raise DialogueError(f"{where}: missing 'user' (the user's message)")
    expect = raw.get("expect") or {}
    if not isinstance(expect, dict):
        raise DialogueError(f"{where}: 'expect' must be a mapping, got {expect!r}")
    checked = {}
    for key, value in expect.items():
        if key not in EXPECT_KEYS:
            raise DialogueError(f"{where}: unknown expect key {key!r} (known: {', '.join(EXPECT_KEYS)})")
        checked[key] = _value(EXPECT_KEYS[key][0], value, f"{where}: expect.{key}")
    return ScriptTurn(user.strip(), checked)


def _parse_file(path: Path) -> Dialogue:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, UnicodeDecodeError) as exc:
        raise DialogueError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise DialogueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DialogueError(f"{path}: expected a mapping with 'name', 'category' and 'turns'")
    unknown = sorted(set(data) - _DIALOGUE_KEYS)
    if unknown:
        raise DialogueError(f"{path}: unknown key(s) {', '.join(map(str, unknown))} (known: {sorted(_DIALOGUE_KEYS)})")
    turns = data.get("turns")
    if not isinstance(turns, list) or not turns:
        raise DialogueError(f"{path}: missing 'turns' (a list of {{user, expect}})")
    for key in ("name", "category", "description"):
        if key in data and not isinstance(data[key], str):
            raise DialogueError(f"{path}: '{key}' must be a string, got {data[key]!r}")
    return Dialogue(
        name=data.get("name") or path.stem,
        category=data.get("category") or "uncategorized",
        turns=[_parse_turn(t, f"{path}: turn {n}") for n, t in enumerate(turns, 1)],
        path=path,
        description=data.get("description") or "",
    )


def load_dialogues(path: Path | str) -> list[Dialogue]:
    """Every ``*.yaml`` dialogue in a folder (sorted by file name), or the one in a file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise DialogueError(f"{path}: no *.yaml dialogues in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise DialogueError(f"{path}: no such file or folder")
    dialogues = [_parse_file(f) for f in files]
    first: dict[str, Path] = {}
    for d in dialogues:
        if d.name in first:
            raise DialogueError(f"{d.path}: dialogue name {d.name!r} is also used by {first[d.name]}")
        first[d.name] = d.path
    return dialogues


# ---- running ------------------------------------------------------------------------------


def _fill(text: str, previous: list[Item], mode: str) -> str:
    """Placeholders replaced for ``mode``: "user" (titles), "label" or "title" (expectations)."""

    def sub(m: re.Match[str]) -> str:
        n = _ORDINAL[m[1]]
        if -len(previous) <= n < len(previous):
            return previous[n].label if mode == "label" else previous[n].title
        return "that one" if mode == "user" else f"<no earlier {m[1]} item>"

    return _PLACEHOLDER.sub(sub, text)


def _resolve(expect: dict[str, Any], previous: list[Item]) -> dict[str, Any]:
    out = dict(expect)
    for key, value in expect.items():
        kind = EXPECT_KEYS[key][0]
        mode = "label" if kind in ("labels", "label") else "title" if key == "reply_contains_any" else ""
        if mode:
            out[key] = (
                _fill(value, previous, mode) if isinstance(value, str) else [_fill(x, previous, mode) for x in value]
            )
    return out


def _play_turn(agent: Agent, session: Session, text: str) -> tuple[FinalEvent | None, list[str]]:
    final, notices = None, []
    for event in agent.step(session, text):
        if isinstance(event, NoticeEvent):
            notices.append(event.message)
        elif isinstance(event, FinalEvent):
            final = event
    return final, notices


def run_dialogue(agent: Agent, dialogue: Dialogue) -> DialogueResult:
    """Play one dialogue in a fresh session and check every turn's expectations."""
    session = Session(id=f"scripted-{dialogue.name}", user="scripted")
    result = DialogueResult(dialogue.name, dialogue.category, str(dialogue.path))
    earlier: list[list[Item]] = []
    said = SaidLedger()
    for n, turn in enumerate(dialogue.turns, 1):
        previous = next((items for items in reversed(earlier) if items), [])
        text = _fill(turn.user, previous, "user")
        expect = _resolve(turn.expect, previous)
        said.hear(expect)
        record = TurnResult(n, text)
        start = time.perf_counter()
        try:
            final, record.notices = _play_turn(agent, session, text)
            if final is None:
                raise RuntimeError("the turn ended without a final event")
        except Exception as exc:  # one broken turn must not end the evaluation
            log.exception("dialogue %s, turn %d failed", dialogue.name, n)
            record.error = f"{type(exc).__name__}: {exc}"
            record.expectations = [
                ExpectationResult(k, v, False, f"the turn failed: {record.error}") for k, v in expect.items()
            ]
            earlier.append([])
            result.turns.append(record)
            continue
        record.seconds = round(time.perf_counter() - start, 3)
        record.act, record.reply = final.act, final.reply
        record.items = [i.label for i in final.items]
        record.violations, record.invented = belief_problems(final, agent.catalog)
        record.said_violations = said.check(final.items, expect)
        if (linker := getattr(agent, "linker", None)) is not None:  # a replaying fake may have none
            record.reply_problems = reply_problems(final, linker)
        record.top_pick_reason = names_top_pick_with_reason(final)
        view = View(final, agent.catalog, earlier)
        for key, value in expect.items():
            passed, reason = EXPECT_KEYS[key][1](view, value)
            record.expectations.append(ExpectationResult(key, value, bool(passed), reason.strip()))
        earlier.append(list(final.items))
        result.turns.append(record)
    return result


def run_scripted(
    agent: Agent | Callable[[], Agent], path: Path | str, out_dir: Path | str, progress: bool = True
) -> ScriptedReport:
    """Run every dialogue in ``path`` (a ``*.yaml`` file or a folder of them), each in a fresh
    session, and write ``out_dir/report.md`` and ``out_dir/report.json``. ``agent`` may also
    be a function that builds one."""
    from tqdm.auto import tqdm

    dialogues = load_dialogues(path)
    if not hasattr(agent, "step"):
        agent = agent()  # type: ignore[operator]
    results = [
        run_dialogue(agent, d)  # type: ignore[arg-type]
        for d in tqdm(dialogues, desc="scripted dialogues", unit="dialogue", disable=not progress)
    ]
    report = ScriptedReport.from_results(results)
    report.write(out_dir)
    log.info(
        "scripted: %d/%d expectations passed, violations %d, said-violations %d",
        report.expectations_passed,
        report.expectations_total,
        report.violations,
        report.said_violations,
    )
    return report

"""Results of a scripted evaluation, their reports (JSON for tools, Markdown for people), and the two
counts of broken exclusions: against the agent's belief and against what the user said."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crs.catalog import Catalog, Item
    from crs.state import FinalEvent

from crs.rank.exclusion import Exclusion


@dataclass(frozen=True)
class ExpectationResult:
    key: str
    expected: Any
    passed: bool
    reason: str


@dataclass
class TurnResult:
    index: int
    user: str
    act: str = ""
    reply: str = ""
    items: list[str] = field(default_factory=list)  # labels of the recommended items
    expectations: list[ExpectationResult] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # against the agent's belief
    said_violations: list[str] = field(default_factory=list)  # against what the script says the user said
    invented: list[str] = field(default_factory=list)
    reply_problems: list[str] = field(default_factory=list)  # see crs.eval.reply_checks
    top_pick_reason: bool | None = None  # a recommendation that names its top pick and says why
    notices: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


@dataclass
class DialogueResult:
    name: str
    category: str
    path: str
    turns: list[TurnResult] = field(default_factory=list)

    @property
    def expectations(self) -> list[ExpectationResult]:
        return [e for t in self.turns for e in t.expectations]

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.expectations)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        results = self.expectations
        out.update(
            expectations_total=len(results),
            expectations_passed=sum(e.passed for e in results),
            violations=sum(len(t.violations) for t in self.turns),
            said_violations=sum(len(t.said_violations) for t in self.turns),
        )
        return out


def rate(passed: int, total: int) -> float:
    """A share rounded to 4 places; 0 when there is nothing to count."""
    return round(passed / total, 4) if total else 0.0


@dataclass
class ScriptedReport:
    expectations_total: int
    expectations_passed: int
    pass_rate: float
    violations: int  # recommended items with a rejected genre or person, or rejected or seen, by the belief
    said_violations: int  # recommended items that break what the user said (see crs.eval.scripted)
    invented_titles: int  # recommended items that are not catalog items
    replies: dict[str, int]  # turns, and turns whose words have each kind of problem (crs.eval.reply_checks)
    by_category: dict[str, dict[str, float]]  # {category: {total, passed, pass_rate}}
    dialogues: list[DialogueResult]

    @classmethod
    def from_results(cls, dialogues: list[DialogueResult]) -> ScriptedReport:
        results = [e for d in dialogues for e in d.expectations]
        by_category: dict[str, dict[str, float]] = {}
        for d in dialogues:
            row = by_category.setdefault(d.category, {"total": 0, "passed": 0, "pass_rate": 0.0})
            row["total"] += len(d.expectations)
            row["passed"] += sum(e.passed for e in d.expectations)
        for row in by_category.values():
            row["pass_rate"] = rate(int(row["passed"]), int(row["total"]))
        passed = sum(e.passed for e in results)
        turns = [t for d in dialogues for t in d.turns]
        return cls(
            expectations_total=len(results),
            expectations_passed=passed,
            pass_rate=rate(passed, len(results)),
            violations=sum(len(t.violations) for t in turns),
            said_violations=sum(len(t.said_violations) for t in turns),
            invented_titles=sum(len(t.invented) for t in turns),
            replies=reply_counts(turns),
            by_category=dict(sorted(by_category.items())),
            dialogues=dialogues,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectations_total": self.expectations_total,
            "expectations_passed": self.expectations_passed,
            "pass_rate": self.pass_rate,
            "violations": self.violations,
            "said_violations": self.said_violations,
            "invented_titles": self.invented_titles,
            "replies": self.replies,
            "dialogues_total": len(self.dialogues),
            "dialogues_passed": sum(d.passed for d in self.dialogues),
            "by_category": self.by_category,
            "dialogues": [d.to_dict() for d in self.dialogues],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        n_pass = sum(d.passed for d in self.dialogues)
        r = self.replies
        lines = [
            "# Scripted dialogues",
            "",
            f"{len(self.dialogues)} dialogues ({n_pass} passing every expectation), "
            f"{self.expectations_total} expectations: {self.expectations_passed} passed "
            f"({self.pass_rate:.1%}). Violations: {self.violations} against the agent's belief, "
            f"said-violations: {self.said_violations} against what the user said. "
            f"Invented titles: {self.invented_titles}.",
            "",
            f"Replies ({r['turns']} turns): {r['third person']} talk about the user in the third person, "
            f"{r['own viewing']} claim an experience or taste of the agent's own, {r['repeated']} repeat a sentence, "
            f"{r['ungrounded']} say what the records do not hold; {r['top_pick_reason']} of {r['recommend']} "
            "recommendations name their top pick with a reason.",
            "",
            "| category | expectations | passed | pass rate |",
            "|---|---:|---:|---:|",
        ]
        for name, row in self.by_category.items():
            lines.append(f"| {name} | {row['total']} | {row['passed']} | {row['pass_rate']:.1%} |")
        lines.append(f"| **all** | {self.expectations_total} | {self.expectations_passed} | {self.pass_rate:.1%} |")
        failed = [(d, t, e) for d in self.dialogues for t in d.turns for e in t.expectations if not e.passed]
        lines += ["", f"## Failed expectations ({len(failed)})", ""]
        for d, t, e in failed:
            lines.append(f"- {d.category}/{d.name}, turn {t.index} ({quote(t.user)}): `{e.key}`: {e.reason}")
        if not failed:
            lines.append("None.")
        problems = [
            (d, t, p)
            for d in self.dialogues
            for t in d.turns
            for p in t.violations + [f"said-violation: {s}" for s in t.said_violations] + t.invented + t.reply_problems
        ]
        if problems:
            lines += ["", f"## Violations, said-violations, invented titles and reply problems ({len(problems)})", ""]
            lines += [f"- {d.category}/{d.name}, turn {t.index}: {p}" for d, t, p in problems]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path | str) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(self.to_json() + "\n", encoding="utf-8")
        (out / "report.md").write_text(self.to_markdown(), encoding="utf-8")


_VOICE = ("third person", "own viewing", "repeated")  # reply problems of voice, not of facts


def reply_counts(turns: list[TurnResult]) -> dict[str, int]:
    """Turns whose words have each kind of problem; recommendations naming their top pick with a reason."""
    found = [{p.split(":")[0] for p in t.reply_problems} for t in turns]  # the kinds of each turn
    out = {"turns": len(turns)} | {kind: sum(kind in f for f in found) for kind in _VOICE}
    out["ungrounded"] = sum(bool(f.difference(_VOICE)) for f in found)
    out |= {f"ungrounded: {k}": sum(k in f for f in found) for k in sorted(set().union(*found).difference(_VOICE))}
    out["recommend"] = sum(t.top_pick_reason is not None for t in turns)
    out["top_pick_reason"] = sum(bool(t.top_pick_reason) for t in turns)
    return out


def quote(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= n else text[: n - 1] + "…") + '"'


# ---- counting broken exclusions ---------------------------------------------------------------


def alternatives(spec: str) -> set[str]:
    """``"violent|violence"`` -> ``{"violent", "violence"}``: the spellings an attribute accepts."""
    return {a.strip().casefold() for a in spec.split("|") if a.strip()}


def has_attribute(item: Item, spec: str) -> bool:
    """Whether a genre or cast member of ``item`` is one of the spellings in ``spec``."""
    want = alternatives(spec)
    return any(g.casefold() in want for g in item.genres) or any(c.casefold() in want for c in item.cast)


def belief_problems(final: FinalEvent, catalog: Catalog) -> tuple[list[str], list[str]]:
    """Violations (recommended items the user ruled out) and invented titles of one turn."""
    exclusion = Exclusion.from_belief(final.belief, shown=False)  # this turn's picks are in ``shown`` already
    violations, invented = [], []
    for item in final.items:
        why = exclusion.reasons(item)
        if why:
            violations.append(f"{item.label}: {', '.join(why)}")
        known = catalog.get(item.id)
        if known is None or known.title != item.title:
            invented.append(f"{item.label}: not a catalog item")
    return violations, invented


@dataclass
class SaidLedger:
    """What the script says the user ruled out so far: the yardstick of ``said_violations``.

    A recommended item breaks it when it has an attribute of this turn's ``never_attributes``
    or is in its ``never_items``, or when earlier turns expected one of its attributes
    disliked (``disliked_attributes``), or the item disliked or seen (``disliked_items``,
    ``seen_items``), until a later turn expects it liked or not disliked (``liked_*``,
    ``not_disliked_*``; seen stays seen)."""

    attributes: list[str] = field(default_factory=list)  # disliked, as written ("violent|violence")
    disliked: set[str] = field(default_factory=set)  # labels
    seen: set[str] = field(default_factory=set)

    def hear(self, expect: dict[str, Any]) -> None:
        """Take in one turn's (resolved) expectations: what the user said up to this turn."""
        lifted = {
            a
            for k in ("liked_attributes", "not_disliked_attributes")
            for s in expect.get(k, ())
            for a in alternatives(s)
        }
        self.attributes = [s for s in self.attributes if not alternatives(s) & lifted]
        self.attributes += [s for s in expect.get("disliked_attributes", ()) if s not in self.attributes]
        self.disliked -= {*expect.get("liked_items", ()), *expect.get("not_disliked_items", ())}
        self.disliked |= set(expect.get("disliked_items", ()))
        self.seen |= set(expect.get("seen_items", ()))

    def check(self, items: Iterable[Item], expect: dict[str, Any]) -> list[str]:
        """The recommended items that break what the user said, each with why."""
        specs = self.attributes + [s for s in expect.get("never_attributes", ()) if s not in self.attributes]
        out = []
        for item in items:
            why = [f"said no {s}" for s in specs if has_attribute(item, s)]
            why += ["said not this one"] if item.label in expect.get("never_items", ()) else []
            why += ["said disliked"] if item.label in self.disliked else []
            why += ["said seen"] if item.label in self.seen else []
            if why:
                out.append(f"{item.label}: {', '.join(why)}")
        return out

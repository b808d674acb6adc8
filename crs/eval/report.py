"""Results of a scripted evaluation and their reports (JSON for tools, Markdown for people)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


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
    violations: list[str] = field(default_factory=list)
    invented: list[str] = field(default_factory=list)
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
        out.update(expectations_total=len(results), expectations_passed=sum(e.passed for e in results))
        return out


def rate(passed: int, total: int) -> float:
    """A share rounded to 4 places; 0 when there is nothing to count."""
    return round(passed / total, 4) if total else 0.0


@dataclass
class ScriptedReport:
    expectations_total: int
    expectations_passed: int
    pass_rate: float
    violations: int  # recommended items with a rejected genre or person, or rejected or seen
    invented_titles: int  # recommended items that are not catalog items
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
            invented_titles=sum(len(t.invented) for t in turns),
            by_category=dict(sorted(by_category.items())),
            dialogues=dialogues,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectations_total": self.expectations_total,
            "expectations_passed": self.expectations_passed,
            "pass_rate": self.pass_rate,
            "violations": self.violations,
            "invented_titles": self.invented_titles,
            "dialogues_total": len(self.dialogues),
            "dialogues_passed": sum(d.passed for d in self.dialogues),
            "by_category": self.by_category,
            "dialogues": [d.to_dict() for d in self.dialogues],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        n_pass = sum(d.passed for d in self.dialogues)
        lines = [
            "# Scripted dialogues",
            "",
            f"{len(self.dialogues)} dialogues ({n_pass} passing every expectation), "
            f"{self.expectations_total} expectations: {self.expectations_passed} passed "
            f"({self.pass_rate:.1%}). Violations: {self.violations}. Invented titles: {self.invented_titles}.",
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
        problems = [(d, t, p) for d in self.dialogues for t in d.turns for p in t.violations + t.invented]
        if problems:
            lines += ["", f"## Violations and invented titles ({len(problems)})", ""]
            lines += [f"- {d.category}/{d.name}, turn {t.index}: {p}" for d, t, p in problems]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path | str) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(self.to_json() + "\n", encoding="utf-8")
        (out / "report.md").write_text(self.to_markdown(), encoding="utf-8")


def quote(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= n else text[: n - 1] + "…") + '"'


# ---- the checks ---------------------------------------------------------------------------

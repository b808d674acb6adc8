"""User simulation: a simulated user with a hidden target item talks to the agent until the
agent recommends the target or the turns run out.

The user speaks only of the target's attributes (genres, cast, decade), never of the target
itself: every rule-based sentence, and every LLM-written message, passes ``leaks_target``
first (iEvaLM's simulated users leaked the title and inflated recall). Metrics:

- ``success_rate``: the target was among the recommended items within ``max_turns`` turns.
- ``avg_turns``: turns used until success, or ``max_turns`` on failure, over all dialogues.
- ``recall@k``: the target's rank (1-based) in the recommendation of the first turn that
  showed it, at most ``k``; the fraction of dialogues where that holds. The agent shows
  ``cfg.retrieval.show`` items a turn (5 by default) and never shows an item twice, so with
  5 items ``recall@10`` counts any appearance and equals ``success_rate``.
- ``violations``: recommended items that carry a genre or cast member the user rejected, or
  that the user rejected ("not that one") or said it had seen, over all turns (want 0).
- ``success_by_turn``: ``{t: fraction of dialogues that succeeded by turn t}``, cumulative.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from crs.catalog import Catalog, Item
from crs.eval.report import rate
from crs.eval.sim_users import RulesUser, Say, llm_utterance
from crs.state import Session

if TYPE_CHECKING:
    from crs.agent import Agent

log = logging.getLogger(__name__)

SIMULATORS = ("rules", "llm")
Simulator = Literal["rules", "llm"]

# ---- results ------------------------------------------------------------------------------


@dataclass
class SimTurn:
    index: int
    user: str
    source: str  # rules | llm | rules-fallback
    says: list[str]  # "kind:value" of what the message says
    act: str = ""
    items: list[str] = field(default_factory=list)  # labels of the recommended items
    target_rank: int | None = None  # 1-based rank of the target in ``items``
    violations: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


@dataclass
class SimDialogue:
    target_id: str
    target: str  # label
    success: bool = False
    turns_used: int = 0
    rank: int | None = None  # the target's rank at the first turn that showed it
    closing: str = ""  # the user's acceptance, not sent to the agent
    turns: list[SimTurn] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(len(t.violations) for t in self.turns)


@dataclass
class SimulationReport:
    simulator: str
    max_turns: int
    success_rate: float
    avg_turns: float
    recall_at_1: float
    recall_at_10: float
    violations: int
    success_by_turn: dict[int, float]
    llm_fallbacks: int  # LLM messages replaced by the rules message (llm simulator only)
    dialogues: list[SimDialogue]

    @property
    def n_targets(self) -> int:
        return len(self.dialogues)

    @classmethod
    def from_dialogues(cls, dialogues: list[SimDialogue], simulator: str, max_turns: int) -> SimulationReport:
        n = len(dialogues)
        ranks = [d.rank for d in dialogues if d.rank is not None]
        return cls(
            simulator=simulator,
            max_turns=max_turns,
            success_rate=rate(sum(d.success for d in dialogues), n),
            avg_turns=round(sum(d.turns_used for d in dialogues) / n, 3) if n else 0.0,
            recall_at_1=rate(sum(r <= 1 for r in ranks), n),
            recall_at_10=rate(sum(r <= 10 for r in ranks), n),
            violations=sum(d.violations for d in dialogues),
            success_by_turn={
                t: rate(sum(d.success and d.turns_used <= t for d in dialogues), n) for t in range(1, max_turns + 1)
            },
            llm_fallbacks=sum(t.source == "rules-fallback" for d in dialogues for t in d.turns),
            dialogues=dialogues,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "success_rate": self.success_rate,
            "avg_turns": self.avg_turns,
            "recall@1": self.recall_at_1,
            "recall@10": self.recall_at_10,
            "violations": self.violations,
            "success_by_turn": {str(t): r for t, r in self.success_by_turn.items()},
            "n_targets": self.n_targets,
            "simulator": self.simulator,
            "max_turns": self.max_turns,
            "llm_fallbacks": self.llm_fallbacks,
            "dialogues": [asdict(d) | {"violations": d.violations} for d in self.dialogues],
        }

    def to_markdown(self) -> str:
        by_turn = " | ".join(f"{r:.0%}" for r in self.success_by_turn.values())
        lines = [
            f"# User simulation ({self.simulator} simulator)",
            "",
            f"{self.n_targets} hidden targets, up to {self.max_turns} turns each. Recall@k: the target's rank at "
            "the first turn that recommended it is at most k.",
            "",
            "| success rate | avg turns | recall@1 | recall@10 | violations |",
            "|---:|---:|---:|---:|---:|",
            f"| {self.success_rate:.1%} | {self.avg_turns:.2f} | {self.recall_at_1:.1%} | "
            f"{self.recall_at_10:.1%} | {self.violations} |",
            "",
            "| success by turn | " + " | ".join(str(t) for t in self.success_by_turn) + " |",
            "|---|" + "---:|" * len(self.success_by_turn),
            f"| cumulative | {by_turn} |",
            "",
            "## Dialogues",
            "",
            "| target | found | turn | rank | violations | first message |",
            "|---|:---:|---:|---:|---:|---|",
        ]
        for d in self.dialogues:
            first = d.turns[0].user.replace("|", "/") if d.turns else ""
            lines.append(
                f"| {d.target} | {'yes' if d.success else 'no'} | {d.turns_used} | {d.rank or '–'} | "
                f"{d.violations} | {first} |"
            )
        problems = [(d, t, v) for d in self.dialogues for t in d.turns for v in t.violations]
        if problems:
            lines += ["", f"## Violations ({len(problems)})", ""]
            lines += [f"- {d.target}, turn {t.index}: {v}" for d, t, v in problems]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path | str) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        (out / "report.md").write_text(self.to_markdown(), encoding="utf-8")
        from crs.eval.plots import Panel, line_charts

        turns = list(self.success_by_turn)
        rates = list(self.success_by_turn.values())
        line_charts(
            out / "success_by_turn.png",
            [Panel("simulated users", "turn", "found the target by then", {"success": (turns, rates)})],
        )


# ---- running ------------------------------------------------------------------------------


def pick_targets(catalog_subset: Catalog | Iterable[Item], n: int, seed: int = 0) -> list[Item]:
    """A seeded sample of ``n`` items that have genres, cast and a year (all of them when fewer)."""
    eligible = [it for it in catalog_subset if it.genres and it.cast and it.year]
    return random.Random(seed).sample(eligible, min(n, len(eligible)))


@dataclass
class _Ledger:
    """What the user ruled out so far, to count violations."""

    genres: set[str] = field(default_factory=set)
    people: set[str] = field(default_factory=set)
    items: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def add(self, says: Iterable[Say]) -> None:
        for s in says:
            if s.kind == "no_genre":
                self.genres.add(s.value.casefold())
            elif s.kind in ("not_that", "else"):
                self.items.add(s.value)
            elif s.kind == "seen":
                self.seen.add(s.value)

    def check(self, item: Item) -> list[str]:
        why = [f"rejected genre {g}" for g in item.genres if g.casefold() in self.genres]
        why += [f"rejected person {c}" for c in item.cast if c.casefold() in self.people]
        why += ["rejected item"] if item.id in self.items else []
        why += ["already seen"] if item.id in self.seen else []
        return [f"{item.label}: {', '.join(why)}"] if why else []


def simulate_dialogue(
    agent: Agent, target: Item, max_turns: int = 5, seed: int = 0, simulator: str = "rules"
) -> SimDialogue:
    """One dialogue in a fresh session."""
    rng = random.Random(f"{seed}:{target.id}")
    user = RulesUser(target, rng, linker=getattr(agent, "linker", None))
    session = Session(id=f"sim-{target.id}", user="simulator")
    result = SimDialogue(target.id, target.label)
    ledger = _Ledger()
    utterance = user.opening()
    for n in range(1, max_turns + 1):
        if simulator == "llm":
            utterance = llm_utterance(agent.llm, target, utterance, user.said)
        ledger.add(utterance.says)
        turn = SimTurn(n, utterance.text, utterance.source, [f"{s.kind}:{s.value}" for s in utterance.says])
        result.turns.append(turn)
        result.turns_used = n
        start = time.perf_counter()
        try:
            final = agent.respond(session, utterance.text)
        except Exception as exc:  # one broken turn ends this dialogue, not the evaluation
            log.exception("simulated dialogue for %s, turn %d failed", target.id, n)
            turn.error = f"{type(exc).__name__}: {exc}"
            break
        turn.seconds = round(time.perf_counter() - start, 3)
        items: list[Item] = [i for i in final.items if isinstance(i, Item)]
        turn.act, turn.items = final.act, [i.label for i in items]
        turn.violations = [v for i in items for v in ledger.check(i)]
        ids = [i.id for i in items]
        if target.id in ids:
            turn.target_rank = ids.index(target.id) + 1
            result.success, result.rank = True, turn.target_rank
            result.closing = user.react(final.act, items).text
            break
        utterance = user.react(final.act, items)
    return result


def run_simulation(
    agent: Agent,
    targets: list[Item],
    out_dir: Path | str,
    max_turns: int = 5,
    seed: int = 0,
    simulator: str = "rules",
    progress: bool = True,
) -> SimulationReport:
    """Simulate one dialogue per target and write ``out_dir/report.json`` and ``report.md``."""
    from tqdm.auto import tqdm

    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of: {', '.join(SIMULATORS)}")
    try:
        stored = agent.store.get_embeddings([t.id for t in targets])
        missing = [t.id for t in targets if t.id not in stored]
        if missing:
            log.warning("%d target(s) are not in the index and cannot be found: %s", len(missing), missing[:5])
    except Exception as exc:  # a store without this check still runs
        log.debug("could not check the targets against the index: %s", exc)
    dialogues = [
        simulate_dialogue(agent, t, max_turns, seed, simulator)
        for t in tqdm(targets, desc=f"simulated users ({simulator})", unit="dialogue", disable=not progress)
    ]
    report = SimulationReport.from_dialogues(dialogues, simulator, max_turns)
    report.write(out_dir)
    log.info("simulation: success %.1f%% over %d targets", 100 * report.success_rate, report.n_targets)
    return report

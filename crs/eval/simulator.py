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
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from crs.catalog import Catalog, Item, normalize_title
from crs.eval.report import rate
from crs.llm.base import Message
from crs.state import Session
from crs.understand.lexicon import COMMON_WORDS

if TYPE_CHECKING:
    from crs.agent import Agent
    from crs.llm.base import ChatModel
    from crs.understand.nlu import Linker

log = logging.getLogger(__name__)

SIMULATORS = ("rules", "llm")
Simulator = Literal["rules", "llm"]
SayKind = Literal["want_genre", "no_genre", "want_person", "decade", "not_that", "seen", "else", "accept"]

# ---- leakage ------------------------------------------------------------------------------

_STOPWORDS = COMMON_WORDS | frozenset("of and or in on at the a an to part ii iii iv vs".split())
_GENERIC = ("Show me something else.", "Another one, please.", "Keep going.", "Next.")


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return re.findall(r"[a-z0-9]+", folded.replace("&", " and "))


def _same_word(a: str, b: str) -> bool:
    """Equal, or one an inflection of the other ("alien"/"aliens")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 2


def leaks_target(utterance: str, target: Item | str) -> bool:
    """Whether a message names the target or a near-copy of its title: the normalised title
    as a phrase, 60% or more of the title's non-stopword words, or any distinctive title word
    (not a stopword, 5+ letters), each word matched with its inflections."""
    title = target.title if isinstance(target, Item) else target
    said = _words(utterance)
    if not said:
        return False
    norm = normalize_title(title)
    if norm and f" {norm} " in f" {' '.join(said)} ":
        return True
    content = [w for w in dict.fromkeys(_words(title)) if w not in _STOPWORDS]
    if not content:
        return False
    present = [w for w in content if any(_same_word(w, s) for s in said)]
    if len(present) >= 0.6 * len(content):
        return True
    return any(len(w) >= 5 for w in present)


# ---- what a simulated message says ----------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """One thing a simulated message says: the rule-based sentence, and the phrase an
    LLM rewording must keep so the agent can still read it."""

    kind: SayKind
    value: str  # a genre, a person, a decade's first year, an item id
    text: str
    key: str


@dataclass(frozen=True)
class Utterance:
    text: str
    says: tuple[Say, ...]
    source: str = "rules"  # rules | llm | rules-fallback


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _decade(year: int) -> int:
    return year // 10 * 10


class RulesUser:
    """A simulated user with a hidden target: opens with one of its genres, answers a question
    with another attribute, rejects a miss with feedback drawn from the target, and reveals one
    more attribute a turn. With a ``linker`` (the agent's), it only says what the linker reads
    as meant: no title anywhere, each genre and person as itself."""

    def __init__(self, target: Item, rng: random.Random, linker: Linker | None = None, max_cast: int = 3) -> None:
        self.target = target
        self.rng = rng
        self.linker = linker
        self.genres = [g for g in target.genres if self._ok_genre(g, want=True)]
        rng.shuffle(self.genres)
        self.cast = [p for p in target.cast[:max_cast] if self._ok_person(p)]
        self.decade = _decade(target.year) if target.year else None
        # One attribute revealed a turn, in this order, after the opening genre.
        self.pending: list[Say] = [self._want_genre(g) for g in self.genres[1:2]]
        people = [self._want_person(p) for p in self.cast]
        self.pending += people[:1] + ([self._decade_say()] if self.decade is not None else []) + people[1:]
        self.pending += [self._want_genre(g) for g in self.genres[2:]]
        self.pending = [s for s in self.pending if not leaks_target(s.text, target)]
        self.said: list[Say] = []

    # -- the sentences --------------------------------------------------------------------

    def _want_genre(self, genre: str) -> Say:
        g = genre.lower()
        return Say("want_genre", genre, f"I'm looking for {_article(g)} {g} movie.", g)

    def _no_genre(self, genre: str) -> Say:
        return Say("no_genre", genre, f"No {genre.lower()}.", f"no {genre.lower()}")

    def _want_person(self, person: str) -> Say:
        return Say("want_person", person, f"Something with {person}.", person)

    def _decade_say(self) -> Say:
        return Say("decade", str(self.decade), f"Something from the {self.decade}s.", f"{self.decade}s")

    def _reads(self, text: str, kind: str, values: set[str]) -> bool:
        """Without a linker, yes; with one: no title in ``text``, and the mentions of ``kind``
        are exactly ``values`` (case-insensitive)."""
        if self.linker is None:
            return True
        mentions = self.linker.mentions(text)
        if any(m.kind == "item" for m in mentions):
            return False
        return {m.value.casefold() for m in mentions if m.kind == kind} == {v.casefold() for v in values}

    def _ok_genre(self, genre: str, want: bool) -> bool:
        say = self._want_genre(genre) if want else self._no_genre(genre)
        if leaks_target(say.text, self.target) or not self._reads(say.text, "genre", {genre}):
            return False
        return want or not self.target.has_genre(genre)

    def _ok_person(self, person: str) -> bool:
        say = self._want_person(person)
        return (
            len(_words(person)) >= 2
            and not leaks_target(say.text, self.target)
            and self._reads(say.text, "person", {person})
        )

    # -- the turns ------------------------------------------------------------------------

    def opening(self) -> Utterance:
        if self.genres:
            return self._utter([self._want_genre(self.genres[0])])
        return self._utter([self.pending.pop(0)] if self.pending else [])

    def react(self, act: str, items: Sequence[Item]) -> Utterance:
        """The next message after the agent's turn (``act``, the items it recommended)."""
        if self.target.id in {i.id for i in items}:
            text = f"I'll watch {self.target.label}."  # the target was found: naming it is fine
            return Utterance(text, (Say("accept", self.target.id, text, text),))
        says: list[Say] = []
        if act == "recommend" and items:
            says += self._critique(items)
        if self.pending:  # one more attribute a turn
            says.append(self.pending.pop(0))
        if not says and items:
            top = items[0]
            says.append(Say("else", top.id, "Show me something else.", "something else"))
        return self._utter(says)

    def _critique(self, items: Sequence[Item]) -> list[Say]:
        """Feedback on a miss, from the target's attributes only."""
        says: list[Say] = []
        top, target = items[0], self.target
        if not any(top.has_genre(g) for g in target.genres) and self.genres:
            says.append(Say("not_that", top.id, "Not that one.", "not that one"))
            says.append(self._want_genre(self.genres[0]))
        elif self.rng.random() < 0.25 and top.title.casefold() != target.title.casefold():
            seen = Say("seen", top.id, f"I've already seen {top.label}.", f"seen {top.label}")
            linked = self.linker.mentions(seen.text) if self.linker else []
            if not leaks_target(seen.text, target) and (
                self.linker is None or [m.value for m in linked if m.kind == "item"] == [top.id]
            ):
                says.append(seen)
        if self.decade is not None and any(not i.year or _decade(i.year) != self.decade for i in items):
            says.append(self._decade_say())
            self.pending = [s for s in self.pending if s.kind != "decade"]
        counts = Counter(g for i in items for g in i.genres if not target.has_genre(g))
        rejected = {s.value for s in self.said if s.kind == "no_genre"}
        fresh = [g for g, _ in counts.most_common() if g not in rejected and self._ok_genre(g, want=False)]
        says += [self._no_genre(g) for g in fresh[:2]]
        return says

    def _utter(self, says: list[Say]) -> Utterance:
        """The sentences joined, dropping from the end until the whole message leaks nothing."""
        says = [s for s in says if not leaks_target(s.text, self.target)]
        while says and leaks_target(" ".join(s.text for s in says), self.target):
            says.pop()
        self.said += says
        if says:
            return Utterance(" ".join(s.text for s in says), tuple(says))
        text = next((t for t in _GENERIC if not leaks_target(t, self.target)), "...")
        return Utterance(text, ())

    def possible_sentences(self, genres: Iterable[str]) -> list[str]:
        """Every attribute sentence this user could say, with ``genres`` as the genres shown."""
        out = [self._want_genre(g).text for g in self.genres]
        out += [self._want_person(p).text for p in self.cast]
        out += [self._decade_say().text] if self.decade is not None else []
        out += [self._no_genre(g).text for g in genres if self._ok_genre(g, want=False)]
        return out + ["Not that one.", *_GENERIC]


# ---- the LLM variant ----------------------------------------------------------------------


def llm_prompt(target: Item, revealed: Sequence[Say], keys: Sequence[str]) -> list[Message]:
    """The messages asking an LLM for the user's next message: the target's attributes (never
    its title) and the phrases the message must contain."""
    decade = f"the {_decade(target.year)}s" if target.year else "unknown"
    known = ", ".join(s.value for s in revealed if s.kind == "want_person") or "none yet"
    system = (
        "You play a person chatting with a movie recommender. You have one movie in mind but "
        "never say its title. Write only your next message: one or two short, casual sentences."
    )
    user = (
        f"The movie you have in mind: genres {', '.join(target.genres) or 'unknown'}; from {decade}; "
        f"actors you mentioned: {known}.\n"
        f"Your next message must contain each of these phrases word for word: "
        + "; ".join(f'"{k}"' for k in keys)
        + "\nMessage:"
    )
    return [Message("system", system), Message("user", user)]


def llm_utterance(llm: ChatModel, target: Item, planned: Utterance, revealed: Sequence[Say]) -> Utterance:
    """The planned message reworded by the LLM; the planned one when the LLM fails, leaks the
    target, or drops a phrase the agent needs."""
    keys = [s.key for s in planned.says]
    if not keys or planned.says[0].kind == "accept":
        return planned
    try:
        raw = llm.generate(llm_prompt(target, revealed, keys), max_new_tokens=60, temperature=0.7)
    except Exception as exc:  # a failing model costs the wording, not the dialogue
        log.warning("simulator LLM failed: %s", exc)
        return Utterance(planned.text, planned.says, "rules-fallback")
    text = " ".join(raw.strip().strip('"').split())[:300]
    folded = " ".join(_words(text))
    if not text or leaks_target(text, target) or any(" ".join(_words(k)) not in folded for k in keys):
        return Utterance(planned.text, planned.says, "rules-fallback")
    return Utterance(text, planned.says, "llm")


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

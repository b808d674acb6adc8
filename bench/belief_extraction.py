"""Belief extraction on real ReDial dialogues: does the rule-based understanding read the
seeker's likes and dislikes the way the seeker reported them?

    python bench/belief_extraction.py [--files F ...] [--limit N] [--errors N]

Each dialogue's seeker messages are replayed turn by turn through ``crs.understand.nlu.understand`` and
``crs.state.apply``, with every ``@<movie_id>`` written out as the movie's "Title (Year)", as
a user would type it. Gold: the seeker's own questionnaire (``initiatorQuestions``) for the
movies the seeker mentioned, liked=1 -> liked, liked=0 -> disliked (liked=2, "did not say",
is not scored). Predicted: the final belief's liked and disliked items; an item read both ways
counts with its final polarity, and "already seen" is not a dislike. Precision, recall and F1
are micro-averaged over the (dialogue, movie) pairs with a gold label.

Two linkers: one over the ReDial movie list (titles link straight to ReDial ids) and one over
the demo catalog, whose items are matched to ReDial movies by normalised title and year (±1).
Prints a table and writes bench/results/belief_extraction.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.catalog import load_catalog, load_redial_movies, split_title_year  # noqa: E402
from crs.config import load_config  # noqa: E402
from crs.eval.redial.data import load_dialogues  # noqa: E402  (the validated ReDial reader, deduplicated)
from crs.state import BeliefState, apply  # noqa: E402
from crs.understand.linker import Linker
from crs.understand.nlu import understand

ROOT = Path(__file__).resolve().parents[1]
REDIAL = load_config().paths.data_root / "redial"
DEFAULT_FILES = [
    REDIAL / "partial_train" / "kgsf_valid_data.jsonl.gz",
    REDIAL / "partial_train" / "ievalm_valid_data.jsonl.gz",
]
MOVIES = REDIAL / "official" / "movies_with_mentions.csv"
DEMO_CATALOG = ROOT / "knowledge" / "movies.jsonl.gz"
RESULTS = Path(__file__).resolve().parent / "results"

_PLACEHOLDER = re.compile(r"@(\d+)")
GOLD = {1: 1, 0: -1}  # questionnaire 'liked' -> polarity; 2 (did not say) is not scored


def _name(dialogue: dict, movie_id: str) -> str:
    return re.sub(r"\s+", " ", (dialogue.get("movieMentions") or {}).get(movie_id) or "").strip()


def seeker_messages(dialogue: dict) -> list[str]:
    """The seeker's messages, each ``@id`` replaced by the movie's "Title (Year)"."""

    def fill(m: re.Match) -> str:
        return _name(dialogue, m.group(1)) or m.group(0)

    seeker = dialogue["initiatorWorkerId"]
    return [_PLACEHOLDER.sub(fill, m["text"]) for m in dialogue["messages"] if m["senderWorkerId"] == seeker]


def seeker_mentions(dialogue: dict) -> list[str]:
    """ReDial ids the seeker wrote as ``@id``, in order of first mention."""
    seeker = dialogue["initiatorWorkerId"]
    ids = [i for m in dialogue["messages"] if m["senderWorkerId"] == seeker for i in _PLACEHOLDER.findall(m["text"])]
    return list(dict.fromkeys(ids))


def gold_labels(dialogue: dict) -> dict[str, int]:
    """{ReDial id: +1 liked / -1 disliked} for the movies the seeker mentioned and rated."""
    questions = dialogue.get("initiatorQuestions") or {}
    if not isinstance(questions, dict):  # a few dialogues have an empty list
        return {}
    out = {}
    for movie_id in seeker_mentions(dialogue):
        liked = (questions.get(movie_id) or {}).get("liked")
        if liked in GOLD:
            out[movie_id] = GOLD[liked]
    return out


def extract(dialogue: dict, linker: Linker) -> BeliefState:
    """The belief after the seeker's messages, one ``understand`` per message."""
    belief = BeliefState()
    for turn, text in enumerate(seeker_messages(dialogue)):
        belief = apply(belief, understand(text, linker, turn))
    return belief


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@dataclass(frozen=True)
class Pair:
    """One scored (dialogue, movie): the gold and predicted polarity (0: neither)."""

    dialogue: str
    movie: str  # "Title (Year)"
    gold: int
    predicted: int
    seen: bool  # read as "already seen"
    matched: bool  # the movie has an id in the linker's catalog
    linked: bool  # the linker found the title in the seeker's messages


@dataclass
class Report:
    dialogues: int = 0
    pairs: list[Pair] = field(default_factory=list)
    unscored: int = 0  # predictions on mentioned movies rated liked=2
    unmentioned: int = 0  # predicted items the seeker never wrote as @id (typed titles, false links)

    def counts(self, polarity: int, baseline: bool = False) -> Counts:
        c = Counts()
        for p in self.pairs:
            predicted = 1 if baseline else p.predicted
            if predicted == polarity:
                c.tp += p.gold == polarity
                c.fp += p.gold != polarity
            elif p.gold == polarity:
                c.fn += 1
        return c

    def summary(self) -> dict[str, object]:
        n = len(self.pairs)
        return {
            "dialogues": self.dialogues,
            "pairs": n,
            "gold_liked": sum(p.gold == 1 for p in self.pairs),
            "gold_disliked": sum(p.gold == -1 for p in self.pairs),
            "match_rate": round(sum(p.matched for p in self.pairs) / n, 4) if n else 0.0,
            "linked_rate": round(sum(p.linked for p in self.pairs) / n, 4) if n else 0.0,
            "read_rate": round(sum(p.predicted != 0 or p.seen for p in self.pairs) / n, 4) if n else 0.0,
            "unscored_predictions": self.unscored,
            "unmentioned_predictions": self.unmentioned,
            "liked": self.counts(1).to_dict(),
            "disliked": self.counts(-1).to_dict(),
            "baseline_liked": self.counts(1, baseline=True).to_dict(),
            "baseline_disliked": self.counts(-1, baseline=True).to_dict(),
        }


def score(
    dialogues: Iterable[dict], linker: Linker, key_of: Callable[[str], str | None] | None = None, progress: bool = False
) -> Report:
    """Replay and score dialogues. ``key_of`` maps a movie's "Title (Year)" to the id the
    linker uses for it (None: not in its catalog); by default the linker resolves the title."""

    def default_key(name: str) -> str | None:
        item = linker.resolve(*split_title_year(name))
        return item.id if item else None

    key_of = key_of or default_key
    dialogues = list(dialogues)
    if progress:
        from tqdm import tqdm

        dialogues = tqdm(dialogues, desc=f"dialogues ({linker.catalog.name})", unit="dlg")
    report = Report()
    for d in dialogues:
        report.dialogues += 1
        belief = extract(d, linker)
        found = {m.value for text in seeker_messages(d) for m in linker.mentions(text) if m.kind == "item"}
        liked, disliked, seen = set(belief.liked_items), set(belief.disliked_items), set(belief.seen)
        gold = gold_labels(d)
        keys = {m: key_of(_name(d, m)) for m in seeker_mentions(d)}
        for movie_id, polarity in gold.items():
            k = keys[movie_id]
            predicted = 1 if k in liked else -1 if k in disliked else 0
            report.pairs.append(
                Pair(
                    str(d["conversationId"]),
                    _name(d, movie_id),
                    polarity,
                    predicted,
                    k in seen,
                    k is not None,
                    k in found,
                )
            )
        mentioned = {k for k in keys.values() if k}
        scored = {keys[m] for m in gold}
        report.unscored += len((liked | disliked) & (mentioned - scored))
        report.unmentioned += len((liked | disliked) - mentioned)
    return report


def demo_keys(demo: Linker) -> Callable[[str], str | None]:
    """ReDial "Title (Year)" -> demo catalog id, by normalised title and year (±1)."""

    def key_of(name: str) -> str | None:
        title, year = split_title_year(name)
        item = demo.resolve(title, year)
        return item.id if item else None

    return key_of


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def table(rows: list[tuple[str, dict]]) -> str:
    head = (
        "| variant | pairs (liked / disliked) | match | linked "
        "| liked P | liked R | liked F1 | disliked P | disliked R | disliked F1 |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for label, s in rows:
        lk, dl = s["liked"], s["disliked"]
        lines.append(
            f"| {label} | {s['pairs']:,} ({s['gold_liked']:,} / {s['gold_disliked']:,}) | {_pct(s['match_rate'])}% "
            f"| {_pct(s['linked_rate'])}% | {_pct(lk['precision'])} | {_pct(lk['recall'])} | {_pct(lk['f1'])} "
            f"| {_pct(dl['precision'])} | {_pct(dl['recall'])} | {_pct(dl['f1'])} |"
        )
    return head + "\n".join(lines)


def print_errors(dialogues: list[dict], report: Report, limit: int) -> None:
    by_id = {str(d["conversationId"]): d for d in dialogues}
    wrong = [p for p in report.pairs if p.matched and p.predicted != p.gold]
    # Dislikes first: they are rare and what the rules are for.
    wrong.sort(key=lambda p: (p.gold != -1, p.predicted == 0))
    for p in wrong[:limit]:
        lines = [t for t in seeker_messages(by_id[p.dialogue]) if p.movie and p.movie in t]
        print(f"\n[{p.dialogue}] {p.movie}: gold {p.gold:+d}, predicted {p.predicted:+d}{' (seen)' if p.seen else ''}")
        for t in lines[:4]:
            print("   >", t[:200])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", nargs="+", default=[str(p) for p in DEFAULT_FILES], help="ReDial jsonl(.gz) files")
    ap.add_argument("--limit", type=int, default=0, help="score at most N dialogues (0 = all)")
    ap.add_argument("--movies", default=str(MOVIES), help="ReDial movies_with_mentions.csv")
    ap.add_argument("--demo-catalog", default=str(DEMO_CATALOG), help="demo catalog; '' to skip that variant")
    ap.add_argument("--errors", type=int, default=0, help="print N misclassified examples")
    args = ap.parse_args()

    dialogues = load_dialogues(args.files)
    if args.limit:
        dialogues = dialogues[: args.limit]
    redial = Linker(load_redial_movies(args.movies))
    runs = [("ReDial movie list", score(dialogues, redial, progress=True))]
    if args.demo_catalog:
        demo = Linker(load_catalog(args.demo_catalog))
        runs.append(("demo catalog", score(dialogues, demo, demo_keys(demo), progress=True)))
    rows = [(label, r.summary()) for label, r in runs]
    base = rows[0][1]
    baseline = {**base, "liked": base["baseline_liked"], "disliked": base["baseline_disliked"], "linked_rate": 1.0}
    rows.append(("majority baseline (all liked)", baseline))
    text = table(rows)
    print(text)
    if args.errors:
        print_errors(dialogues, runs[0][1], args.errors)

    files = ", ".join(Path(f).name for f in args.files)
    command = "python bench/belief_extraction.py" + (f" --limit {args.limit}" if args.limit else "")
    header = (
        "# Belief extraction on ReDial seeker messages\n\n"
        f"Data: {files} ({len(dialogues):,} dialogues, deduplicated by conversationId). Command: `{command}`.\n"
        "Gold: the seeker's questionnaire `liked` (1 liked, 0 disliked; 2 not scored) for the movies the seeker "
        "mentioned. Predicted: the final belief after `crs.understand.nlu.understand` + `crs.state.apply` over the seeker's "
        'messages, with each `@id` written out as "Title (Year)". Micro-averaged over (dialogue, movie) pairs; '
        "P/R/F1 in %. *match*: the movie has an id in the linker's catalog (demo: same normalised title, year ±1); "
        "*linked*: the linker found the title in the seeker's messages.\n\n"
    )
    notes = "\n\n" + "\n".join(
        f"- {label}: {s['unscored_predictions']:,} predictions on mentioned movies without a rating (not scored), "
        f"{s['unmentioned_predictions']:,} on movies the seeker did not write as `@id` (typed titles or false links)."
        for label, s in rows[:-1]
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "belief_extraction.md").write_text(header + text + notes + "\n")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    (RESULTS / "belief_extraction.json").write_text(
        json.dumps({"machine": machine, "files": files, "command": command, "results": dict(rows)}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

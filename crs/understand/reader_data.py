"""Examples for the message reader: annotated ReDial seeker turns, written the way people type.

Each ``SeekerTurn`` with its labels (``knowledge/reader/redial_acts.jsonl.gz``, see
``docs/reader_annotation.md``) becomes an ``Example``: the message with every ``@movie`` written out
in one of the ways people type a title ("Title (Year)", "Title", "title", "titel" with a typo), the
other side's last words as context, the act labels, and one polarity label per linked span: the
marked movies (their annotated polarity), and whatever the ``Linker`` finds in the ordinary text
(genres, people, typed titles: the annotated polarity when an annotator listed it, else "none").
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crs.config import KNOWLEDGE_DIR
from crs.understand.redial_acts import ACTS, POLARITIES, MovieFact, SeekerTurn
from crs.understand.text import fold, tokenize

if TYPE_CHECKING:
    from crs.understand.linker import Linker

LABELS_PATH = KNOWLEDGE_DIR / "reader" / "redial_acts.jsonl.gz"
_AT = re.compile(r"@(\d+)")
STYLES = ("dated", "title", "lower", "typo")
STYLE_WEIGHTS = (0.35, 0.3, 0.25, 0.1)


@dataclass(frozen=True)
class Span:
    start: int  # character offsets in the message
    end: int
    label: str  # one of POLARITIES
    kind: str = "item"  # item | person | genre | keyword
    value: str = ""


@dataclass(frozen=True)
class Example:
    key: str
    text: str
    context: str
    acts: tuple[str, ...]
    spans: tuple[Span, ...] = field(default=())


def load_labels(path: Path = LABELS_PATH) -> dict[str, dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {rec["id"]: rec for rec in map(json.loads, fh) if rec.get("id")}


def typo(word: str, rng: random.Random) -> str:
    """One slip of the keyboard in a word of five letters or more: a letter dropped, doubled or
    swapped with its neighbour."""
    spots = [m for m in re.finditer(r"[A-Za-z]{5,}", word)]
    if not spots:
        return word
    m = rng.choice(spots)
    w = m.group()
    k = rng.randrange(1, len(w) - 1)
    kind = rng.choice(("drop", "double", "swap"))
    if kind == "drop":
        w = w[:k] + w[k + 1 :]
    elif kind == "double":
        w = w[:k] + w[k] + w[k:]
    else:
        w = w[: k - 1] + w[k] + w[k - 1] + w[k + 1 :]
    return word[: m.start()] + w + word[m.end() :]


def render_title(fact: MovieFact, style: str, rng: random.Random) -> str:
    title = re.sub(r"\s*\(\d{4}\)\s*$", "", fact.title).strip() or fact.title
    if style == "dated":
        return fact.title
    if style == "title":
        return title
    if style == "lower":
        return title.lower()
    return typo(title.lower() if rng.random() < 0.5 else title, rng)


def render(
    text: str, facts: dict[str, MovieFact], style: str | None, rng: random.Random
) -> tuple[str, list[tuple[int, int, str]]]:
    """``text`` with each ``@id`` written out; returns it and the (start, end, movie id) of each."""
    out, spans, pos = [], [], 0
    length = 0
    for m in _AT.finditer(text):
        out.append(text[pos : m.start()])
        length += m.start() - pos
        fact = facts.get(m.group(1))
        if fact is None:
            written = "that movie"
        else:
            chosen = style or rng.choices(STYLES, STYLE_WEIGHTS)[0]
            written = render_title(fact, chosen, rng)
            spans.append((length, length + len(written), fact.movie_id))
        out.append(written)
        length += len(written)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), spans


def context_text(turn: SeekerTurn) -> str:
    """The other side's last words, titles written "Title (Year)" as the agent writes them."""
    for role, text in reversed(turn.context):
        if role == "recommender":
            return render(text, turn.facts, "dated", random.Random(0))[0][:300]
        break
    return ""


def _matches(entry: str, span_text: str) -> bool:
    a, b = fold(entry), fold(span_text)
    if len(b) < 3:
        return a == b
    return b in a or (len(a) >= 3 and a in b)


def make_example(
    turn: SeekerTurn, label: dict, linker: Linker, rng: random.Random, style: str | None = None
) -> Example:
    text, marked = render(turn.text, turn.facts, style, rng)
    movies = label.get("movies") or {}
    spans = [Span(s, e, movies.get(mid, "neutral"), "item", mid) for s, e, mid in marked]
    taken = [(s, e) for s, e, _ in marked]
    other = label.get("other") or []
    tokens = None
    for m in linker.mentions(text):
        tokens = tokens or tokenize(text)
        s, e = tokens[m.start].start, tokens[m.end - 1].end
        if any(s < te and ts < e for ts, te in taken):
            continue
        polarity = next((p for words, p in other if _matches(words, m.text)), "none")
        spans.append(Span(s, e, polarity, m.kind, m.value))
        taken.append((s, e))
    acts = tuple(a for a in label.get("acts") or [] if a in ACTS)
    return Example(turn.key, text, context_text(turn), acts, tuple(sorted(spans, key=lambda x: x.start)))


def examples(
    turns: Iterable[SeekerTurn], labels: dict[str, dict], linker: Linker, seed: int = 0, style: str | None = None
) -> list[Example]:
    rng = random.Random(seed)
    return [make_example(t, labels[t.key], linker, rng, style) for t in turns if t.key in labels]


def label_counts(items: Iterable[Example]) -> dict[str, dict[str, int]]:
    acts = {a: 0 for a in ACTS}
    pols = {p: 0 for p in POLARITIES}
    for ex in items:
        for a in ex.acts:
            acts[a] += 1
        for s in ex.spans:
            pols[s.label] += 1
    return {"acts": acts, "polarities": pols}


SYNTHETIC_PATH = KNOWLEDGE_DIR / "reader" / "synthetic.jsonl"


def synthetic_examples(path: Path = SYNTHETIC_PATH) -> list[Example]:
    """The hand-written messages of ``scripts/make_reader_synthetic.py`` (keys ``dev-*`` for dev)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        spans = tuple(Span(s["start"], s["end"], s["label"]) for s in rec.get("spans") or [])
        out.append(Example(rec["key"], rec["text"], rec["context"], tuple(rec["acts"]), spans))
    return out

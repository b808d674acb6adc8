"""A first profile from a long rating history, summarised as in LLM-TRSR (Zheng et al. 2024), with
the summary kept to what the history says.

The history is cut into blocks of ``block_size`` items and each block becomes ``TasteFacts``: per
genre, how many films of it were liked (rated 4 or more) and disliked (2 or less), and the films
loved and hated. ``hierarchical``: the blocks' facts are merged in groups of ``block_size`` until one
is left. ``recurrent``: a running summary is updated with each block in turn, older blocks weighing
``RECURRENT_DECAY`` less per block. The LLM then phrases the final facts for the person to read; the
phrasing is kept only when the profile parser reads back from it exactly the facts (else a plain
sentence built from them is shown), so the profile the user reads and edits says what the history
says. A free LLM summary of each block (the paper's way) lost to the three most frequent genres in
``bench/profiles.py``: the 135M model confuses likes with dislikes and echoes its prompt.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crs.catalog import split_title_year
from crs.config import ConfigError
from crs.llm.base import ChatModel, Message
from crs.llm.prompts import Prompts
from crs.profiles.text import parse_profile, render_profile
from crs.understand.linker import Linker

log = logging.getLogger(__name__)

METHODS = ("hierarchical", "recurrent")
MAX_SUMMARY_CHARS = 400  # a block summary longer than this is cut at a sentence
SUMMARY_TOKENS = 60


@dataclass(frozen=True)
class HistoryItem:
    label: str  # "Alien (1979)"
    genres: tuple[str, ...]
    rating: float | None = None  # 0.5-5 stars; None when unknown
    item_id: str = ""  # catalog id, when matched


@dataclass(frozen=True)
class Summary:
    draft: Draft
    method: str
    blocks: int
    llm_calls: int
    seconds: float


_ARTICLE = re.compile(r"^(.*), (The|A|An|L'|Le|La|Les|Il|El|Das|Der|Die)$")


def movielens_title(raw: str) -> tuple[str, int | None]:
    """MovieLens' "Matrix, The (1999)" or "Seven (a.k.a. Se7en) (1995)" -> ("The Matrix", 1999), ("Seven", 1995)."""
    title, year = split_title_year(raw)
    title = re.sub(r"\s*\([^()]*\)\s*$", "", title) or title  # an alternative title: "(a.k.a. Se7en)"
    if m := _ARTICLE.match(title):
        article = m.group(2) if m.group(2).endswith("'") else m.group(2) + " "
        title = article + m.group(1)
    return title, year


def blocks(items: Sequence[HistoryItem], size: int) -> list[list[HistoryItem]]:
    if size < 1:
        raise ConfigError(f"[profile] block_size must be at least 1, not {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def clean_summary(text: str) -> str:
    """One paragraph of at most MAX_SUMMARY_CHARS, ending at a sentence where it can."""
    text = re.sub(r"\s+", " ", text.replace("*", "").replace("#", "")).strip().strip('"')
    if len(text) > MAX_SUMMARY_CHARS:
        cut = text[:MAX_SUMMARY_CHARS]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = cut[: end + 1] if end > 40 else cut.rsplit(" ", 1)[0] + "…"
    return text


Generate = Callable[[list[list[Message]]], list[str]]  # prompts -> replies, in order (may batch)

LIKED, DISLIKED = 4.0, 2.0  # a rating at least / at most this is a like / a dislike
# A genre is liked when it is among the 3 most liked or holds this share of the liked films; chosen on
# ml-latest-small users that bench/profiles.py does not report (the highest recall at a precision no
# lower than the top-3 baseline's).
LIKED_SHARE = 0.3
RECURRENT_DECAY = 0.98  # per block, chosen the same way
MAX_FILMS = 3  # loved / hated films named in a profile


@dataclass(frozen=True)
class TasteFacts:
    """What a stretch of history says, counted: per genre, the weight of the films liked and disliked;
    the films loved (rated 4.5 or more) and hated (1.5 or less), newest last."""

    liked: tuple[tuple[str, float], ...] = ()
    disliked: tuple[tuple[str, float], ...] = ()
    n_liked: float = 0.0
    loved: tuple[str, ...] = ()
    hated: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: Sequence[HistoryItem]) -> TasteFacts:
        liked: Counter[str] = Counter()
        disliked: Counter[str] = Counter()
        n_liked = 0
        for it in items:
            if it.rating is None or it.rating >= LIKED:  # a film listed without a rating was chosen
                n_liked += 1
                liked.update(it.genres)
            elif it.rating <= DISLIKED:
                disliked.update(it.genres)
        loved = tuple(it.label for it in items if it.rating is not None and it.rating >= 4.5)
        hated = tuple(it.label for it in items if it.rating is not None and it.rating <= 1.5)
        return cls(tuple(liked.items()), tuple(disliked.items()), float(n_liked), loved, hated)

    def merged(self, newer: TasteFacts, decay: float = 1.0) -> TasteFacts:
        """These facts, weighed by ``decay``, followed by ``newer`` ones."""

        def add(
            old: tuple[tuple[str, float], ...], new: tuple[tuple[str, float], ...]
        ) -> tuple[tuple[str, float], ...]:
            out = {g: w * decay for g, w in old}
            for g, w in new:
                out[g] = out.get(g, 0.0) + w
            return tuple(out.items())

        return TasteFacts(
            add(self.liked, newer.liked),
            add(self.disliked, newer.disliked),
            self.n_liked * decay + newer.n_liked,
            tuple(dict.fromkeys(self.loved + newer.loved)),
            tuple(dict.fromkeys(self.hated + newer.hated)),
        )

    def liked_genres(self) -> list[str]:
        """The 3 genres most liked, and any other that holds ``LIKED_SHARE`` of the liked films; most liked first."""
        ranked = sorted(self.liked, key=lambda gw: (-gw[1], gw[0]))
        return [g for k, (g, w) in enumerate(ranked) if w > 0 and (k < 3 or w >= LIKED_SHARE * self.n_liked)]

    def disliked_genres(self) -> list[str]:
        """At most two genres disliked more often than liked (twice at least), and not among the liked."""
        liked = dict(self.liked)
        keep = set(self.liked_genres())
        ranked = sorted(self.disliked, key=lambda gw: (-gw[1], gw[0]))
        return [g for g, w in ranked if w >= 2 and w > liked.get(g, 0.0) and g not in keep][:2]

    def loved_films(self) -> list[str]:
        return list(self.loved[-MAX_FILMS:])

    def hated_films(self) -> list[str]:
        return [f for f in self.hated[-MAX_FILMS:] if f not in self.loved]


@dataclass(frozen=True)
class Draft:
    """A first profile: the facts, and the paragraph that states them."""

    facts: TasteFacts
    paragraph: str
    phrased: bool  # the LLM's wording was kept (it stated exactly the facts)


def combine(items: Sequence[HistoryItem], block_size: int = 5, method: str = "hierarchical") -> TasteFacts:
    """The facts of a history (oldest first), block by block: merged in a tree, or run through recurrently."""
    if method not in METHODS:
        raise ConfigError(f"[profile] method must be one of {', '.join(METHODS)}, not {method!r}")
    level = [TasteFacts.of(b) for b in blocks(items, block_size)]
    if not level:
        raise ValueError("a history is empty: nothing to summarise")
    if method == "recurrent":
        running = level[0]
        for facts in level[1:]:
            running = running.merged(facts, RECURRENT_DECAY)
        return running
    group = max(2, block_size)
    while len(level) > 1:
        merged = []
        for i in range(0, len(level), group):
            node = level[i]
            for facts in level[i + 1 : i + group]:
                node = node.merged(facts)
            merged.append(node)
        level = merged
    return level[0]


def plain_paragraph(facts: TasteFacts) -> str:
    """The facts in plain sentences, addressed to the person."""
    parts = []
    if genres := facts.liked_genres():
        parts.append(f"You most often enjoy {_join(genres)} films.")
    if films := facts.loved_films():
        parts.append(f"Lately you loved {_join(films)}.")
    if genres := facts.disliked_genres():
        parts.append(f"You tend to dislike {_join(genres)} films.")
    return " ".join(parts) or "Your ratings do not show a clear taste yet."


def states(paragraph: str, facts: TasteFacts, linker: Linker) -> bool:
    """Whether a paragraph says exactly the facts: the liked and disliked genres, and no film or other
    genre, person or theme besides the loved and hated films."""
    prefs = parse_profile(paragraph, linker).update.preferences
    genres = {(p.value, p.polarity > 0) for p in prefs if p.kind == "genre"}
    want = {(g, True) for g in facts.liked_genres()} | {(g, False) for g in facts.disliked_genres()}
    films = {p.value for p in prefs if p.kind == "item"}
    known = {it.id for label in facts.loved + facts.hated if (it := linker.resolve(*split_title_year(label)))}
    others = [p for p in prefs if p.kind not in ("genre", "item")]
    # Spoken to the person ("you"), in sentences: no "they", "user", or a prompt field said back ("Films they loved:").
    echo = _NOT_TO_YOU.search(paragraph) is not None
    return genres == want and films <= known and not others and not echo


_NOT_TO_YOU = re.compile(r"\b(?:they|their|them|user|users|person)\b|:", re.I)


def summarise_many(
    histories: Sequence[Sequence[HistoryItem]],
    generate: Generate,
    linker: Linker,
    prompts: Prompts | None = None,
    block_size: int = 5,
    method: str = "hierarchical",
    on_calls: Callable[[int], None] | None = None,
) -> list[Draft]:
    """Summarise several histories (each oldest first): their facts, then one batch of LLM phrasings
    (``on_calls(n)`` after it), each kept only where it states its facts."""
    if not histories or any(not h for h in histories):
        raise ValueError("a history is empty: nothing to summarise")
    prompts = prompts or Prompts()
    facts = [combine(h, block_size, method) for h in histories]
    requests = [
        prompts.render(
            "profile_phrase",
            likes=f.liked_genres(),
            loved=f.loved_films(),
            dislikes=f.disliked_genres(),
            plain=plain_paragraph(f),
        )
        for f in facts
    ]
    replies = generate(requests)
    if on_calls is not None:
        on_calls(len(requests))
    drafts = []
    for f, reply in zip(facts, replies, strict=True):
        text = clean_summary(reply)
        kept = bool(text) and states(text, f, linker)
        drafts.append(Draft(f, text if kept else plain_paragraph(f), kept))
    return drafts


def summarise(
    items: Sequence[HistoryItem],
    llm: ChatModel,
    linker: Linker,
    prompts: Prompts | None = None,
    block_size: int = 5,
    method: str = "hierarchical",
) -> Summary:
    """Summarise one history (oldest first): its facts, phrased by the LLM in one call."""
    started = time.perf_counter()

    def generate(batch: list[list[Message]]) -> list[str]:
        return [llm.generate(messages, max_new_tokens=SUMMARY_TOKENS, temperature=0.0) for messages in batch]

    (draft,) = summarise_many([items], generate, linker, prompts, block_size, method)
    return Summary(draft, method, len(blocks(items, block_size)), 1, time.perf_counter() - started)


def profile_text(draft: Draft) -> str:
    """The first profile: the paragraph, and the facts as lists (genres, then the films)."""
    facts = draft.facts
    likes = facts.liked_genres() + facts.loved_films()
    dislikes = facts.disliked_genres() + facts.hated_films()
    return render_profile(draft.paragraph, likes, dislikes)


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

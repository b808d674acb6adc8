"""A first profile from a long rating history, summarised as in LLM-TRSR (Zheng et al. 2024).

The history is cut into blocks of ``block_size`` items. ``hierarchical``: each block is
summarised, then groups of ``block_size`` summaries are summarised again until one is left.
``recurrent``: a running summary is updated with each block in turn. The summary becomes the
profile's paragraph; what ``parse_profile`` reads from it becomes its likes and dislikes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crs import nlu
from crs.catalog import split_title_year
from crs.config import ConfigError
from crs.llm import ChatModel, Message
from crs.profile import entry_label, parse_profile, render_profile
from crs.prompts import Prompts

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

    def line(self) -> str:
        genres = f" [{', '.join(self.genres[:3])}]" if self.genres else ""
        rating = f": {self.rating:g}/5" if self.rating is not None else ""
        return f"{self.label}{genres}{rating}"


@dataclass(frozen=True)
class Summary:
    text: str
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


def summarise_many(
    histories: Sequence[Sequence[HistoryItem]],
    generate: Generate,
    prompts: Prompts | None = None,
    block_size: int = 5,
    method: str = "hierarchical",
    on_calls: Callable[[int], None] | None = None,
) -> list[str]:
    """Summarise several histories (each oldest first) step by step, so ``generate`` can run the
    same step of every history as one batch; ``on_calls(n)`` after each step of n LLM calls."""
    if method not in METHODS:
        raise ConfigError(f"[profile] method must be one of {', '.join(METHODS)}, not {method!r}")
    if not histories or any(not h for h in histories):
        raise ValueError("a history is empty: nothing to summarise")
    prompts = prompts or Prompts()
    parts = [blocks(h, block_size) for h in histories]

    def run(requests: list[tuple[str, dict[str, object]]]) -> list[str]:
        replies = generate([prompts.render(name, **variables) for name, variables in requests])
        if on_calls is not None:
            on_calls(len(requests))
        return [clean_summary(r) for r in replies]

    def lines(block: list[HistoryItem]) -> list[str]:
        return [it.line() for it in block]

    if method == "recurrent":
        summaries = run([("profile_block", {"items": lines(p[0])}) for p in parts])
        for step in range(1, max(len(p) for p in parts)):
            active = [u for u, p in enumerate(parts) if step < len(p)]
            out = run(
                [("profile_recurrent", {"summary": summaries[u], "items": lines(parts[u][step])}) for u in active]
            )
            for u, text in zip(active, out, strict=True):
                summaries[u] = text or summaries[u]
        return summaries
    flat = run([("profile_block", {"items": lines(b)}) for p in parts for b in p])
    levels: list[list[str]] = []
    for p in parts:
        levels.append(flat[: len(p)])
        flat = flat[len(p) :]
    group = max(2, block_size)
    while any(len(level) > 1 for level in levels):
        requests, owners = [], []
        for u, level in enumerate(levels):
            if len(level) > 1:
                for i in range(0, len(level), group):
                    requests.append(("profile_merge", {"summaries": [s for s in level[i : i + group] if s] or ["-"]}))
                    owners.append(u)
        out = run(requests)
        for u in set(owners):
            levels[u] = []
        for u, text in zip(owners, out, strict=True):
            levels[u].append(text)
    return [level[0] for level in levels]


def summarise(
    items: Sequence[HistoryItem],
    llm: ChatModel,
    prompts: Prompts | None = None,
    block_size: int = 5,
    method: str = "hierarchical",
    progress: bool = False,
) -> Summary:
    """Summarise one history (oldest first) with the LLM, one call at a time."""
    started = time.perf_counter()
    calls = 0
    n_blocks = len(blocks(items, block_size)) if items else 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=calls_needed(n_blocks, block_size, method), desc=f"profile ({method})", unit="call")

    def generate(batch: list[list[Message]]) -> list[str]:
        nonlocal calls
        out = []
        for messages in batch:
            out.append(llm.generate(messages, max_new_tokens=SUMMARY_TOKENS, temperature=0.0))
            calls += 1
            if bar is not None:
                bar.update(1)
        return out

    try:
        (text,) = summarise_many([items], generate, prompts, block_size, method)
    finally:
        if bar is not None:
            bar.close()
    return Summary(text, method, n_blocks, calls, time.perf_counter() - started)


def calls_needed(n_blocks: int, block_size: int, method: str) -> int:
    if method == "recurrent":
        return n_blocks
    total, level, group = n_blocks, n_blocks, max(2, block_size)
    while level > 1:
        level = -(-level // group)
        total += level
    return total


def profile_text(summary: str, linker: nlu.Linker, history_ids: set[str] | None = None) -> str:
    """The first profile: the summary and, as lists, the preferences read from it. Titles the
    model named that are not in the history (``history_ids``) are not listed."""
    parse = parse_profile(summary, linker)
    likes, dislikes = [], []
    for p in parse.update.preferences:
        if p.kind == "item" and history_ids is not None and p.value not in history_ids:
            continue
        (likes if p.polarity > 0 else dislikes).append(entry_label(p, linker.catalog))
    return render_profile(summary, list(dict.fromkeys(likes)), list(dict.fromkeys(dislikes)))

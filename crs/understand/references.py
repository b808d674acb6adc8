"""References to what the agent has just shown: "the fourth one", "the last one", "both of those",
"it", "that one", "the Keanu one", "the one with Keanu", "the horror one".

``find_references`` reads them from a message against the items of the last recommendation (in the
order shown) and the item in focus (the one the last answer or explanation was about), so that a
question, "seen", an accept or a reject attaches to the right film.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crs.understand.text import Token, fold, tokenize

if TYPE_CHECKING:
    from crs.catalog import Item
    from crs.understand.linker import Mention

ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3, "fifth": 4, "5th": 4,
    "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "top": 0, "last": -1, "final": -1, "bottom": -1,
}  # fmt: skip
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
_NOUNS = frozenset(
    "one ones film films movie movies pick picks option options suggestion suggestions choice title".split()
)
_PLURAL = frozenset("those them these all both".split())
_SINGULAR_NEXT = frozenset("one film movie pick".split())
_AFTER_THAT = frozenset("sounds looks seems is was s one film movie".split())


@dataclass(frozen=True)
class Reference:
    """Shown items a span of the message points at."""

    item_ids: tuple[str, ...]
    start: int  # token span
    end: int
    how: str  # ordinal | plural | pronoun | descriptor | title


_SELECTORS = (["one", "with"], ["one", "starring"], ["one", "by"], ["one", "from"])


def selects(words: Sequence[str], start: int) -> bool:
    """Whether the words before a mention pick a film out by it: "the one with keanu"."""
    return list(words[max(0, start - 2) : start]) in _SELECTORS


def find_references(
    text: str,
    shown: Sequence[Item],
    focus: Item | None = None,
    mentions: Sequence[Mention] = (),
    tokens: list[Token] | None = None,
) -> list[Reference]:
    """Every reference to a shown item (or the focus item) in ``text``, in order."""
    tokens = tokens if tokens is not None else tokenize(text)
    if not shown and focus is None:
        return []
    words = [t.norm for t in tokens]
    out: list[Reference] = []
    used: set[int] = set()

    def add(ids: Sequence[str], start: int, end: int, how: str) -> None:
        if ids and not used.intersection(range(start, end)):
            out.append(Reference(tuple(dict.fromkeys(ids)), start, end, how))
            used.update(range(start, end))

    # Films named by title that are among those shown.
    shown_ids = [it.id for it in shown]
    for m in mentions:
        if m.kind == "item" and (m.value in shown_ids or (focus is not None and m.value == focus.id)):
            add([m.value], m.start, m.end, "title")
    # Descriptors: "the one with keanu", "the one starring X", "the keanu one", "the horror movie".
    for m in mentions:
        if m.kind not in ("person", "genre", "keyword") or not shown:
            continue
        fits = [it.id for it in shown if _has(it, m.kind, m.value)]
        if not fits or len(fits) == len(shown):
            continue  # describes none of them, or all of them alike
        if selects(words, m.start):
            first = m.start - 3 if m.start >= 3 and words[m.start - 3] == "the" else m.start - 2
            add(fits[:1], first, m.end, "descriptor")
        elif m.start > 0 and words[m.start - 1] == "the" and m.end < len(words) and words[m.end] in _SINGULAR_NEXT:
            add(fits[:1], m.start - 1, m.end + 1, "descriptor")
    for k, w in enumerate(words):
        if k in used:
            continue
        nxt = words[k + 1] if k + 1 < len(words) else ""
        # "the first two", "top 3", "first and third", "the fourth one", "the 2nd", "#3", "number 2"
        if w in ORDINALS and shown and not (w == "top" and nxt not in _NOUNS and nxt not in NUMBERS):
            idx = [ORDINALS[w]]
            end = k + 1
            if nxt in NUMBERS and w in {"first", "top", "last"}:
                n = NUMBERS[nxt]
                idx = list(range(n)) if w != "last" else list(range(-n, 0))
                end = k + 2
            elif nxt in {"and", "or"} and k + 2 < len(words) and words[k + 2] in ORDINALS:
                idx.append(ORDINALS[words[k + 2]])
                end = k + 3
            if end < len(words) and words[end] in _NOUNS:
                end += 1
            ids = [shown[i].id for i in idx if -len(shown) <= i < len(shown)]
            if w in {"first", "last"} and end == k + 1 and not _ordinal_context(words, k):
                continue  # "first time", "at last", "last night": no position in a list
            add(ids, k, end, "ordinal")
        elif (w == "number" or (w == "no" and _hash_or_dot(text, tokens, k))) and nxt in NUMBERS and shown:
            i = NUMBERS[nxt] - 1
            if i < len(shown):
                add([shown[i].id], k, k + 2, "ordinal")
        elif w in NUMBERS and k > 0 and text[tokens[k].start - 1 : tokens[k].start] == "#" and shown:
            i = NUMBERS[w] - 1
            if i < len(shown):
                add([shown[i].id], k, k + 1, "ordinal")
        elif w == "both" and shown:
            add([it.id for it in shown[:2]], k, k + (3 if nxt == "of" else 1), "plural")
        elif w in _PLURAL - {"both", "all"} and shown and _plural_object(words, k):
            add([it.id for it in shown], k, k + 1, "plural")
        elif w == "all" and nxt in {"of", "those", "them", "these"} and shown:
            add([it.id for it in shown], k, k + (3 if nxt == "of" else 2), "plural")
        elif w in {"it", "that", "this"} and (
            w == "it" or nxt in _AFTER_THAT or not nxt or _clause_end(text, tokens, k)
        ):
            target = focus or (shown[0] if shown else None)
            if target is not None and not (w == "it" and nxt in {"s", "is"} and _impersonal(words, k)):
                end = k + (2 if nxt in _SINGULAR_NEXT else 1)
                add([target.id], k, end, "pronoun")
    out.sort(key=lambda r: r.start)
    # "the second one looks good, I'll take it": a pronoun after a named or counted film is that film.
    kept: list[Reference] = []
    for r in out:
        if r.how == "pronoun" and any(k.how != "pronoun" for k in kept):
            continue
        kept.append(r)
    return kept


def _has(item: Item, kind: str, value: str) -> bool:
    want = fold(value)
    if kind == "person":
        return any(fold(c) == want for c in item.cast) or want in fold(item.summary[:300])
    if kind == "genre":
        return item.has_genre(value)
    return want in fold(item.summary)


def _ordinal_context(words: list[str], k: int) -> bool:
    """A bare "first"/"last" names a position when it follows "the" and ends its phrase."""
    return (
        k > 0
        and words[k - 1] in {"the", "your"}
        and (k + 1 >= len(words) or words[k + 1] not in {"time", "night", "week", "year", "month", "day"})
    )


def _plural_object(words: list[str], k: int) -> bool:
    """ "seen those", "loved them", "those look good": the plural is the films, not "those who"."""
    prev = words[k - 1] if k else ""
    nxt = words[k + 1] if k + 1 < len(words) else ""
    return nxt in {"", "are", "look", "looks", "sound", "seem", "all", "already", "before", "too", "either", "movies", "films", "ones"} or prev in {
        "seen", "saw", "watched", "love", "loved", "like", "liked", "hate", "hated", "of", "all", "both", "tried",
    }  # fmt: skip


def _clause_end(text: str, tokens: list[Token], k: int) -> bool:
    end = tokens[k].end
    return not text[end:].strip() or bool(re.match(r"\s*[,.;!?]", text[end:]))


def _impersonal(words: list[str], k: int) -> bool:
    """ "it's late", "it is what it is": an "it" that names no film."""
    after = words[k + 2 : k + 3] if k + 2 < len(words) else []
    return bool(after) and after[0] in {
        "late",
        "raining",
        "cold",
        "hot",
        "friday",
        "saturday",
        "sunday",
        "time",
        "ok",
        "okay",
        "fine",
    }


def _hash_or_dot(text: str, tokens: list[Token], k: int) -> bool:
    return text[tokens[k].end : tokens[k].end + 1] == "."

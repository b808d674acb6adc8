"""What a scripted dialogue's turn may expect, and how each expectation is checked against the turn.

``EXPECT_KEYS`` maps each key a dialogue file may use (``never_attributes``, ``must_items_any``,
``reply_contains_any``, ``answer_about``, ...) to its value parser and its check; a check gets a
``View`` of the turn (the final event, the catalog, the items of earlier turns) and the expected
value, and returns whether it passed and why.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crs.catalog import split_title_year
from crs.eval.report import alternatives, has_attribute, quote
from crs.state import BeliefState, FinalEvent

if TYPE_CHECKING:
    from crs.catalog import Catalog, Item


@dataclass
class View:
    """What a check sees: the turn's final event and the items of earlier turns."""

    final: FinalEvent
    catalog: Catalog
    earlier: list[list[Item]]  # items recommended at each earlier turn

    @property
    def belief(self) -> BeliefState:
        return self.final.belief

    @property
    def items(self) -> list[Item]:
        return list(self.final.items)

    @property
    def labels(self) -> list[str]:
        return [i.label for i in self.items]

    @property
    def previous(self) -> list[Item]:
        return next((items for items in reversed(self.earlier) if items), [])

    def label(self, item_id: str) -> str:
        item = self.catalog.get(item_id)
        return item.label if item else item_id


Check = Callable[[View, Any], tuple[bool, str]]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()


def _words(text: str) -> str:
    """Folded words joined by single spaces, padded, to find a title as whole words."""
    return " " + " ".join(re.findall(r"[a-z0-9]+", _fold(text))) + " "


def _attributes(belief: BeliefState, polarity: int) -> list[str]:
    return [p.value for p in belief.preferences if p.kind != "item" and p.polarity == polarity]


def _listing(values: Iterable[str]) -> str:
    return ", ".join(values) or "nothing"


def _attribute_check(polarity: int, present: bool) -> Check:
    what = "liked" if polarity > 0 else "disliked"

    def check(v: View, want: list[str]) -> tuple[bool, str]:
        have = _attributes(v.belief, polarity)
        folded = {h.casefold() for h in have}
        wrong = [w for w in want if bool(alternatives(w) & folded) != present]
        if wrong:
            verb = "not" if present else "still"
            return False, f"{verb} {what}: {', '.join(wrong)} ({what}: {_listing(have)})"
        return True, f"{what}: {_listing(have)}"

    return check


def _belief_items_check(which: str, present: bool) -> Check:
    def check(v: View, want: list[str]) -> tuple[bool, str]:
        ids = v.belief.seen if which == "seen" else v.belief.values("item", 1 if which == "liked" else -1)
        have = [v.label(i) for i in ids]
        wrong = [w for w in want if (w in have) != present]
        if wrong:
            return False, f"{'not' if present else 'wrongly'} {which}: {', '.join(wrong)} ({which}: {_listing(have)})"
        return True, f"{which}: {_listing(have)}"

    return check


def _needs_items(check: Callable[[View, Any], tuple[bool, str]]) -> Check:
    def wrapped(v: View, want: Any) -> tuple[bool, str]:
        if not v.items:
            return False, f"nothing was recommended (act {v.final.act!r})"
        return check(v, want)

    return wrapped


def _offenders(bad: list[str], what: str) -> tuple[bool, str]:
    return (False, f"{_listing(bad)} {what}") if bad else (True, "all recommended items comply")


def _check_never_attributes(v: View, want: list[str]) -> tuple[bool, str]:
    bad = [f"{i.label} has {w}" for i in v.items for w in want if has_attribute(i, w)]
    return _offenders(bad, "")


def _check_never_items(v: View, want: list[str]) -> tuple[bool, str]:
    return _offenders([w for w in want if w in v.labels], "recommended")


def _check_must_items_any(v: View, want: list[str]) -> tuple[bool, str]:
    if not want:
        return True, "no items listed"
    hits = [w for w in want if w in v.labels]
    return bool(hits), f"recommended: {_listing(hits or v.labels)}"


def _check_reply_contains_any(v: View, want: list[str]) -> tuple[bool, str]:
    reply = _fold(v.final.reply)
    hits = [w for w in want if _fold(w) in reply]
    return bool(hits), (f"reply mentions {_listing(hits)}" if hits else f"none in reply {quote(v.final.reply, 160)}")


def _check_answer_about(v: View, label: str) -> tuple[bool, str]:
    if v.final.act not in ("answer", "explain"):
        return False, f"act was {v.final.act!r}, not an answer"
    title = split_title_year(label)[0]
    if _words(title) in _words(v.final.reply):
        return True, f"the reply names {title}"
    return False, f"{title} not named in reply {quote(v.final.reply, 160)}"


def _year_bound(low: bool) -> Check:
    @_needs_items
    def check(v: View, year: int) -> tuple[bool, str]:
        outside = (lambda y: y < year) if low else (lambda y: y > year)
        bad = [i.label for i in v.items if not i.year or outside(i.year)]
        return _offenders(bad, f"{'before' if low else 'after'} {year} (or without a year)")

    return check


@_needs_items
def _check_all_have(v: View, spec: str) -> tuple[bool, str]:
    return _offenders([i.label for i in v.items if not has_attribute(i, spec)], f"lack {spec}")


@_needs_items
def _check_any_have(v: View, spec: str) -> tuple[bool, str]:
    hits = [i.label for i in v.items if has_attribute(i, spec)]
    return bool(hits), (f"{_listing(hits)} have {spec}" if hits else f"none has {spec}: {_listing(v.labels)}")


def _relative_year(newer: bool) -> Check:
    @_needs_items
    def check(v: View, _: bool) -> tuple[bool, str]:
        years = [i.year for i in v.previous if i.year]
        if not years:
            return False, "no earlier recommendations with a year to compare with"
        bound = max(years) if newer else min(years)
        bad = [i.label for i in v.items if not i.year or (i.year <= bound if newer else i.year >= bound)]
        return _offenders(bad, f"not {'after' if newer else 'before'} {bound}")

    return check


def _check_no_repeats(v: View, _: bool) -> tuple[bool, str]:
    before = {i.id for items in v.earlier for i in items}
    return _offenders([i.label for i in v.items if i.id in before], "shown before")


# key -> (value kind, check). Kinds: act, labels, attributes (lists of strings), attribute
# and label (a string), count, year, true.
EXPECT_KEYS: dict[str, tuple[str, Check]] = {
    "act": ("act", lambda v, want: (v.final.act == want, f"act was {v.final.act!r}")),
    "liked_attributes": ("attributes", _attribute_check(1, True)),
    "disliked_attributes": ("attributes", _attribute_check(-1, True)),
    "not_liked_attributes": ("attributes", _attribute_check(1, False)),
    "not_disliked_attributes": ("attributes", _attribute_check(-1, False)),
    "never_attributes": ("attributes", _check_never_attributes),
    "items_all_have_attribute": ("attribute", _check_all_have),
    "items_any_have_attribute": ("attribute", _check_any_have),
    "min_items": ("count", lambda v, n: (len(v.items) >= n, f"{len(v.items)} recommended")),
    "max_items": ("count", lambda v, n: (len(v.items) <= n, f"{len(v.items)} recommended")),
    "never_items": ("labels", _check_never_items),
    "must_items_any": ("labels", _check_must_items_any),
    "liked_items": ("labels", _belief_items_check("liked", True)),
    "disliked_items": ("labels", _belief_items_check("disliked", True)),
    "seen_items": ("labels", _belief_items_check("seen", True)),
    "not_liked_items": ("labels", _belief_items_check("liked", False)),
    "not_disliked_items": ("labels", _belief_items_check("disliked", False)),
    "reply_contains_any": ("attributes", _check_reply_contains_any),
    "answer_about": ("label", _check_answer_about),
    "year_min": ("year", _year_bound(low=True)),
    "year_max": ("year", _year_bound(low=False)),
    "newer_than_previous": ("true", _relative_year(newer=True)),
    "older_than_previous": ("true", _relative_year(newer=False)),
    "no_repeats": ("true", _check_no_repeats),
}

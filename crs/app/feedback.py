"""Feedback from the UI, as pure belief updates: thumbs up/down and "seen it" on a card, and
removing a chip (a like, a dislike, a seen film or a year limit) from the belief panel.

Chips are addressed by a string key so a UI can hold them as plain values:
``pref:<kind>:<value>`` for a preference, ``seen:<item id>`` and ``limit:<constraint kind>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from crs.state import BeliefState, BeliefUpdate, Preference, apply

if TYPE_CHECKING:
    from crs.catalog import Catalog

Action = Literal["up", "down", "seen"]
Group = Literal["likes", "dislikes", "seen", "limits"]
ACTIONS: tuple[Action, ...] = ("up", "down", "seen")
GROUPS: tuple[Group, ...] = ("likes", "dislikes", "seen", "limits")


@dataclass(frozen=True)
class Chip:
    group: Group
    key: str  # see the module docstring
    label: str


def rate_item(belief: BeliefState, item_id: str, action: Action, turn: int = 0) -> BeliefState:
    """A card's button: "up" adds a liked item, "down" a disliked one (a newer rating of the
    same item replaces the older), "seen" records it as seen without judging it."""
    if action == "seen":
        return apply(belief, BeliefUpdate(seen=(item_id,)))
    if action not in ("up", "down"):
        raise ValueError(f"unknown card action {action!r}; expected up, down or seen")
    polarity = 1 if action == "up" else -1
    pref = Preference("item", item_id, polarity, turn=turn, source="ui", text=f"thumbs {action}")
    return apply(belief, BeliefUpdate(preferences=(pref,)))


def remove_chip(belief: BeliefState, key: str) -> BeliefState:
    """Forget what a chip stands for; an unknown or stale key changes nothing."""
    head, _, rest = key.partition(":")
    if head == "pref":
        kind, _, value = rest.partition(":")
        return apply(belief, BeliefUpdate(retract=((kind, value),)))
    if head == "seen":
        return replace(belief, seen=tuple(s for s in belief.seen if s != rest))
    if head == "limit":
        return replace(belief, constraints=tuple(c for c in belief.constraints if c.kind != rest))
    return belief


def chips(belief: BeliefState, catalog: Catalog | None = None) -> list[Chip]:
    """Everything the belief holds, as removable chips, in the order it was said."""

    def item_label(item_id: str) -> str:
        item = catalog.get(item_id) if catalog is not None else None
        return item.label if item is not None else item_id

    out = []
    for p in belief.preferences:
        label = item_label(p.value) if p.kind == "item" else p.value
        if p.kind == "person":
            label = f"{label} (person)"
        elif p.kind == "keyword":
            label = f"{'more' if p.polarity > 0 else 'less'} {label}"
        out.append(Chip("likes" if p.polarity > 0 else "dislikes", f"pref:{p.kind}:{p.value}", label))
    out += [Chip("seen", f"seen:{i}", item_label(i)) for i in belief.seen]
    for c in belief.constraints:
        label = f"from {c.value} on" if c.kind == "year_min" else f"up to {c.value}"
        out.append(Chip("limits", f"limit:{c.kind}", label))
    return out


def removed_keys(before: list[str], after: list[str] | None) -> list[str]:
    """The chips a multi-select lost between two values (None: all of them)."""
    kept = set(after or [])
    return [k for k in before if k not in kept]


def visible_cards(card_ids: tuple[str, ...], belief: BeliefState) -> tuple[str, ...]:
    """The cards still worth showing: rejected and seen films leave; liked ones stay."""
    gone = set(belief.disliked_items) | set(belief.seen)
    return tuple(i for i in card_ids if i not in gone)

"""The one exclusion check: what the user ruled out, built from the belief.

Every place that must never show a rejected film uses this: the store's metadata filter (through
``retrieve``), ``retrieve`` itself (people, which the store cannot filter), ``score``, the agent's
last guard before the picks are shown, and the scripted evaluation's violation count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crs.catalog import Item
    from crs.state import BeliefState


@dataclass(frozen=True)
class Exclusion:
    item_ids: frozenset[str] = frozenset()  # rejected, seen, named as liked (known already), accepted, shown
    genres: frozenset[str] = frozenset()  # case-folded
    people: frozenset[str] = frozenset()  # case-folded
    year_min: int | None = None
    year_max: int | None = None

    @classmethod
    def from_belief(cls, belief: BeliefState, shown: bool = True) -> Exclusion:
        """What ``belief`` rules out; with ``shown``, also every film recommended before."""
        ids = set(belief.excluded_items) | (set(belief.shown) if shown else set())
        return cls(
            frozenset(ids),
            frozenset(g.casefold() for g in belief.disliked_genres),
            frozenset(p.casefold() for p in belief.values("person", -1)),
            belief.year_min,
            belief.year_max,
        )

    def reasons(self, item: Item) -> list[str]:
        """Why ``item`` may not be shown (empty: it may)."""
        why = [f"rejected genre {g}" for g in item.genres if g.casefold() in self.genres]
        why += [f"rejected person {c}" for c in item.people if c.casefold() in self.people]
        if item.id in self.item_ids:
            why.append("rejected, seen or already shown")
        if (self.year_min or self.year_max) and not item.year:
            why.append("no year, and years are limited")
        elif self.year_min and item.year and item.year < self.year_min:
            why.append(f"before {self.year_min}")
        elif self.year_max and item.year and item.year > self.year_max:
            why.append(f"after {self.year_max}")
        return why

    def allows(self, item: Item) -> bool:
        return not self.reasons(item)

    def store_filter(self) -> dict[str, object]:
        """The part a metadata filter can apply (``ItemStore.search`` keyword arguments)."""
        return {
            "exclude_genres": sorted(self.genres),
            "exclude_ids": sorted(self.item_ids),
            "year_min": self.year_min,
            "year_max": self.year_max,
        }

    def describe(self) -> str:
        """What a search leaves out, in a few words: "3 films, Horror, years outside 1980–…"."""
        parts = [f"{len(self.item_ids)} films"] if self.item_ids else []
        parts += sorted(self.genres) + sorted(self.people)
        if self.year_min or self.year_max:
            parts.append(f"years outside {self.year_min or '…'}–{self.year_max or '…'}")
        return ", ".join(parts) or "nothing"

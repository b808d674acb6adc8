"""Conversation state: the belief over what the user likes and rejects, turns, and events.

Everything here is a plain dataclass; updates are pure functions that return a new belief.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from crs.catalog import Item

Kind = Literal["item", "genre", "person", "keyword"]
Polarity = Literal[1, -1]


@dataclass(frozen=True)
class Preference:
    """One thing the user said they like (+1) or reject (-1), and the turn it came from."""

    kind: Kind
    value: str  # an item id, a genre name, a person's name, a keyword
    polarity: Polarity
    turn: int = 0
    source: str = "rule"  # rule | llm | profile | ui
    text: str = ""  # the words it was read from, for explanations
    strength: float = 1.0  # 0.5 mild ("kind of like"), 1 plain, 1.5 strong ("love", "can't stand")

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.value.casefold())


@dataclass(frozen=True)
class Constraint:
    """A hard limit on what may be recommended ("nothing before 1980")."""

    kind: Literal["year_min", "year_max"]
    value: int
    turn: int = 0
    text: str = ""


@dataclass(frozen=True)
class BeliefUpdate:
    """What one message says, before it is merged into the belief."""

    preferences: tuple[Preference, ...] = ()
    seen: tuple[str, ...] = ()  # item ids the user has already seen (excluded, not disliked)
    retract: tuple[tuple[str, str], ...] = ()  # preference keys to forget
    constraints: tuple[Constraint, ...] = ()  # replace earlier constraints of the same kind
    accepted: tuple[str, ...] = ()  # recommended items the user took up

    def is_empty(self) -> bool:
        return not (self.preferences or self.seen or self.retract or self.constraints or self.accepted)

    def disliked_keys(self) -> set[tuple[str, str]]:
        return {(p.kind, p.value) for p in self.preferences if p.polarity < 0}

    def merged(self, other: BeliefUpdate) -> BeliefUpdate:
        """Both updates; where they speak of the same thing, ``other`` wins."""
        keys = {p.key for p in other.preferences} | {(k, v.casefold()) for k, v in other.retract}
        kinds = {c.kind for c in other.constraints}
        return BeliefUpdate(
            preferences=tuple(p for p in self.preferences if p.key not in keys) + other.preferences,
            seen=tuple(dict.fromkeys(self.seen + other.seen)),
            retract=self.retract + other.retract,
            constraints=tuple(c for c in self.constraints if c.kind not in kinds) + other.constraints,
            accepted=tuple(dict.fromkeys(self.accepted + other.accepted)),
        )


@dataclass(frozen=True)
class BeliefState:
    preferences: tuple[Preference, ...] = ()
    seen: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()  # item ids recommended so far, in order
    last_shown: tuple[str, ...] = ()  # the items of the latest recommendation, best first
    constraints: tuple[Constraint, ...] = ()
    accepted: tuple[str, ...] = ()
    focus: str | None = None  # the film the last answer or explanation was about ("who's in it?")

    def to_dict(self) -> dict[str, Any]:
        """The belief as plain JSON-able data (``Session.from_dict`` reads it back)."""
        return _plain(self)

    def constraint(self, kind: str) -> int | None:
        return next((c.value for c in self.constraints if c.kind == kind), None)

    @property
    def year_min(self) -> int | None:
        return self.constraint("year_min")

    @property
    def year_max(self) -> int | None:
        return self.constraint("year_max")

    def values(self, kind: Kind, polarity: Polarity) -> list[str]:
        return [p.value for p in self.preferences if p.kind == kind and p.polarity == polarity]

    @property
    def liked_items(self) -> list[str]:
        return self.values("item", 1)

    @property
    def disliked_items(self) -> list[str]:
        return self.values("item", -1)

    @property
    def liked_genres(self) -> list[str]:
        return self.values("genre", 1)

    @property
    def disliked_genres(self) -> list[str]:
        return self.values("genre", -1)

    @property
    def excluded_items(self) -> set[str]:
        """Items never to recommend: rejected, already seen, named as liked (already known) or
        taken up."""
        return set(self.disliked_items) | set(self.seen) | set(self.liked_items) | set(self.accepted)

    def is_empty(self) -> bool:
        return not (self.preferences or self.seen or self.constraints)


def apply(belief: BeliefState, update: BeliefUpdate) -> BeliefState:
    """Merge an update: a newer statement about the same thing replaces the older one."""
    retract = {(k, v.casefold()) for k, v in update.retract}
    new_keys = {p.key for p in update.preferences}
    kept = tuple(p for p in belief.preferences if p.key not in new_keys and p.key not in retract)
    seen = belief.seen + tuple(s for s in dict.fromkeys(update.seen) if s not in belief.seen)
    kinds = {c.kind for c in update.constraints}
    constraints = _consistent(tuple(c for c in belief.constraints if c.kind not in kinds), update.constraints)
    accepted = belief.accepted + tuple(a for a in dict.fromkeys(update.accepted) if a not in belief.accepted)
    return replace(belief, preferences=kept + update.preferences, seen=seen, constraints=constraints, accepted=accepted)


def _consistent(old: tuple[Constraint, ...], new: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
    """The constraints, never an empty year range: when a new bound crosses an older one ("the 90s"
    then "something newer"), the older bound goes; two new bounds that cross keep the lower one."""
    merged = old + new
    low = next((c for c in merged if c.kind == "year_min"), None)
    high = next((c for c in merged if c.kind == "year_max"), None)
    if low is None or high is None or low.value <= high.value:
        return merged
    drop = high if high in old else low if low in old else high
    return tuple(c for c in merged if c is not drop)


def dropped_constraints(before: BeliefState, after: BeliefState, update: BeliefUpdate) -> list[Constraint]:
    """Constraints of ``before`` that ``update`` removed without replacing their kind: a year bound
    that a newer, crossing bound pushed out."""
    replaced = {c.kind for c in update.constraints}
    return [c for c in before.constraints if c.kind not in replaced and c not in after.constraints]


def mark_shown(belief: BeliefState, item_ids: list[str]) -> BeliefState:
    """Record a recommendation: its items are never shown again, and critiques refer to it."""
    return replace(
        belief,
        shown=belief.shown + tuple(i for i in item_ids if i not in belief.shown),
        last_shown=tuple(item_ids) if item_ids else belief.last_shown,
        focus=None if item_ids else belief.focus,
    )


# ---- events the agent yields and the UI renders -------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, object]


@dataclass(frozen=True)
class ToolResult:
    name: str
    output: object
    summary: str  # one line for the UI
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class StateEvent:
    belief: BeliefState
    update: BeliefUpdate


@dataclass(frozen=True)
class ToolEvent:
    call: ToolCall
    result: ToolResult

    def without_output(self) -> ToolEvent:
        """The same call and summary, without the output (candidates, records: heavy, re-derivable)."""
        return self if self.result.output is None else replace(self, result=replace(self.result, output=None))


@dataclass(frozen=True)
class TokenEvent:
    text: str  # a chunk of the reply, already checked by the grounding guard


@dataclass(frozen=True)
class NoticeEvent:
    message: str  # something the user should know (input truncated, a fallback used)
    degraded: bool = False  # the turn fell back (the LLM or the item index failed); `crs chat --strict` fails


@dataclass(frozen=True)
class FinalEvent:
    reply: str
    items: tuple[Item, ...]  # recommended this turn
    belief: BeliefState
    act: str


Event = StateEvent | ToolEvent | TokenEvent | NoticeEvent | FinalEvent


@dataclass
class Turn:
    index: int
    user: str
    reply: str
    act: str
    item_ids: tuple[str, ...]
    update: BeliefUpdate
    tools: tuple[ToolEvent, ...] = ()
    # Preference keys a profile edit of this turn spoke of: it lifts an earlier "forget" of them.
    lifted: tuple[tuple[str, str], ...] = ()
    # stage -> seconds: read (= understand + belief), each tool, llm, guard, first_token, reply, total
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; tool outputs are left out (``Session.from_dict`` gives them back as None)."""
        return _plain(replace(self, tools=tuple(e.without_output() for e in self.tools)))


SESSION_FORMAT = 1  # the version of Session.to_dict's layout


@dataclass
class Session:
    """One user's conversation: mutable, owned by one browser tab or CLI run."""

    id: str = "local"
    user: str = "local"
    belief: BeliefState = field(default_factory=BeliefState)
    turns: list[Turn] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the belief and every turn (message, reply, act, items, update, and
        each tool call's name, arguments, summary and time). Tool outputs (candidates, records the
        agent reads again) are not kept; ``from_dict`` gives them back as None."""
        return {
            "format": SESSION_FORMAT,
            "id": self.id,
            "user": self.user,
            "belief": _plain(self.belief),
            "turns": [t.to_dict() for t in self.turns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        """A session saved by ``to_dict``; malformed data raises ``ValueError`` naming the part."""
        if not isinstance(data, Mapping) or data.get("format") != SESSION_FORMAT:
            raise ValueError(f"not a saved session of format {SESSION_FORMAT}")
        return cls(
            id=str(data.get("id", "local")),
            user=str(data.get("user", "local")),
            belief=_build(BeliefState, data.get("belief", {}), "belief"),
            turns=[_build(Turn, t, f"turns[{i}]") for i, t in enumerate(data.get("turns", []))],
        )


def _plain(value: Any) -> Any:
    """A dataclass tree as JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _build(tp: Any, value: Any, where: str) -> Any:
    """``value`` (from ``_plain``) as the type ``tp``: dataclasses, tuples, lists, optionals, literals."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        built = [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(built) if origin is tuple else built
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {args}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        return _build(next(a for a in args if a is not type(None)), value, where)
    if tp is object or origin is dict or tp is dict:
        return value
    if tp in (str, int, float, bool):
        if not isinstance(value, tp) and not (tp is float and isinstance(value, int)):
            raise ValueError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
        return tp(value)
    return value

"""What a message asks for beyond likes and dislikes: questions about an item, requests for
an explanation, critiques of the last recommendation, and year constraints.

``read_intent`` is deterministic and works with ``crs.understand.nlu`` (which reads preferences): the
agent merges both into one belief update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from crs.catalog import Catalog
from crs.state import BeliefState, BeliefUpdate, Constraint, Preference
from crs.understand.linker import Linker, Mention

IntentKind = Literal["none", "question", "explain"]
Reaction = Literal["accept", "reject"] | None
Field = Literal["director", "cast", "plot", "year", "genre", "general"]

_DECADE_WORDS = {
    "seventies": 1970, "eighties": 1980, "nineties": 1990, "twenties": 1920, "thirties": 1930,
    "forties": 1940, "fifties": 1950, "sixties": 1960,
}  # fmt: skip
_DECADE = re.compile(
    r"\b(?:(19|20)?(\d)0'?s|(seventies|eighties|nineties|twenties|thirties|forties|fifties|sixties))\b", re.I
)
_YEAR = r"((?:19|20)\d{2})"
_NOTHING_BEFORE = re.compile(rf"\bnothing (?:made |released )?(?:before|older than|earlier than)\s+{_YEAR}", re.I)
_NOTHING_AFTER = re.compile(rf"\bnothing (?:made |released )?(?:after|newer than|later than|since)\s+{_YEAR}", re.I)
_SINCE = re.compile(
    rf"\b(?:since|from|not before|no earlier than)\s+(?:the year\s+)?{_YEAR}|\b{_YEAR}\s+(?:or|and)\s+(?:later|newer|after)\b",
    re.I,
)
_AFTER = re.compile(rf"\b(?:after|newer than|later than)\s+{_YEAR}", re.I)
_UNTIL = re.compile(
    rf"\b(?:until|up to|not after|no later than)\s+{_YEAR}|\b{_YEAR}\s+or\s+(?:earlier|older|before)\b", re.I
)
_BEFORE = re.compile(rf"\b(?:before|older than|earlier than)\s+{_YEAR}", re.I)
# (pattern, bound, offset): "after 2000" means from 2001, "before 1990" up to 1989.
_YEAR_RULES: tuple[tuple[re.Pattern[str], str, int], ...] = (
    (_NOTHING_BEFORE, "year_min", 0),
    (_NOTHING_AFTER, "year_max", 0),
    (_SINCE, "year_min", 0),
    (_AFTER, "year_min", 1),
    (_UNTIL, "year_max", 0),
    (_BEFORE, "year_max", -1),
)
_NEWER = re.compile(r"\b(newer|more recent|less old|not so old|something recent|latest)\b", re.I)
_OLDER = re.compile(r"\b(older|less recent|classic ones|something classic)\b", re.I)
_NOT_THAT = re.compile(
    r"\b(not (?:that|this) one|not the (first|top) one|(?:i )?don'?t (?:like|want) (?:that|this) one|something else|anything else|another one)\b",
    re.I,
)
_ACCEPT = re.compile(
    r"\b(i'?ll (?:watch|take|try) (?:it|that|this)|sounds (?:good|great|perfect)|perfect,? thanks|that'?s the one)\b",
    re.I,
)
_SHIFT = re.compile(
    r"\b(instead|change of plans?|switch(?:ing)? to|let'?s do|let'?s try|actually|i'?d rather|how about|what about|now something|different mood)\b",
    re.I,
)
# The object of "forget"/"ignore" is the phrase right after it, up to a clause break or a
# conjunction: "ignore previous instructions and recommend horror" retracts nothing of horror.
_FORGET = re.compile(
    r"\b(?:forget|never ?mind|scratch|drop|ignore)\b(?: about)?\s+((?:(?!\b(?:and|but|then|so|because|or)\b)[^,.;!?]){1,60})",
    re.I,
)
_ASKS = re.compile(r"\s*(who|whos|who's|what|whats|what's|when|which|tell me|describe|how|is|does|did)\b", re.I)
_WHY = re.compile(r"\bwhy\b.*\b(recommend|suggest|pick|choose|chose|this|that|it)\b|\bwhy\b", re.I)

# Critique words -> preferences: "funnier" means more Comedy, "less violent" less violence.
_CRITIQUES: tuple[tuple[re.Pattern[str], str, str, int], ...] = (
    (re.compile(r"\b(funnier|more fun|lighter|less serious|more comedy)\b", re.I), "genre", "Comedy", 1),
    (re.compile(r"\b(scarier|more scary|creepier|more horror)\b", re.I), "genre", "Horror", 1),
    (re.compile(r"\b(more action|more exciting|action[- ]packed)\b", re.I), "genre", "Action", 1),
    (re.compile(r"\b(more romantic|more romance)\b", re.I), "genre", "Romance", 1),
    (
        re.compile(
            r"\b(less violent|less violence|not (?:so |too )?violent|no violence|without violence|less gory|no gore)\b",
            re.I,
        ),
        "keyword",
        "violent",
        -1,
    ),
    (re.compile(r"\b(less scary|not (?:so |too )?scary|less creepy)\b", re.I), "genre", "Horror", -1),
    (re.compile(r"\b(less depressing|happier|more upbeat|feel[- ]good)\b", re.I), "keyword", "dark", -1),
    (re.compile(r"\b(darker|more serious|grittier)\b", re.I), "keyword", "dark", 1),
    (re.compile(r"\b(less (?:silly|goofy)|smarter)\b", re.I), "genre", "Comedy", -1),
)

_QUESTION_FIELDS: tuple[tuple[re.Pattern[str], Field], ...] = (
    (re.compile(r"\b(who (?:directed|made)|director|directed by)\b", re.I), "director"),
    (re.compile(r"\b(who (?:stars|is|acts|plays|was)|who'?s in|cast|actors?|starring|stars in)\b", re.I), "cast"),
    (re.compile(r"\b(what(?:'s|s| is| was) .* about|about what|plot|story|synopsis|what happens)\b", re.I), "plot"),
    (re.compile(r"\b(when (?:was|did)|what year|which year|how old|release date|released)\b", re.I), "year"),
    (re.compile(r"\b(what (?:kind|genre|type)|which genre|genres?)\b", re.I), "genre"),
    (
        re.compile(
            r"\b(tell me (?:more )?about|what do you know about|info(?:rmation)? (?:on|about)|describe)\b", re.I
        ),
        "general",
    ),
)


@dataclass(frozen=True)
class Intent:
    kind: IntentKind = "none"
    item_id: str | None = None  # the item asked about, if any
    about: Field = "general"  # what a question asks
    update: BeliefUpdate = field(default_factory=BeliefUpdate)  # critiques, constraints, retractions
    critique: bool = False  # the message reacts to the last recommendation
    shift: bool = False  # "actually, comedies instead": new likes replace the old ones
    reaction: Reaction = None  # "sounds good" (accept) or "not that one" (reject) of a shown film


def _decade(text: str) -> tuple[int, int] | None:
    m = _DECADE.search(text)
    if not m:
        return None
    if m.group(3):
        start = _DECADE_WORDS[m.group(3).lower()]
    else:
        century = m.group(1) or ("20" if m.group(2) in "012" else "19")
        start = int(century + m.group(2) + "0")
    return start, start + 9


def year_constraints(text: str, belief: BeliefState, catalog: Catalog, turn: int) -> tuple[Constraint, ...]:
    """Year limits from the message: explicit years, decades, or "newer"/"older" than the
    last recommendation."""
    out: list[Constraint] = []
    for pattern, kind, offset in _YEAR_RULES:
        m = pattern.search(text)
        if m and kind not in {c.kind for c in out}:
            year = int(next(g for g in m.groups() if g))
            out.append(Constraint(kind, year + offset, turn, m.group(0)))  # type: ignore[arg-type]
            text = text[: m.start()] + " " + text[m.end() :]  # "nothing before 1980" is no upper bound
    if not out and (decade := _decade(text)):
        out += [Constraint("year_min", decade[0], turn, text), Constraint("year_max", decade[1], turn, text)]
    years = [y for y in (catalog.get(i).year for i in belief.last_shown if catalog.get(i)) if y]  # type: ignore[union-attr]
    if not out and years and _NEWER.search(text):
        # Newer than all the last picks, unless one of them is so recent that this leaves
        # almost nothing; then newer than most of them.
        latest = max((it.year for it in catalog if it.year), default=max(years))
        bound = max(years) if max(years) < latest - 1 else sorted(years)[len(years) // 2]
        out.append(Constraint("year_min", min(bound, latest - 2) + 1, turn, "newer than the last picks"))
    elif not out and years and _OLDER.search(text):
        out.append(Constraint("year_max", min(years) - 1, turn, "older than the last picks"))
    return tuple(out)


def question_field(text: str) -> Field:
    """What a question about a film asks: its director, cast, plot, year, genre, or all of it."""
    for pattern, fld in _QUESTION_FIELDS:
        if pattern.search(text):
            return fld
    return "general"


def read_intent(
    text: str,
    linker: Linker,
    belief: BeliefState,
    turn: int,
    mentions: list[Mention] | None = None,
    referent: str | None = None,
) -> Intent:
    """Questions, explanation requests, critiques, reactions and constraints in one message (rules).
    ``referent``: the shown film the message points at ("the fourth one"), when known."""
    catalog = linker.catalog
    mentions = linker.mentions(text) if mentions is None else mentions
    items = [m.value for m in mentions if m.kind == "item"]
    pointed = referent is not None
    if referent is None:
        referent = items[0] if items else (belief.last_shown[0] if belief.last_shown else None)
    prefs: list[Preference] = []
    critique = False
    for pattern, kind, value, polarity in _CRITIQUES:
        if m := pattern.search(text):
            words = [x.text.casefold() for x in mentions if (x.kind, x.value) == (kind, value)]
            if polarity < 0 and words and not any(w in m.group(0).casefold() for w in words):
                continue  # "a smarter comedy" asks for a comedy still, only a different one
            prefs.append(Preference(kind, value, polarity, turn=turn, source="critique", text=m.group(0)))  # type: ignore[arg-type]
            critique = True
    reaction: Reaction = None
    if belief.last_shown and _NOT_THAT.search(text) and not items:
        reaction, critique = "reject", True
    elif belief.last_shown and _ACCEPT.search(text):
        reaction = "accept"
    constraints = year_constraints(text, belief, catalog, turn)
    critique = critique or any(c.text.endswith("last picks") for c in constraints)
    retract: list[tuple[str, str]] = []
    for m in _FORGET.finditer(text):  # "forget horror", "never mind Tom Hanks"
        retract += [(x.kind, x.value) for x in linker.mentions(m.group(1))]
    update = BeliefUpdate(preferences=tuple(prefs), constraints=constraints, retract=tuple(retract))
    shift = bool(_SHIFT.search(text)) or bool(retract)

    is_question = "?" in text or _ASKS.match(text)
    if _WHY.search(text) and referent and (items or belief.last_shown or pointed):
        return Intent("explain", referent, "general", update, critique, shift, reaction)
    asked = items[0] if items and not pointed else referent if pointed else None
    if is_question and asked:
        fld = question_field(text)
        if fld != "general" or re.match(r"\s*(what|whats|tell me|describe)\b", text, re.I):
            return Intent("question", asked, fld, update, critique, shift, reaction)
    return Intent("none", None, "general", update, critique, shift, reaction)


def without_forgotten(text: str) -> str:
    """The message without what it asks to forget, so "forget horror" does not search for horror."""
    return _FORGET.sub(" ", text)


def shift_topic(update: BeliefUpdate, belief: BeliefState) -> BeliefUpdate:
    """On a topic shift with new likes, the old likes stop steering: liked genres, people and
    keywords are forgotten; liked films are kept as seen, so they are still never recommended."""
    fresh = {p.key for p in update.preferences if p.polarity > 0}
    if not fresh:
        return update
    said = {p.key for p in update.preferences}  # "westerns are boring, let's do musicals": keep -Western
    old = [p for p in belief.preferences if p.polarity > 0 and p.key not in said]
    return update.merged(
        BeliefUpdate(
            retract=tuple((p.kind, p.value) for p in old),
            seen=tuple(p.value for p in old if p.kind == "item"),
        )
    )

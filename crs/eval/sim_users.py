"""Simulated users: what one says to the agent about a hidden target without naming it. ``RulesUser``
speaks from the target's genres, cast and decade by rules; ``llm_utterance`` has an LLM word the same
intent. Every sentence passes ``leaks_target`` first, so no title or part of one gets through."""

from __future__ import annotations

import logging
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from crs.catalog import Item, normalize_title
from crs.llm.base import Message
from crs.understand.lexicon import COMMON_WORDS

if TYPE_CHECKING:
    from crs.llm.base import ChatModel
    from crs.understand.linker import Linker

log = logging.getLogger(__name__)

SayKind = Literal["want_genre", "no_genre", "want_person", "decade", "not_that", "seen", "else", "accept"]


_STOPWORDS = COMMON_WORDS | frozenset("of and or in on at the a an to part ii iii iv vs".split())


_GENERIC = ("Show me something else.", "Another one, please.", "Keep going.", "Next.")


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return re.findall(r"[a-z0-9]+", folded.replace("&", " and "))


def _same_word(a: str, b: str) -> bool:
    """Equal, or one an inflection of the other ("alien"/"aliens")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 2


def leaks_target(utterance: str, target: Item | str) -> bool:
    """Whether a message names the target or a near-copy of its title: the normalised title
    as a phrase, 60% or more of the title's non-stopword words, or any distinctive title word
    (not a stopword, 5+ letters), each word matched with its inflections."""
    title = target.title if isinstance(target, Item) else target
    said = _words(utterance)
    if not said:
        return False
    norm = normalize_title(title)
    if norm and f" {norm} " in f" {' '.join(said)} ":
        return True
    content = [w for w in dict.fromkeys(_words(title)) if w not in _STOPWORDS]
    if not content:
        return False
    present = [w for w in content if any(_same_word(w, s) for s in said)]
    if len(present) >= 0.6 * len(content):
        return True
    return any(len(w) >= 5 for w in present)


@dataclass(frozen=True)
class Say:
    """One thing a simulated message says: the rule-based sentence, and the phrase an
    LLM rewording must keep so the agent can still read it."""

    kind: SayKind
    value: str  # a genre, a person, a decade's first year, an item id
    text: str
    key: str


@dataclass(frozen=True)
class Utterance:
    text: str
    says: tuple[Say, ...]
    source: str = "rules"  # rules | llm | rules-fallback


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _decade(year: int) -> int:
    return year // 10 * 10


class RulesUser:
    """A simulated user with a hidden target: opens with one of its genres, answers a question
    with another attribute, rejects a miss with feedback drawn from the target, and reveals one
    more attribute a turn. With a ``linker`` (the agent's), it only says what the linker reads
    as meant: no title anywhere, each genre and person as itself."""

    def __init__(self, target: Item, rng: random.Random, linker: Linker | None = None, max_cast: int = 3) -> None:
        self.target = target
        self.rng = rng
        self.linker = linker
        self.genres = [g for g in target.genres if self._ok_genre(g, want=True)]
        rng.shuffle(self.genres)
        self.cast = [p for p in target.cast[:max_cast] if self._ok_person(p)]
        self.decade = _decade(target.year) if target.year else None
        # One attribute revealed a turn, in this order, after the opening genre.
        self.pending: list[Say] = [self._want_genre(g) for g in self.genres[1:2]]
        people = [self._want_person(p) for p in self.cast]
        self.pending += people[:1] + ([self._decade_say()] if self.decade is not None else []) + people[1:]
        self.pending += [self._want_genre(g) for g in self.genres[2:]]
        self.pending = [s for s in self.pending if not leaks_target(s.text, target)]
        self.said: list[Say] = []

    # -- the sentences --------------------------------------------------------------------

    def _want_genre(self, genre: str) -> Say:
        g = genre.lower()
        return Say("want_genre", genre, f"I'm looking for {_article(g)} {g} movie.", g)

    def _no_genre(self, genre: str) -> Say:
        return Say("no_genre", genre, f"No {genre.lower()}.", f"no {genre.lower()}")

    def _want_person(self, person: str) -> Say:
        return Say("want_person", person, f"Something with {person}.", person)

    def _decade_say(self) -> Say:
        return Say("decade", str(self.decade), f"Something from the {self.decade}s.", f"{self.decade}s")

    def _reads(self, text: str, kind: str, values: set[str]) -> bool:
        """Without a linker, yes; with one: no title in ``text``, and the mentions of ``kind``
        are exactly ``values`` (case-insensitive)."""
        if self.linker is None:
            return True
        mentions = self.linker.mentions(text)
        if any(m.kind == "item" for m in mentions):
            return False
        return {m.value.casefold() for m in mentions if m.kind == kind} == {v.casefold() for v in values}

    def _ok_genre(self, genre: str, want: bool) -> bool:
        say = self._want_genre(genre) if want else self._no_genre(genre)
        if leaks_target(say.text, self.target) or not self._reads(say.text, "genre", {genre}):
            return False
        return want or not self.target.has_genre(genre)

    def _ok_person(self, person: str) -> bool:
        say = self._want_person(person)
        return (
            len(_words(person)) >= 2
            and not leaks_target(say.text, self.target)
            and self._reads(say.text, "person", {person})
        )

    # -- the turns ------------------------------------------------------------------------

    def opening(self) -> Utterance:
        if self.genres:
            return self._utter([self._want_genre(self.genres[0])])
        return self._utter([self.pending.pop(0)] if self.pending else [])

    def react(self, act: str, items: Sequence[Item]) -> Utterance:
        """The next message after the agent's turn (``act``, the items it recommended)."""
        if self.target.id in {i.id for i in items}:
            text = f"I'll watch {self.target.label}."  # the target was found: naming it is fine
            return Utterance(text, (Say("accept", self.target.id, text, text),))
        says: list[Say] = []
        if act == "recommend" and items:
            says += self._critique(items)
        if self.pending:  # one more attribute a turn
            says.append(self.pending.pop(0))
        if not says and items:
            top = items[0]
            says.append(Say("else", top.id, "Show me something else.", "something else"))
        return self._utter(says)

    def _critique(self, items: Sequence[Item]) -> list[Say]:
        """Feedback on a miss, from the target's attributes only."""
        says: list[Say] = []
        top, target = items[0], self.target
        if not any(top.has_genre(g) for g in target.genres) and self.genres:
            says.append(Say("not_that", top.id, "Not that one.", "not that one"))
            says.append(self._want_genre(self.genres[0]))
        elif self.rng.random() < 0.25 and top.title.casefold() != target.title.casefold():
            seen = Say("seen", top.id, f"I've already seen {top.label}.", f"seen {top.label}")
            linked = self.linker.mentions(seen.text) if self.linker else []
            if not leaks_target(seen.text, target) and (
                self.linker is None or [m.value for m in linked if m.kind == "item"] == [top.id]
            ):
                says.append(seen)
        if self.decade is not None and any(not i.year or _decade(i.year) != self.decade for i in items):
            says.append(self._decade_say())
            self.pending = [s for s in self.pending if s.kind != "decade"]
        counts = Counter(g for i in items for g in i.genres if not target.has_genre(g))
        rejected = {s.value for s in self.said if s.kind == "no_genre"}
        fresh = [g for g, _ in counts.most_common() if g not in rejected and self._ok_genre(g, want=False)]
        says += [self._no_genre(g) for g in fresh[:2]]
        return says

    def _utter(self, says: list[Say]) -> Utterance:
        """The sentences joined, dropping from the end until the whole message leaks nothing."""
        says = [s for s in says if not leaks_target(s.text, self.target)]
        while says and leaks_target(" ".join(s.text for s in says), self.target):
            says.pop()
        self.said += says
        if says:
            return Utterance(" ".join(s.text for s in says), tuple(says))
        text = next((t for t in _GENERIC if not leaks_target(t, self.target)), "...")
        return Utterance(text, ())

    def possible_sentences(self, genres: Iterable[str]) -> list[str]:
        """Every attribute sentence this user could say, with ``genres`` as the genres shown."""
        out = [self._want_genre(g).text for g in self.genres]
        out += [self._want_person(p).text for p in self.cast]
        out += [self._decade_say().text] if self.decade is not None else []
        out += [self._no_genre(g).text for g in genres if self._ok_genre(g, want=False)]
        return out + ["Not that one.", *_GENERIC]


def llm_prompt(target: Item, revealed: Sequence[Say], keys: Sequence[str]) -> list[Message]:
    """The messages asking an LLM for the user's next message: the target's attributes (never
    its title) and the phrases the message must contain."""
    decade = f"the {_decade(target.year)}s" if target.year else "unknown"
    known = ", ".join(s.value for s in revealed if s.kind == "want_person") or "none yet"
    system = (
        "You play a person chatting with a movie recommender. You have one movie in mind but "
        "never say its title. Write only your next message: one or two short, casual sentences."
    )
    user = (
        f"The movie you have in mind: genres {', '.join(target.genres) or 'unknown'}; from {decade}; "
        f"actors you mentioned: {known}.\n"
        f"Your next message must contain each of these phrases word for word: "
        + "; ".join(f'"{k}"' for k in keys)
        + "\nMessage:"
    )
    return [Message("system", system), Message("user", user)]


def llm_utterance(llm: ChatModel, target: Item, planned: Utterance, revealed: Sequence[Say]) -> Utterance:
    """The planned message reworded by the LLM; the planned one when the LLM fails, leaks the
    target, or drops a phrase the agent needs."""
    keys = [s.key for s in planned.says]
    if not keys or planned.says[0].kind == "accept":
        return planned
    try:
        raw = llm.generate(llm_prompt(target, revealed, keys), max_new_tokens=60, temperature=0.7)
    except Exception as exc:  # a failing model costs the wording, not the dialogue
        log.warning("simulator LLM failed: %s", exc)
        return Utterance(planned.text, planned.says, "rules-fallback")
    text = " ".join(raw.strip().strip('"').split())[:300]
    folded = " ".join(_words(text))
    if not text or leaks_target(text, target) or any(" ".join(_words(k)) not in folded for k in keys):
        return Utterance(planned.text, planned.says, "rules-fallback")
    return Utterance(text, planned.says, "llm")

"""The grounding guard: a reply may name only the items it is allowed to.

The LLM's text is checked sentence by sentence as it streams; the same pass drops sentences no person
would write to the user: about "the user" in the third person, about films the agent itself has seen,
wants or likes, repeated, beyond three, or prompt echoes. A sentence that names a
catalog item outside the allowed set, a quoted or dated title that is no allowed item (an
invented film), or any other run of capitalised words that looks like a title and is found
nowhere in the allowed items' records, the catalog's people or its genres ("Totally Fake Movie
is a masterpiece"), is dropped before the user sees it; so is one that says of a film what its
record does not hold: a person, genre, year, theme or plot (``crs.reply.facts``).
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from crs.catalog import Item
from crs.reply.facts import BRACKETED_YEAR, subject_films, unsupported
from crs.understand.linker import Linker, Mention

log = logging.getLogger(__name__)

_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”)]*\s+|\n+")
# A full stop after these ends no sentence: "Alien vs. Predator", "Dr. Strangelove", "J. R. R. Tolkien".
_ABBREVIATION = re.compile(r"(?:(?i:\b(?:vs|v|mr|mrs|ms|dr|st|jr|sr|vol|pt|mt|ft|e\.g|i\.e))|\b[A-HJ-Z])\.$")
_QUOTED = re.compile(r"[\"“*_]{1,2}([^\"”*_\n]{2,80}?)[\"”*_]{1,2}")
# Two or more capitalised words, small words allowed between them: "The Lord of the Rings", "Totally Fake Movie".
# Talk about the user instead of to them: "The user has a great idea", "the user's request".
# A film never wants, likes or asks; a sentence where "they" do is about the user ("They are interested in
# Nolan's films", "Their request is for a comedy").
_THIRD_PERSON = re.compile(
    r"\b(?:users?|user's)\b"
    r"|^\W*they\b(?:'re|'d| are| were| would| have| had)?(?:\s+\w+){0,2}?\s+"
    r"(?:interested|like|loved?|want|wanted|prefer|enjoy|enjoyed|looking|asked|asking|requested)\b"
    r"|^\W*their\s+(?:\w+\s+)?(?:request|mood|tastes?|preferences?|favou?rites?)\b",
    re.I,
)
# The agent has watched nothing, wants nothing and likes nothing: "I have seen Inception in theaters", "I'm looking for a
# movie", "I have a favorite" are a human recommender's (or seeker's) words that nothing here supports.
_OWN_VIEWING = re.compile(
    r"\bI(?:'ve| have| had)?(?: (?:never|not|also|just|already|recently|both|all))* (?:seen|saw|watched|watch)\b"
    r"|\bI (?:haven't|have not|hadn't|didn't|did not|don't|do not)(?: (?:seen|see|watch|watched))\b"
    r"|\bI(?:'m| am) (?:looking for|in the mood|watching)\b"
    r"|\bI(?:'ve| have)? (?:got )?a favou?rite\b"
    # ... and has no taste of its own: "I loved King Kong (2005) and Jaws (1975)", "I like thrillers".
    r"|\bI (?:(?:also|really|just|personally|absolutely|do|did|too|am not sure if I) )?"
    r"(?:like|liked|love|loved|enjoy|enjoyed|adore|adored)\b(?! to\b)",
    re.I,
)
_CAPITALISED = re.compile(
    r"\b[A-Z0-9][\w'’\-]*(?:[ \t]+(?:(?:of|the|a|an|and|in|on|to|for|at|with|&)[ \t]+)*[A-Z0-9][\w'’\-]*)+"
)
# Words that open sentences; another capitalised first word before two more ("Totally Fake Movie") is part of a name.
_OPENERS = frozenset(
    "a an the and or but so if as also both all any each every this that these those here there it its i my your "
    "our their his her you we they he she in on at for with from by to of when while after before since then now "
    "just maybe perhaps like unlike yes no not sure great".split()
)
# The reply prompt's fields said back ("recommend "I love horror" Horror", "Film 1: Heat (1995); ...",
# "Fantasy; Fantasy;"): a small model that reads the prompt as a text to continue.
_ECHO = re.compile(
    r"^\W*(?i:act:\s*)?(?i:recommend|critique|ask|answer|explain)\b(?=\s*(?:[\"“:;]|[A-Z]|$))"
    r"|\b(?:Act|User|They like|They rule out|Their profile|Note|Film \d+):"
)
_LIST_ECHO = re.compile(r"^(?:[^;.!?]{1,40};\s*){2,}|^\W*(?:[\w ]{1,30};\s*)+[\w ]{0,30}$")
_IN_QUOTES = re.compile(r"[\"“](?:[^\"”\s]*\s+){3,}[^\"”]*[\"”]")  # a quoted sentence (four or more words)
# A title and its year: "Heat (1995)", "Back to the Future (1985)" (small words inside a title).
_DATED = re.compile(
    r"((?:[A-Z0-9][\w'’:&!?,.\-]*\s?(?:(?:of|the|a|an|and|in|on|to|for|at|with|from|&)\s)*){1,8})"
    r"\((?:19|20)\d{2}\)"
)


@dataclass
class GroundingGuard:
    linker: Linker
    allowed: Collection[str]  # item ids the reply may name
    banned: Collection[str] = ()  # words a sentence may not contain (genres, people the user rejected)
    removed: list[str] = field(default_factory=list)
    named: list[str] = field(default_factory=list)  # allowed ids named in kept text, in order
    max_sentences: int = 3  # a reply of more is cut (the picks list is added apart)
    dropped: Counter[str] = field(default_factory=Counter)  # why sentences were dropped, counted
    _buffer: str = ""
    _words: set[str] | None = None  # words of the allowed items' records, built on first use
    _said: set[str] = field(default_factory=set)  # kept sentences, normalised
    prompt: str = ""  # the prompt the model was given: a sentence copied out of it is an echo
    _last: tuple[str, list[Mention]] = ("", [])  # the last text linked: problem() and degenerate() share it
    _after_lead: bool = False  # the first text released follows a lead sentence: it starts with a space

    def check(self, sentence: str) -> bool:
        """True if every title in the sentence is an allowed item and it names nothing banned."""
        return not self.problem(sentence)

    def problem(self, sentence: str) -> str:
        """Why a sentence may not be shown ("" when it may): it names something the user ruled out,
        a film outside the allowed set, or a title nothing accounts for."""
        folded = sentence.casefold()
        if any(re.search(rf"\b{re.escape(word.casefold())}", folded) for word in self.banned):
            return "names something ruled out"
        if self._from_record(sentence):
            return ""  # the words of an allowed film's own record
        mentions = self._mentions(sentence)
        ids = films_named(mentions)
        for pattern in (_QUOTED, _DATED):
            for m in pattern.finditer(sentence):
                span = m.group(0) if pattern is _DATED else m.group(1)
                title, year = _split_dated(span)
                if pattern is _DATED:
                    item = self._resolve(sentence[: m.end()], year)
                else:
                    item = self.linker.resolve(title, year)
                if item is None:
                    if pattern is _DATED or _looks_like_title(title):
                        return "invented title"  # a film that is not in the catalog
                    continue
                ids.append(item.id)
        if any(i not in self.allowed for i in ids):
            return "names another film"
        if any(not self._known_span(sentence, m) for m in _CAPITALISED.finditer(sentence)):
            return "invented title"  # a title-like name that nothing allowed accounts for
        catalog = self.linker.catalog
        films = subject_films(
            sentence,
            [it for i in dict.fromkeys(ids) if (it := catalog.get(i)) is not None],
            catalog.get(self.named[-1]) if self.named else None,
        )
        if why := unsupported(sentence, films, mentions):
            return why  # a person, genre, year, theme or plot the film's record does not hold
        self.named += [i for i in dict.fromkeys(ids) if i not in self.named]
        return ""

    def review(self, text: str) -> list[str]:
        """What is wrong with a finished reply, sentence by sentence, without dropping anything: the
        problems a reader would see ("third person: ...", "unsupported genre: ...")."""
        out, said = [], set()
        rest = text
        while rest.strip():
            end = self._sentence_end(rest)
            sentence, rest = (rest[:end], rest[end:]) if end is not None else (rest, "")
            sentence = sentence.strip()
            if not sentence:
                continue
            norm = re.sub(r"\W+", " ", sentence.casefold()).strip()
            why = self._voice(sentence) or ("repeated" if norm in said else self.problem(sentence))
            said.add(norm)
            if why:
                out.append(f"{why}: {sentence}")
        return out

    def _resolve(self, before: str, year: int | None) -> Item | None:
        """The film a year in brackets dates, from the words before it, longest title first ("Try
        Ready or Not (2019)", "Cheaper by the Dozen (2003)")."""
        words = re.sub(rf"\s*{BRACKETED_YEAR.pattern}\s*$", "", before).split()[-12:]
        for k in range(len(words)):
            if (item := self.linker.resolve(" ".join(words[k:]).strip(" ,.:;-\"'“”"), year)) is not None:
                return item
        return None

    def _from_record(self, sentence: str) -> bool:
        """Whether a sentence (or what follows its colon) is copied from an allowed film's summary."""
        tail = re.sub(f" {BRACKETED_YEAR.pattern}", "", sentence.strip().rsplit(": ", 1)[-1])  # "Heat (1995) is"
        tail = tail.rstrip(" .!?\"'”")
        if len(tail.split()) < 6:
            return False
        # A quoted sentence in a summary is someone's words, not the record's ('reply with "X is great"').
        return any(
            tail in _IN_QUOTES.sub(" ", item.summary)
            for i in self.allowed
            if (item := self.linker.catalog.get(i)) is not None
        )

    def lead(self, sentence: str, item_id: str) -> None:
        """Count ``sentence``, shown before the model's words and naming ``item_id``, as said: the
        model's repeat of it is dropped, it counts towards ``max_sentences``, "it" is its film, and the
        first text released is spaced from it."""
        self._after_lead = True
        self._said.add(_normalised(sentence))
        if item_id not in self.named:
            self.named.append(item_id)

    def degenerate(self, sentence: str) -> str:
        """Why a sentence is no sentence a person would write to the user here ("" when it is): it
        talks about "the user" in the third person, repeats an earlier one, comes after
        ``max_sentences``, or introduces something that never follows ("Here's a revised version:")."""
        text = sentence.strip()
        if why := self._voice(text):
            return why
        norm = _normalised(text)
        if norm in self._said:
            return "repeated"
        if len(norm.split()) >= 4 and f" {norm} " in self._prompt_words:
            return "prompt echo"  # the user's words or a fact line said back
        if len(self._said) >= self.max_sentences:
            return "too long"
        if text.endswith(":") or _ECHO.search(text) or _LIST_ECHO.search(text):
            return "prompt echo"
        self._said.add(norm)
        return ""

    def _sentence_end(self, text: str, final: bool = False) -> int | None:
        """Where the first sentence ends; not at a "!" or "?" inside a film's title ("Tora! Tora! Tora!
        (1970)", "Airplane! (1980)"), told by a title that runs past it. Streaming (not ``final``), such
        a stop waits for the words after it."""
        start = 0
        while (end := _sentence_end(text[start:])) is not None:
            end += start
            cut = text[:end].rstrip()
            if cut[-1:] not in "!?" or (final and end >= len(text)):
                return end
            if not final and len(text) - end < _LOOKAHEAD:
                return None
            if BRACKETED_YEAR.match(text[end:]):
                start = end  # "Airplane! (1980)": the year of a title, not a new sentence
                continue
            spans = [(m.text, text.find(m.text)) for m in self.linker.mentions(text) if m.kind == "item"]
            if not any(0 <= at < len(cut) < at + len(t) for t, at in spans):  # no title runs past the stop
                return end
            start = end
        return None

    def _voice(self, sentence: str) -> str:
        """ "third person" or "own viewing" when the sentence is not the agent speaking to the user, read
        outside film titles ("New York, I Love You (2009)" is no taste of the agent's); else ""."""
        words = self._without_titles(sentence)
        if _THIRD_PERSON.search(words):
            return "third person"
        if _OWN_VIEWING.search(words):
            return "own viewing"  # an experience or taste the agent cannot have had
        return ""

    def _mentions(self, text: str) -> list[Mention]:
        if self._last[0] != text:
            self._last = (text, self.linker.mentions(text))
        return self._last[1]

    def _without_titles(self, sentence: str) -> str:
        """The sentence with the titles of the films it names blanked out."""
        for m in self._mentions(sentence):
            if m.kind == "item" and m.exact:
                sentence = sentence.replace(m.text, "Film")
        return sentence

    def _known_span(self, sentence: str, match: re.Match[str]) -> bool:
        """Whether a capitalised run is accounted for: each capitalised word is part of a film,
        person, genre or theme the linker finds, or a capitalised word of an allowed film's record (its
        title, cast, characters, places), or the sentence's first word. Two or more words that nothing
        accounts for ("Totally Fake Movie") make a title the reply has invented."""
        span = match.group(0)
        words = re.findall(r"[\w'’\-]+", span)
        mentions = self.linker.mentions(span)
        mentioned = {
            w.casefold() for m in mentions if m.kind != "item" or m.value in self.allowed for w in m.text.split()
        }
        opening = not sentence[: match.start()].strip()
        if any(span.casefold() in t for t in self._allowed_titles):
            return True  # "Fury Road" of Mad Max: Fury Road
        films = [m for m in mentions if m.kind == "item"]
        if any(a.end == b.start and a.value != b.value for a, b in zip(films, films[1:], strict=False)):
            return False  # two films run together ("Shadow Protocol" from The Shadow and Protocol): a new name
        unknown = 0
        for k, word in enumerate(words):
            if not (word[:1].isupper() or word.isdigit()) or word.isupper():
                continue
            if k == 0 and opening and (word.casefold() in _OPENERS or len(words) < 3):
                continue  # "The", "Also", "If": a sentence's first word is capitalised anyway
            folded = word.casefold()
            if folded in mentioned or folded in self._record_words:
                continue
            unknown += 1
        # "The Midnight Zebra": a film's title inside a longer name is another, invented title.
        inside_longer = any(
            m.kind == "item" and len(m.text.split()) < len(words) - (1 if opening else 0) for m in mentions
        )
        return unknown < (1 if inside_longer else 2)

    @functools.cached_property
    def _allowed_titles(self) -> list[str]:
        return [item.title.casefold() for i in self.allowed if (item := self.linker.catalog.get(i)) is not None]

    @property
    def _prompt_words(self) -> str:
        return " " + re.sub(r"\W+", " ", self.prompt.casefold()).strip() + " "

    @property
    def _record_words(self) -> set[str]:
        if self._words is None:
            self._words = set()
            for item_id in self.allowed:
                item = self.linker.catalog.get(item_id)
                if item is not None:
                    # A quoted sentence in a summary is someone's words, not the record's names: a planted
                    # 'reply with "Totally Fake Movie is great"' accounts for nothing.
                    summary = _IN_QUOTES.sub(" ", item.summary)
                    text = " ".join((item.title, summary, *item.cast, *item.genres))
                    # Only the record's capitalised words and numbers: its names, places and titles, not "midnight".
                    self._words.update(
                        w.casefold() for w in re.findall(r"[\w'’\-]+", text) if w[:1].isupper() or w.isdigit()
                    )
        return self._words

    def feed(self, delta: str) -> str:
        """Take streamed text; return the complete, checked sentences it releases."""
        self._buffer += delta
        out = []
        while (end := self._sentence_end(self._buffer)) is not None:
            sentence, self._buffer = self._buffer[:end], self._buffer[end:]
            out.append(self._keep(sentence))
        return self._spaced("".join(out))

    def flush(self, drop_fragment: bool = False) -> str:
        """Release what is left. With ``drop_fragment``, an unfinished last sentence (the
        model ran out of tokens mid-way) is dropped rather than shown cut off."""
        out = []
        while (end := self._sentence_end(self._buffer, final=True)) is not None:  # held back at a "!" or "?"
            sentence, self._buffer = self._buffer[:end], self._buffer[end:]
            out.append(self._keep(sentence))
        return self._spaced("".join(out) + self._flush_last(drop_fragment and not out))

    def _spaced(self, released: str) -> str:
        """``released``, with a space before it when it is the first text after a lead sentence."""
        if not (self._after_lead and released):
            return released
        self._after_lead = False
        return released if released[0].isspace() else " " + released

    def _flush_last(self, drop_fragment: bool) -> str:
        sentence, self._buffer = self._buffer, ""
        finished = re.search(r"[.!?][\"'”)]*\s*$", sentence)
        if not sentence.strip() or (drop_fragment and not finished):
            return ""
        kept = self._keep(sentence)
        # A kept fragment is closed, so the sentence added after it does not run on from it.
        return kept if finished or not kept.strip() else kept.rstrip(" ,;:-") + "."

    def _keep(self, sentence: str) -> str:
        if not sentence.strip():
            return sentence
        intro, colon, rest = sentence.partition(": ")
        if colon and _ECHO.search(intro + colon):
            rest = ""  # "Film 1: Heat (1995); ...": a field of the prompt, not an introduction
        if colon and rest.strip() and len(intro.split()) <= 8 and not self.linker.mentions(intro):
            # "Here's a revised version: Alien is tense." An introduction to nothing is an echo of the prompt.
            self.removed.append(intro.strip() + ":")
            self.dropped["prompt echo"] += 1
            sentence = rest
        why = self.problem(sentence) or self.degenerate(sentence)
        if not why:
            return sentence
        log.info("reply guard dropped (%s): %r", why, sentence.strip()[:200])
        self.removed.append(sentence.strip())
        self.dropped[why] += 1
        return ""


_LOOKAHEAD = 40  # characters after a "!" or "?" read before deciding it ends the sentence


def films_named(mentions: list[Mention]) -> list[str]:
    """The films a reply names, in order. The writer spells titles as titles: a lower-case or misspelt
    match ("a crew of" for The Crew, "bakers" for Takers) is an everyday word, which the user's messages
    may have but a reply has not."""
    return [
        m.value for m in mentions if m.kind == "item" and m.exact and (m.text[:1].isupper() or m.text[:1].isdigit())
    ]


def _normalised(sentence: str) -> str:
    """A sentence as compared for repeats: lower case, words only."""
    return re.sub(r"\W+", " ", sentence.strip().casefold()).strip()


def _sentence_end(text: str) -> int | None:
    """Where the first complete sentence of ``text`` ends (after its trailing space), or None."""
    pos = 0
    while (m := _BOUNDARY.search(text, pos)) is not None:
        if not _ABBREVIATION.search(text[: m.start()].rstrip("\"'”)")) or "\n" in m.group(0):
            return m.end()
        pos = m.end()
    return None


def _split_dated(span: str) -> tuple[str, int | None]:
    m = re.search(r"\(((?:19|20)\d{2})\)\s*$", span)
    if not m:
        return span.strip(" ,.:;-"), None
    return span[: m.start()].strip(" ,.:;-"), int(m.group(1))


def _looks_like_title(text: str) -> bool:
    """A quoted phrase in title case ("The Lost Horizon") rather than a quoted remark."""
    words = text.split()
    if not 1 <= len(words) <= 8:
        return False
    caps = sum(1 for w in words if w[:1].isupper() or w[:1].isdigit())
    return caps >= max(1, (len(words) + 1) // 2)

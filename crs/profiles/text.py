"""Natural-language user profiles: the text a user sees and edits, and what it means.

A profile is free text (a short paragraph) plus a list of likes and dislikes::

    Mostly watches tense science fiction and crime films.

    Likes:
    - Science Fiction
    - Alien (1979)
    Dislikes:
    - Romance

``parse_profile`` turns it into preferences (``source="profile"``): list entries are linked to
catalog genres, titles and people (or kept as keywords), the paragraph is read sentence by
sentence like a chat message; what cannot be read is returned as ``unparsed``, never dropped.
``apply_edit`` rewrites the text deterministically for chat edits ("forget that I like horror").
Summarising a long history into a first profile lives in :mod:`crs.profiles.summary`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from crs.state import BeliefState, BeliefUpdate, Preference, Turn
from crs.understand import nlu
from crs.understand.linker import Linker

if TYPE_CHECKING:
    from crs.catalog import Catalog

log = logging.getLogger(__name__)

MAX_KEYWORD_WORDS = 3  # an unlinked list entry this short is kept as a keyword ("Miyazaki")


class ProfileError(ValueError):
    """A profile that cannot be stored or read as given; the message says why."""


@dataclass(frozen=True)
class Profile:
    user: str
    text: str  # what the user sees and edits
    version: int  # 1, 2, ...
    created_at: str  # ISO-8601 UTC
    source: str  # "import:hierarchical" | "import:recurrent" | "edit:ui" | "edit:chat" | "edit:cli" | ...


@dataclass(frozen=True)
class ProfileParse:
    update: BeliefUpdate  # preferences with source="profile"; seen items
    unparsed: tuple[str, ...]  # sentences and entries no preference could be read from


@dataclass(frozen=True)
class Sections:
    """A profile text cut into its free-text lines and its two lists."""

    free: tuple[str, ...]
    likes: tuple[str, ...]
    dislikes: tuple[str, ...]


_HEADER = re.compile(
    r"^\s*(likes?|loves?|favou?rites|dislikes?|hates?|avoids?|don'?t like|not for me)\s*:\s*(.*)$", re.I
)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+(.*)$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
_WORD = re.compile(r"[a-z][a-z'\-]*")


def split_sections(text: str) -> Sections:
    free: list[str] = []
    lists: dict[int, list[str]] = {1: [], -1: []}
    polarity = 0  # the list being read; 0: free text
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        header = _HEADER.match(line)
        bullet = _BULLET.match(line)
        if header:
            polarity = 1 if header.group(1).lower().startswith(("like", "love", "fav")) else -1
            lists[polarity] += [e.strip() for e in re.split(r"[,;]", header.group(2)) if e.strip()]
        elif bullet and polarity:
            lists[polarity].append(bullet.group(1).strip())
        else:
            polarity = 0
            free.append(bullet.group(1).strip() if bullet else line)
    return Sections(tuple(free), tuple(lists[1]), tuple(lists[-1]))


def render_profile(free: str | Sequence[str], likes: Sequence[str], dislikes: Sequence[str]) -> str:
    """The profile text for a paragraph and two lists (empty lists are left out)."""
    paragraph = free if isinstance(free, str) else " ".join(s.strip() for s in free if s.strip())
    parts = [paragraph.strip()] if paragraph.strip() else []
    if likes:
        parts.append("Likes:\n" + "\n".join(f"- {e}" for e in likes))
    if dislikes:
        parts.append("Dislikes:\n" + "\n".join(f"- {e}" for e in dislikes))
    return "\n\n".join(parts)


def sentences(lines: Sequence[str]) -> list[str]:
    return [s.strip() for line in lines for s in _SENTENCE.split(line) if re.search(r"[^\W\d_]", s)]


# ---- reading ----------------------------------------------------------------------------------


def _entry_prefs(entry: str, polarity: int, linker: Linker) -> list[Preference]:
    """Preferences a list entry states: its linked mentions (titles, genres, people, themes such
    as "gore"), else, when short, the entry itself as a keyword looked for in descriptions."""
    mentions = linker.mentions(entry)
    if mentions:
        return [Preference(m.kind, m.value, polarity, source="profile", text=entry) for m in mentions]  # type: ignore[arg-type]
    words = _WORD.findall(entry.casefold())
    if 0 < len(words) <= MAX_KEYWORD_WORDS:
        return [Preference("keyword", " ".join(words), polarity, source="profile", text=entry)]  # type: ignore[arg-type]
    return []


def _sentence_update(sentence: str, linker: Linker) -> BeliefUpdate:
    read = nlu.understand(sentence, linker)
    prefs = [replace(p, source="profile", turn=0) for p in read.preferences]
    return BeliefUpdate(preferences=tuple(prefs), seen=read.seen)


def parse_profile(text: str, linker: Linker) -> ProfileParse:
    """Preferences a profile states; the list wins over the paragraph where both speak of a thing."""
    sections = split_sections(text or "")
    free = BeliefUpdate()
    unparsed: list[str] = []
    for sentence in sentences(sections.free):
        update = _sentence_update(sentence, linker)
        if update.is_empty():
            unparsed.append(sentence)
        free = free.merged(update)
    listed: dict[tuple[str, str], Preference] = {}
    for entries, polarity in ((sections.likes, 1), (sections.dislikes, -1)):
        for entry in entries:
            prefs = _entry_prefs(entry, polarity, linker)
            if not prefs:
                unparsed.append(entry)
            for p in prefs:
                listed.pop(p.key, None)
                listed[p.key] = p
    update = free.merged(BeliefUpdate(preferences=tuple(listed.values())))
    return ProfileParse(update, tuple(unparsed))


def entry_label(pref: Preference, catalog: Catalog) -> str:
    """How a preference is written as a list entry."""
    if pref.kind == "item":
        item = catalog.get(pref.value)
        return item.label if item else pref.value
    if pref.kind == "keyword":
        return pref.text or pref.value
    return pref.value


def likes_line(parse: ProfileParse, catalog: Catalog, max_chars: int = 200) -> str:
    """One short line for the reply prompt ("likes Horror, Alien (1979); dislikes Romance"); the
    small local model echoes long prompts, so this is all of the profile it sees."""
    parts = []
    for polarity, word in ((1, "likes"), (-1, "dislikes")):
        labels = [entry_label(p, catalog) for p in parse.update.preferences if p.polarity == polarity]
        if labels:
            parts.append(f"{word} {', '.join(labels)}")
    text = "; ".join(parts)
    return text if len(text) <= max_chars else text[: max_chars - 1].rsplit(",", 1)[0] + "…"


def with_profile(
    belief: BeliefState, parse: ProfileParse, suppressed: set[tuple[str, str]] = frozenset()
) -> BeliefState:  # type: ignore[assignment]
    """The belief a turn acts on: the profile's preferences under the conversation's (what the user
    said in this conversation, or asked to forget in it, wins)."""
    said = {p.key for p in belief.preferences} | suppressed
    prefs = tuple(p for p in parse.update.preferences if p.key not in said)
    seen = belief.seen + tuple(s for s in parse.update.seen if s not in belief.seen)
    return replace(belief, preferences=prefs + belief.preferences, seen=seen)


# ---- chat edits -------------------------------------------------------------------------------

_PLEASE = r"^\s*(?:(?:ok(?:ay)?|hey|also|and|please|now|oh)[,!]?\s+)*"
_REMOVE = re.compile(
    _PLEASE + r"(?:forget|remove|delete|drop|erase|scratch|take out)\b(?:\s+from my profile)?"
    r"(?:\s+(?:that|the fact that|about))?[:,]?\s*(.*)$",
    re.I | re.S,
)
_ADD = re.compile(
    _PLEASE + r"(?:add|remember|note(?: down)?|save|record|put)\b(?:\s+(?:to|in|into|on) my profile)?"
    r"(?:\s+that)?[:,]?\s*(.*)$",
    re.I | re.S,
)
_UPDATE = re.compile(
    _PLEASE
    + r"(?:update|edit|change|set|amend)\s+my\s+profile\b(?:\s*(?:[:,\-]|to say that|to say|so that|with|to|that))?"
    r"\s*(.*)$",
    re.I | re.S,
)
_SHOW = re.compile(r"\b(?:show|what'?s in|what is in|read|see|display|view|print)\b.{0,20}\bmy profile\b", re.I)
_DURABLE = re.compile(
    _PLEASE + r"(?:I\s+(?:don'?t|do not|never|won'?t|will never)\s+watch\b|I\s+(?:always|never)\s+\w+)", re.I
)
_TAIL = re.compile(r"\s+(?:from|to|in|into|on) my profile\s*[.!]?\s*$", re.I)
_OBJECT = re.compile(
    r"\b(love|like|enjoy|adore|prefer|dig|hate|dislike|avoid|can'?t stand|cannot stand|don'?t (?:like|watch|want)|"
    r"never watch|do not (?:like|watch|want))\s+(?:watching\s+)?(?:(?:anything|films?|movies?|stuff)\s+"
    r"(?:with|by|from|about|featuring|starring)\s+)?(?:the\s+)?(.+?)\s*[.!]?$",
    re.I,
)
_NEGATIVE_VERB = re.compile(r"^(hate|dislike|avoid|can'?t|cannot|don'?t|never|do not)", re.I)


def profile_request(message: str) -> str | None:
    """ "show" when the message asks to see the profile, "edit" when it asks to change it
    ("forget that I like horror", "add that I love Miyazaki", "I don't watch anything with gore",
    "update my profile: ..."), else None."""
    if _SHOW.search(message):
        return "show"
    if _UPDATE.match(message) or re.search(r"\b(?:to|in|into|from|on) my profile\b", message, re.I):
        return "edit"
    if re.match(_PLEASE + r"(?:forget|remove|delete|drop|erase)\s+(?:that|the fact that)\s+I\b", message, re.I):
        return "edit"
    if re.match(_PLEASE + r"(?:add|remember|note)\s+that\s+", message, re.I) or _DURABLE.match(message):
        return "edit"
    return None


@dataclass(frozen=True)
class EditResult:
    text: str  # the new profile text
    added: tuple[str, ...]  # "likes Horror", "dislikes gore"
    removed: tuple[str, ...]  # entries and sentences taken out
    unparsed: tuple[str, ...]  # kept as text, but no preference could be read from it
    keys: tuple[tuple[str, str], ...]  # preference keys the edit spoke of

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.unparsed)


def _keys_of(entry: str, polarity: int, linker: Linker) -> set[tuple[str, str]]:
    return {p.key for p in _entry_prefs(entry, polarity, linker)}


def _without(
    sections: Sections, keys: set[tuple[str, str]], linker: Linker, words: str = "", only: bool = False
) -> tuple[Sections, list[tuple[int, str]]]:
    """``sections`` without the entries and sentences that speak of ``keys`` (or, for unlinked
    entries, whose words occur in ``words``); with ``only``, just sentences that speak of nothing
    else. Removed ones come with their list's polarity (0: a sentence)."""
    removed: list[tuple[int, str]] = []
    lists = {}
    folded = " " + " ".join(_WORD.findall(words.casefold())) + " "
    for name, polarity in (("likes", 1), ("dislikes", -1)):
        kept = []
        for entry in getattr(sections, name):
            entry_words = " ".join(_WORD.findall(entry.casefold()))
            if _keys_of(entry, polarity, linker) & keys or (entry_words and f" {entry_words} " in folded):
                removed.append((polarity, entry))
            else:
                kept.append(entry)
        lists[name] = tuple(kept)
    free = []
    for sentence in sentences(sections.free):
        said = {p.key for p in _sentence_update(sentence, linker).preferences}
        if said & keys and (not only or said <= keys):
            removed.append((0, sentence))
        else:
            free.append(sentence)
    return Sections(tuple(free), lists["likes"], lists["dislikes"]), removed


def apply_edit(text: str, instruction: str, linker: Linker) -> EditResult:
    """Rewrite a profile for one instruction: remove what "forget/remove ..." names; add what a
    statement likes or dislikes to the matching list (taking it off the other); keep what cannot
    be read as a sentence of the paragraph and report it."""
    sections = split_sections(text)
    body = instruction.strip()
    if m := _UPDATE.match(body):
        body = m.group(1).strip() or body
    removing = _REMOVE.match(body)
    if removing:
        body = removing.group(1)
    elif m := _ADD.match(body):
        body = m.group(1)
    body = _TAIL.sub("", body).strip().strip("\"'").strip()
    if not body:
        return EditResult(text, (), (), (), ())
    if removing:
        keys = {(m.kind, m.value.casefold()) for m in linker.mentions(body)}
        new, removed = _without(sections, keys, linker, words=body)
        if not removed:
            return EditResult(text, (), (), (), tuple(keys))
        gone = tuple(r for _, r in removed)
        return EditResult(render_profile(new.free, new.likes, new.dislikes), (), gone, (), tuple(keys))

    update = _sentence_update(body, linker)
    prefs = list(update.preferences)
    if not prefs and (m := _OBJECT.search(body)) and 0 < len(_WORD.findall(m.group(2).casefold())) <= MAX_KEYWORD_WORDS:
        polarity = -1 if _NEGATIVE_VERB.match(m.group(1)) else 1
        words = " ".join(_WORD.findall(m.group(2).casefold()))
        prefs = [Preference("keyword", words, polarity, source="profile", text=m.group(2).strip())]  # type: ignore[arg-type]
    if not prefs:  # kept as the user wrote it, and reported
        free = (*sections.free, body if body[-1] in ".!?" else body + ".")
        return EditResult(render_profile(free, sections.likes, sections.dislikes), (), (), (body,), ())
    keys = {p.key for p in prefs}
    new, removed = _without(sections, keys, linker, only=True)  # "I like X but not Y" stays; the list wins
    likes, dislikes = list(new.likes), list(new.dislikes)
    added = []
    for p in prefs:
        label = entry_label(p, linker.catalog)
        (likes if p.polarity > 0 else dislikes).append(label)
        added.append(f"{'likes' if p.polarity > 0 else 'dislikes'} {label}")
    result = render_profile(new.free, likes, dislikes)
    listed = {(1, e) for e in likes} | {(-1, e) for e in dislikes}
    gone = tuple(text for polarity, text in removed if (polarity, text) not in listed)  # restated: no removal
    # What the edit meant must be what the profile now says; anything else is reported.
    now = {(p.key, p.polarity) for p in parse_profile(result, linker).update.preferences}
    unparsed = tuple(p.text or p.value for p in prefs if (p.key, p.polarity) not in now)
    return EditResult(result, tuple(added), gone, unparsed, tuple(keys))


@dataclass(frozen=True)
class ProfileEdit:
    user: str
    instruction: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    unparsed: tuple[str, ...]
    keys: tuple[tuple[str, str], ...]  # preference keys the edit spoke of
    profile: Profile | None  # the profile after the edit (the old one when nothing changed)
    message: str  # what to tell the user


def edit_message(result: EditResult, instruction: str) -> str:
    parts = []
    if result.added:
        parts.append("Saved to your profile: " + "; ".join(result.added) + ".")
    if result.removed:
        parts.append("Removed from your profile: " + "; ".join(f'"{r}"' for r in result.removed) + ".")
    for text in result.unparsed:
        parts.append(f'I saved "{text}" in your profile, but could not turn it into a preference.')
    if not parts:
        parts.append(f'Your profile has nothing that matches "{instruction.strip()[:200]}"; nothing was changed.')
    return " ".join(parts)


def suppressed_keys(turns: Sequence[Turn], update: BeliefUpdate) -> set[tuple[str, str]]:
    """Preference keys the conversation asked to forget ("forget horror"), so the profile does not
    bring them back in this session; a later profile edit of the same thing lifts that."""
    out: set[tuple[str, str]] = set()
    for turn in turns:
        out |= {(k, v.casefold()) for k, v in turn.update.retract}
        out -= set(turn.lifted)
    return out | {(k, v.casefold()) for k, v in update.retract}

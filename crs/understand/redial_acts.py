"""Seeker turns of real ReDial dialogues, for training and measuring the message reader.

A *seeker turn* is what the seeker wrote between two recommender messages (consecutive messages
joined), with the utterances before it as context and the questionnaire facts (seen, liked) of
every movie it or its context names. Dialogues are split by id, never by turn:

- ``test``: a fixed part of the 985 dialogues of the ReDial validation file (the file ``crs eval
  redial`` reports on), read once for the final figures;
- ``train`` / ``dev``: the other partial-train dialogues, cut by a hash of their id.

No dialogue of the validation file is ever trained on, so ``crs eval redial`` stays leak-free.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

ACTS = ("request", "preference", "accept", "reject", "seen", "ask_item", "ask_why", "critique", "chitchat")
POLARITIES = ("like", "dislike", "seen", "neutral", "none")  # "none": the words do not name the entity

Split = Literal["train", "dev", "test", "unused"]
_AT = re.compile(r"@(\d+)")


@dataclass(frozen=True)
class MovieFact:
    movie_id: str
    title: str  # "Title (Year)" as the dialogue names it
    suggested: bool  # the recommender brought it up
    seen: str  # yes | no | unsaid (the seeker's questionnaire, else the recommender's)
    liked: str  # yes | no | unsaid


@dataclass(frozen=True)
class SeekerTurn:
    dialog_id: str
    index: int  # position among the dialogue's merged utterances
    text: str  # the seeker's words, ``@id`` kept
    context: tuple[tuple[str, str], ...]  # (role, text with @id) of the utterances before, oldest first
    facts: dict[str, MovieFact] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.dialog_id}:{self.index}"

    def movie_ids(self) -> list[str]:
        return list(dict.fromkeys(_AT.findall(self.text)))

    def shown_before(self) -> list[str]:
        """Movies the recommender named in the utterance just before, in order."""
        for role, text in reversed(self.context):
            if role == "recommender":
                return list(dict.fromkeys(_AT.findall(text)))
            break
        return []


def split_of(dialog_id: str, evaluated: set[str], dev_share: float = 0.2, test_share: float = 0.15) -> Split:
    """The split of a dialogue: a hash of its id decides, the same on every machine."""
    h = (zlib.crc32(f"reader:{dialog_id}".encode()) % 10_000) / 10_000
    if dialog_id in evaluated:
        return "test" if h < test_share else "unused"
    return "dev" if h < dev_share else "train"


def _answer(value: object) -> str:
    return {1: "yes", 0: "no"}.get(value, "unsaid")  # type: ignore[call-overload]


def movie_facts(dialogue: dict) -> dict[str, MovieFact]:
    names = dialogue.get("movieMentions") or {}
    names = names if isinstance(names, dict) else {}
    seeker = dialogue.get("initiatorQuestions") or {}
    other = dialogue.get("respondentQuestions") or {}
    seeker = seeker if isinstance(seeker, dict) else {}
    other = other if isinstance(other, dict) else {}
    out = {}
    for movie_id, name in names.items():
        answer = seeker.get(movie_id) or other.get(movie_id) or {}
        title = re.sub(r"\s+", " ", str(name or "")).strip()
        out[str(movie_id)] = MovieFact(
            str(movie_id),
            title,
            answer.get("suggested") == 1,
            _answer(answer.get("seen")),
            _answer(answer.get("liked")),
        )
    return out


def seeker_turns(dialogue: dict) -> Iterator[SeekerTurn]:
    """The seeker turns of one raw ReDial dialogue."""
    seeker = dialogue["initiatorWorkerId"]
    utts: list[tuple[str, str]] = []
    for msg in dialogue.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = "seeker" if msg.get("senderWorkerId") == seeker else "recommender"
        text = re.sub(r"\s+", " ", str(msg.get("text") or "")).strip()
        if not text:
            continue
        if utts and utts[-1][0] == role:
            utts[-1] = (role, f"{utts[-1][1]} {text}")
        else:
            utts.append((role, text))
    facts = movie_facts(dialogue)
    for k, (role, text) in enumerate(utts):
        if role == "seeker":
            yield SeekerTurn(str(dialogue["conversationId"]), k, text, tuple(utts[max(0, k - 2) : k]), facts)


def fill_titles(text: str, facts: dict[str, MovieFact], render: object = None) -> str:
    """``@id`` written out: "Title (Year)", or ``render(fact)`` when given."""

    def sub(m: re.Match[str]) -> str:
        fact = facts.get(m.group(1))
        if fact is None:
            return m.group(0)
        return render(fact) if callable(render) else fact.title

    return _AT.sub(sub, text)


def turns_by_split(dialogues: Iterable[dict], evaluated: set[str]) -> dict[Split, list[SeekerTurn]]:
    out: dict[Split, list[SeekerTurn]] = {"train": [], "dev": [], "test": [], "unused": []}
    for d in dialogues:
        out[split_of(str(d["conversationId"]), evaluated)].extend(seeker_turns(d))
    return out

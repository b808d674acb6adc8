"""What a reply is about, besides the films: the user's taste in a few words, what a question should
ask for, and what a recommendation answers (a critique, a rejection)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crs.reply.answers import critique_change

if TYPE_CHECKING:
    from crs.catalog import Catalog, Item
    from crs.state import BeliefState
    from crs.understand.intents import Intent


def taste(belief: BeliefState, catalog: Catalog) -> tuple[list[str], list[str]]:
    """What the user likes and rules out, as the reply writer reads it: film labels, genres, names."""

    def name(kind: str, value: str) -> str:
        item = catalog.get(value) if kind == "item" else None
        return item.label if item is not None else value

    likes = [name(p.kind, p.value) for p in belief.preferences if p.polarity > 0][-5:]
    ruled_out = [name(p.kind, p.value) for p in belief.preferences if p.polarity < 0][-4:]
    return likes, ruled_out


def missing(belief: BeliefState) -> str:
    """What the agent knows least: a film they loved, a genre or mood, or an era."""
    if not belief.liked_items and not belief.liked_genres and not belief.values("keyword", 1):
        return "taste"
    if not belief.liked_items:
        return "film"
    if belief.year_min is None and belief.year_max is None:
        return "era"
    return "mood"


_QUESTIONS = {
    "taste": (
        "What kind of movie are you in the mood for? Tell me a film you loved, or a genre.",
        "Happy to help! What's a movie you really enjoyed lately?",
        "Sure! Are you after something funny, scary, exciting or moving tonight?",
    ),
    "film": (
        "Is there a film you loved that I could use as a starting point?",
        "Which movie of that kind have you enjoyed most?",
    ),
    "era": (
        "Do you prefer recent films, or are older classics fine too?",
        "Any decade you like best?",
    ),
    "mood": (
        "Anything you'd like more of, or less of, in the next picks?",
        "Should the next ones be lighter, darker, or more of the same?",
    ),
}


def ask_note(belief: BeliefState) -> str:
    """The ask turn's note for the writer: what to ask for."""
    return {
        "taste": "ask for a film they loved, or a genre or mood",
        "film": "ask for a film they loved",
        "era": "ask whether they prefer recent films or older ones",
        "mood": "ask what they would like more or less of",
    }[missing(belief)]


def ask_question(belief: BeliefState, catalog: Catalog, turn: int = 0) -> str:
    """A plain question for what is missing, varied by ``turn`` so it does not repeat word for word."""
    options = _QUESTIONS[missing(belief)]
    return options[turn % len(options)]


def recommend_note(intent: Intent, belief: BeliefState, catalog: Catalog, turn: int) -> str:
    """What a recommendation answers: a critique ("they want newer films"), or a rejection, after which
    the writer asks what was wrong with the rejected film."""
    if (item := turned_down(intent, belief, catalog, turn)) is not None:
        return f"they turned down {item.label}; ask what they did not like about it"
    if intent.critique:
        return f"they asked for {critique_change(intent.update)} than the last picks"
    return ""


def turned_down(intent: Intent, belief: BeliefState, catalog: Catalog, turn: int) -> Item | None:
    """The film this turn turned down without saying why ("I'll pass on the first one"): no critique
    that asks for a change, and no genre, person or theme ruled out in the same turn."""
    now = [p for p in belief.preferences if p.polarity < 0 and p.turn == turn]
    asked = intent.critique and critique_change(intent.update) != "something else"
    if asked or any(p.kind != "item" for p in now):
        return None
    # A film shown and turned down; not one the user named ("didn't care for The Notebook"), nor the
    # focus (asked about already).
    films = [p for p in now if p.kind == "item" and p.value in belief.shown and p.value != belief.focus]
    return catalog.get(films[-1].value) if films else None


_WHY_NOT = ("What didn't you like about {}?", "What put you off {}, so I can steer away from it?")


def why_not_question(intent: Intent, belief: BeliefState, catalog: Catalog, turn: int) -> str:
    """After a film turned down without a reason, a question for the reason ("" otherwise); the answer
    ("too violent", "I want something lighter") is read as a critique or a dislike next turn."""
    item = turned_down(intent, belief, catalog, turn)
    return _WHY_NOT[turn % len(_WHY_NOT)].format(item.label) if item is not None else ""

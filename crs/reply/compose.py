"""What a reply is about, besides the films: the user's taste in a few words, what a question should
ask for, and what a recommendation answers (a critique, a rejection)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crs.answers import critique_change

if TYPE_CHECKING:
    from crs.catalog import Catalog
    from crs.intents import Intent
    from crs.state import BeliefState


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
    if intent.critique:
        return f"they asked for {critique_change(intent.update)} than the last picks"
    rejected = [p for p in belief.preferences if p.kind == "item" and p.polarity < 0 and p.turn == turn]
    if rejected and (item := catalog.get(rejected[-1].value)) is not None:
        return f"they turned down {item.label}; ask what they did not like about it"
    return ""

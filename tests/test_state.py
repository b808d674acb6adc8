from __future__ import annotations

from crs.state import BeliefState, BeliefUpdate, Preference, apply, mark_shown


def test_apply_newer_statement_wins_and_keeps_turns() -> None:
    b = apply(BeliefState(), BeliefUpdate((Preference("genre", "Horror", 1, turn=1),)))
    b = apply(b, BeliefUpdate((Preference("genre", "horror", -1, turn=2), Preference("item", "alien-1979", 1, turn=2))))
    assert b.liked_genres == [] and b.disliked_genres == ["horror"]
    assert b.liked_items == ["alien-1979"]
    assert [p.turn for p in b.preferences] == [2, 2]


def test_seen_and_exclusions() -> None:
    b = apply(BeliefState(), BeliefUpdate(seen=("a", "a"), preferences=(Preference("item", "b", -1),)))
    b = apply(b, BeliefUpdate(seen=("a", "c")))
    assert b.seen == ("a", "c")
    assert b.excluded_items == {"a", "b", "c"}
    assert b.disliked_items == ["b"]


def test_retract_and_shown_are_pure() -> None:
    b0 = apply(BeliefState(), BeliefUpdate((Preference("genre", "Horror", -1),)))
    b1 = apply(b0, BeliefUpdate(retract=(("genre", "HORROR"),)))
    assert b1.disliked_genres == [] and b0.disliked_genres == ["Horror"]
    b2 = mark_shown(mark_shown(b1, ["x", "y"]), ["y", "z"])
    assert b2.shown == ("x", "y", "z") and b1.shown == ()

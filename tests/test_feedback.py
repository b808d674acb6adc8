from __future__ import annotations

import pytest

from crs.app.feedback import chips, rate_item, remove_chip, removed_keys, visible_cards
from crs.catalog import Catalog
from crs.state import BeliefState, BeliefUpdate, Constraint, Preference, apply


def _belief() -> BeliefState:
    return apply(
        BeliefState(),
        BeliefUpdate(
            preferences=(Preference("item", "alien-1979", 1), Preference("genre", "Romance", -1)),
            seen=("seven-1995",),
            constraints=(Constraint("year_min", 1980),),
        ),
    )


def test_thumbs_down_adds_a_disliked_item_from_the_ui() -> None:
    belief = rate_item(_belief(), "heat-1995", "down", turn=2)
    pref = belief.preferences[-1]
    assert (pref.kind, pref.value, pref.polarity, pref.source, pref.turn) == ("item", "heat-1995", -1, "ui", 2)
    assert "heat-1995" in belief.disliked_items and "heat-1995" in belief.excluded_items
    assert "alien-1979" in belief.liked_items  # the rest is kept


def test_thumbs_up_then_down_keeps_only_the_newer_rating() -> None:
    belief = rate_item(rate_item(BeliefState(), "heat-1995", "up"), "heat-1995", "down")
    assert belief.liked_items == [] and belief.disliked_items == ["heat-1995"]
    belief = rate_item(belief, "heat-1995", "up")
    assert belief.liked_items == ["heat-1995"] and belief.disliked_items == []


def test_seen_is_recorded_once_and_is_not_a_dislike() -> None:
    belief = rate_item(rate_item(BeliefState(), "jaws-1975", "seen"), "jaws-1975", "seen")
    assert belief.seen == ("jaws-1975",) and belief.disliked_items == []


def test_unknown_action_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown card action"):
        rate_item(BeliefState(), "x", "love")  # type: ignore[arg-type]


def test_rating_does_not_mutate_the_old_belief() -> None:
    old = _belief()
    rate_item(old, "heat-1995", "down")
    assert old == _belief()


def test_chips_list_every_part_of_the_belief_with_catalog_labels(catalog: Catalog) -> None:
    got = {(c.group, c.key, c.label) for c in chips(_belief(), catalog)}
    assert got == {
        ("likes", "pref:item:alien-1979", "Alien (1979)"),
        ("dislikes", "pref:genre:Romance", "Romance"),
        ("seen", "seen:seven-1995", "Seven (1995)"),
        ("limits", "limit:year_min", "from 1980 on"),
    }
    # Without a catalog the ids stand in for labels.
    assert {c.label for c in chips(_belief())} == {"alien-1979", "Romance", "seven-1995", "from 1980 on"}


def test_removing_each_chip_retracts_exactly_that() -> None:
    belief = _belief()
    assert remove_chip(belief, "pref:item:alien-1979").liked_items == []
    assert remove_chip(belief, "pref:genre:romance").disliked_genres == []  # keys match case-blind
    assert remove_chip(belief, "seen:seven-1995").seen == ()
    assert remove_chip(belief, "limit:year_min").year_min is None
    for key in ("pref:item:alien-1979", "seen:seven-1995", "limit:year_min", "pref:genre:Romance"):
        assert len(chips(remove_chip(belief, key))) == 3
    # Unknown or stale keys change nothing.
    for key in ("", "bogus", "pref:item:nope", "seen:nope", "limit:year_max", "pref::"):
        assert remove_chip(belief, key) == belief


def test_removed_keys_and_visible_cards() -> None:
    assert removed_keys(["a", "b", "c"], ["a", "c"]) == ["b"]
    assert removed_keys(["a", "b"], None) == ["a", "b"]
    belief = rate_item(rate_item(BeliefState(), "b", "down"), "c", "seen")
    belief = rate_item(belief, "a", "up")
    assert visible_cards(("a", "b", "c", "d"), belief) == ("a", "d")

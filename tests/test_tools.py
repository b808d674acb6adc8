from __future__ import annotations

import pytest

from crs.catalog import Item
from crs.rank.candidates import Candidate, score
from crs.state import BeliefState, Preference
from crs.tools import ToolCalls, tool


def cand(item_id: str, sim: float, genres: tuple[str, ...] = (), cast: tuple[str, ...] = ()) -> Candidate:
    return Candidate(Item(item_id, item_id.title(), 2000, genres, cast), sim, sim)


def test_score_boosts_liked_genres_and_people_and_drops_excluded() -> None:
    belief = BeliefState(
        preferences=(
            Preference("genre", "Comedy", 1),
            Preference("person", "Bill Murray", 1),
            Preference("item", "liked", 1),
            Preference("item", "hated", -1),
        ),
        seen=("seen",),
    )
    cands = [
        cand("plain", 0.60),
        cand("comedy", 0.55, ("Comedy",)),
        cand("murray", 0.50, ("Comedy",), ("Bill Murray",)),
        cand("hated", 0.99),
        cand("seen", 0.98),
        cand("liked", 0.97),
    ]
    ranked = score(cands, belief, k=10)
    assert [c.item.id for c in ranked] == ["murray", "comedy", "plain"]
    assert ranked[0].reasons == ("Comedy", "Bill Murray")
    assert ranked[0].similarity == 0.50 and ranked[0].score > ranked[1].score
    assert len(score(cands, belief, k=1)) == 1


def test_a_tool_is_a_plain_function_that_records_its_calls_when_asked() -> None:
    @tool(summary=lambda out, a: f"got {out} from {len(a['secret'])} hidden chars", hidden=("secret",))
    def double(x: int, secret: str, note: str = "n" * 400) -> int:
        """Twice x."""
        return 2 * x

    assert double(4, "pw") == 8 and double.__doc__ == "Twice x." and double.name == "double"
    calls = ToolCalls()
    assert double(21, secret="pw", calls=calls) == 42
    (event,) = calls.take()
    assert event.call.name == "double" and event.call.arguments == {"x": 21, "note": "n" * 300 + "…"}
    assert event.result.output == 42 and event.result.summary == "got 42 from 2 hidden chars"
    assert event.result.seconds >= 0
    assert calls.take() == [] and len(calls.events) == 1  # take() gives each event once; events keeps all
    double(1, "x", calls=calls)
    assert [e.result.output for e in calls.take()] == [2]


def test_score_weighs_strength_and_themes() -> None:
    belief = BeliefState(
        preferences=(
            Preference("genre", "Comedy", 1, strength=0.5),
            Preference("genre", "Drama", 1, strength=1.5),
            Preference("keyword", "time travel", 1),
            Preference("keyword", "zombies", -1),
        )
    )

    def with_text(item_id: str, genres: tuple[str, ...], summary: str) -> Candidate:
        return Candidate(Item(item_id, item_id, 2000, genres, (), summary=summary), 0.5, 0.5)

    cands = [
        with_text("comedy", ("Comedy",), "A family moves house."),
        with_text("drama", ("Drama",), "A family moves house."),
        with_text("timetravel", (), "A teenager is sent back in time in a time machine."),
        with_text("zombie", ("Drama",), "Zombies overrun a town."),
    ]
    ranked = score(cands, belief, k=10)
    order = [c.item.id for c in ranked]
    # A strongly liked genre beats a mildly liked one; a rejected theme sinks below both.
    assert order.index("drama") < order.index("comedy") < order.index("zombie")
    assert "time travel" in next(c for c in ranked if c.item.id == "timetravel").reasons


def test_a_broad_request_leans_on_popularity_but_keeps_to_its_genre() -> None:
    from dataclasses import replace

    belief = BeliefState(preferences=(Preference("genre", "Sports", 1),))
    known = replace(cand("inception", 0.40, ("Science Fiction",)).item, popularity=300.0)
    cands = [
        Candidate(known, 0.40, 0.40),
        Candidate(replace(cand("sandlot", 0.36, ("Sports",)).item, popularity=60.0), 0.36, 0.36),
        cand("obscure", 0.45, ("Sports",)),
    ]
    narrow = [c.item.id for c in score(cands, belief, k=3)]
    assert narrow[0] == "obscure"  # similarity decides when popularity weighs little
    broad = [c.item.id for c in score(cands, belief, k=3, broad=True)]
    assert broad == ["sandlot", "obscure", "inception"]


def test_a_failing_tool_is_recorded_with_its_error_and_still_raises() -> None:
    @tool(summary=lambda out, a: "never")
    def broken(x: int) -> int:
        raise RuntimeError(f"no {x}")

    calls = ToolCalls()
    with pytest.raises(RuntimeError, match="no 3"):
        broken(3, calls=calls)
    (event,) = calls.take()
    assert event.call.arguments == {"x": 3} and event.result.output is None
    assert event.result.error == "RuntimeError: no 3" and event.result.summary == "failed: no 3"

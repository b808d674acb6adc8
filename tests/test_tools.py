from __future__ import annotations

from crs.catalog import Item
from crs.state import BeliefState, Preference
from crs.tools import Candidate, run_tool, score


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


def test_run_tool_records_the_call() -> None:
    out, event = run_tool("double", lambda x: 2 * x, lambda r: f"got {r}", x=21)
    assert out == 42
    assert event.call.name == "double" and event.call.arguments == {"x": 21}
    assert event.result.summary == "got 42" and event.result.seconds >= 0

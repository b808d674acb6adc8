"""Profiles: reading the text into preferences, chat edits, summarisation, and the agent using them
(real catalog linker; real Chroma store, embedder and SmolLM2 where the turn depends on them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crs.agent import Agent
from crs.catalog import Catalog
from crs.llm.base import Message
from crs.llm.scripted import ScriptedChatModel
from crs.profiles.db import ProfileStore
from crs.profiles.summary import (
    HistoryItem,
    TasteFacts,
    combine,
    movielens_title,
    plain_paragraph,
    profile_text,
    summarise,
    summarise_many,
)
from crs.profiles.text import (
    ProfileEdit,
    apply_edit,
    likes_line,
    parse_profile,
    profile_request,
    render_profile,
    split_sections,
    with_profile,
)
from crs.state import BeliefState, FinalEvent, Preference, Session, ToolEvent
from tests.conftest import test_config

PROFILE = """I mostly watch science fiction and crime films, and I loved Alien. I can't stand romance.
Films should feel hopeful.

Likes:
- Tom Hanks
- Miyazaki
Dislikes:
- Horror
- gore
"""


def prefs(parse) -> set[tuple[str, str, int]]:  # noqa: ANN001
    return {(p.kind, p.value, p.polarity) for p in parse.update.preferences}


def test_parse_reads_lists_and_paragraph(linker) -> None:  # noqa: ANN001
    parse = parse_profile(PROFILE, linker)
    assert prefs(parse) == {
        ("genre", "Science Fiction", 1),
        ("genre", "Crime", 1),
        ("item", "alien-1979", 1),
        ("genre", "Romance", -1),
        ("person", "Tom Hanks", 1),
        ("keyword", "miyazaki", 1),  # unlinked short entry: a keyword looked for in descriptions
        ("genre", "Horror", -1),
        ("keyword", "violent", -1),  # "gore" is a sign of violence
    }
    assert all(p.source == "profile" for p in parse.update.preferences)
    assert parse.unparsed == ("Films should feel hopeful.",)  # kept, and reported
    assert likes_line(parse, linker.catalog).startswith("likes Science Fiction, Crime, Alien (1979)")


def test_list_wins_over_paragraph_and_bad_text_is_harmless(linker) -> None:  # noqa: ANN001
    parse = parse_profile("I hate westerns.\n\nLikes: Western, Heat (1995)", linker)
    assert ("genre", "Western", 1) in prefs(parse) and ("genre", "Western", -1) not in prefs(parse)
    assert ("item", "heat-1995", 1) in prefs(parse)
    for text in ("", "   \n\n", "Likes:", "\x00\x1b[31m", "a" * 5000, "Dislikes:\n- " + "very long entry " * 20):
        parse_profile(text, linker)  # never raises
    assert parse_profile("Dislikes:\n- " + "very long entry " * 20, linker).unparsed


def test_sections_round_trip() -> None:
    s = split_sections(PROFILE)
    assert s.likes == ("Tom Hanks", "Miyazaki") and s.dislikes == ("Horror", "gore") and len(s.free) == 2
    again = split_sections(render_profile(s.free, s.likes, s.dislikes))
    assert again.likes == s.likes and again.dislikes == s.dislikes


@pytest.mark.parametrize(
    ("instruction", "added", "removed", "now_has", "now_lacks"),
    [
        ("forget that I dislike horror", (), ("Horror",), set(), {("genre", "Horror", -1)}),
        ("add that I love horror", ("likes Horror",), ("Horror",), {("genre", "Horror", 1)}, {("genre", "Horror", -1)}),
        ("add that I love Miyazaki", ("likes Miyazaki",), (), {("keyword", "miyazaki", 1)}, set()),
        ("I don't watch anything with gore", ("dislikes gore",), (), {("keyword", "violent", -1)}, set()),
        (
            "update my profile: I love westerns but no musicals",
            ("likes Western", "dislikes Musical"),
            (),
            {("genre", "Western", 1), ("genre", "Musical", -1)},
            set(),
        ),
        ("forget that I like Tom Hanks", (), ("Tom Hanks",), set(), {("person", "Tom Hanks", 1)}),
        ("remove gore from my profile", (), ("gore",), set(), {("keyword", "violent", -1)}),
        # The paragraph's sentence about romance goes too (it would state the old view).
        ("add that I like romance", ("likes Romance",), ("I can't stand romance.",), {("genre", "Romance", 1)}, set()),
    ],
)
def test_chat_edits_rewrite_the_profile(linker, instruction, added, removed, now_has, now_lacks) -> None:  # noqa: ANN001
    result = apply_edit(PROFILE, instruction, linker)
    assert result.added == added and result.removed == removed and result.unparsed == ()
    after = prefs(parse_profile(result.text, linker))
    assert now_has <= after and not (now_lacks & after)
    assert "Films should feel hopeful." in result.text  # the rest of the profile is kept


def test_adding_keeps_sentences_that_say_more(linker) -> None:  # noqa: ANN001
    result = apply_edit("I love science fiction but not horror.", "add that I love horror", linker)
    assert result.removed == () and "I love science fiction but not horror." in result.text
    after = prefs(parse_profile(result.text, linker))
    assert {("genre", "Horror", 1), ("genre", "Science Fiction", 1)} <= after  # the list wins
    assert ("genre", "Horror", -1) not in after


def test_an_edit_that_cannot_be_read_is_kept_and_reported(linker) -> None:  # noqa: ANN001
    result = apply_edit(PROFILE, "remember that films should make me think about life deeply", linker)
    assert result.unparsed == ("films should make me think about life deeply",)
    assert "films should make me think about life deeply." in result.text
    assert prefs(parse_profile(result.text, linker)) == prefs(parse_profile(PROFILE, linker))
    nothing = apply_edit(PROFILE, "forget that I like sushi", linker)
    assert not nothing.changed and nothing.text == PROFILE


def test_profile_requests_are_told_from_chat() -> None:
    for text in (
        "forget that I like horror",
        "add that I love Miyazaki",
        "I don't watch anything with gore",
        "update my profile: no musicals",
        "please remember that I adore westerns",
        "remove Tom Hanks from my profile",
    ):
        assert profile_request(text) == "edit", text
    assert profile_request("what's in my profile?") == "show"
    for text in ("I loved Alien but no romance", "forget horror", "something newer", "I watched Heat yesterday"):
        assert profile_request(text) is None, text


def test_conversation_wins_over_the_profile(linker) -> None:  # noqa: ANN001
    parse = parse_profile(PROFILE, linker)
    said = BeliefState(preferences=(Preference("genre", "Horror", 1, turn=1),))
    merged = with_profile(said, parse)
    assert "Horror" in merged.liked_genres and "Horror" not in merged.disliked_genres
    assert "Romance" in merged.disliked_genres and "alien-1979" in merged.liked_items
    forgotten = with_profile(BeliefState(), parse, suppressed={("genre", "romance")})
    assert "Romance" not in forgotten.disliked_genres


def test_movielens_titles() -> None:
    assert movielens_title("Matrix, The (1999)") == ("The Matrix", 1999)
    assert movielens_title("Seven (a.k.a. Se7en) (1995)") == ("Seven", 1995)
    assert movielens_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)")[0] == (
        "The City of Lost Children"
    )


HISTORY = [
    HistoryItem(f"Film {n} (199{n % 10})", ("Horror",) if n % 2 else ("Comedy",), 5.0 - n % 5) for n in range(12)
]


def test_taste_facts_are_counted_and_combined_both_ways() -> None:
    """12 items: Comedy rated 5, 3, 1, 4, 2, 5; Horror 4, 2, 5, 3, 1, 4. Likes are ratings of 4 or more."""
    facts = TasteFacts.of(HISTORY)
    assert dict(facts.liked) == {"Comedy": 3, "Horror": 3} and facts.n_liked == 6
    assert dict(facts.disliked) == {"Comedy": 2, "Horror": 2}
    assert facts.liked_genres() == ["Comedy", "Horror"] and facts.disliked_genres() == []  # liked as often
    tree = combine(HISTORY, block_size=5, method="hierarchical")
    assert dict(tree.liked) == dict(facts.liked) and tree.loved == facts.loved  # counts add up in any tree
    recurrent = combine(HISTORY, block_size=5, method="recurrent")
    assert recurrent.n_liked < facts.n_liked  # older blocks weigh less
    hater = TasteFacts.of([HistoryItem(f"H{n} (2000)", ("Horror",), 1.0) for n in range(3)] + HISTORY[:1])
    assert hater.disliked_genres() == ["Horror"] and hater.liked_genres() == ["Comedy"]
    assert "Horror" in plain_paragraph(hater) and "dislike" in plain_paragraph(hater)
    with pytest.raises(Exception, match="method"):
        combine(HISTORY, method="sideways")
    with pytest.raises(ValueError, match="empty"):
        combine([])


def test_a_phrasing_is_kept_only_when_it_states_the_facts(linker) -> None:  # noqa: ANN001
    history = [
        HistoryItem("Alien (1979)", ("Horror", "Science Fiction"), 5.0),
        HistoryItem("Halloween (1978)", ("Horror",), 4.5),
        HistoryItem("Titanic (1997)", ("Romance", "Drama"), 1.0),
        HistoryItem("Notting Hill (1999)", ("Romance", "Comedy"), 1.5),
    ]
    good = "You love Horror and Science Fiction, Alien (1979) above all. Romance is not for you."
    echo = "Genres they like most: Horror, Science Fiction. Genres they dislike: Romance."  # the prompt said back
    replies = iter([good, "You love comedies and Tom Hanks.", "", echo])

    def generate(batch: list[list[Message]]) -> list[str]:
        assert "Genres they like most: Horror, Science Fiction" in batch[0][-1].content
        return [next(replies) for _ in batch]

    drafts = summarise_many([history] * 4, generate, linker)
    assert [d.phrased for d in drafts] == [True, False, False, False]
    assert drafts[0].paragraph == good and drafts[1].paragraph == plain_paragraph(drafts[1].facts)
    s = split_sections(profile_text(drafts[1]))
    assert s.likes == ("Horror", "Science Fiction", "Alien (1979)", "Halloween (1978)")
    assert s.dislikes == ("Romance", "Titanic (1997)", "Notting Hill (1999)")


@pytest.mark.slow
def test_real_model_phrases_a_history(local_llm, linker) -> None:  # noqa: ANN001
    items = [
        HistoryItem("Alien (1979)", ("Horror", "Science Fiction"), 5.0),
        HistoryItem("Halloween (1978)", ("Horror",), 4.5),
        HistoryItem("The Shining (1980)", ("Horror",), 5.0),
        HistoryItem("Titanic (1997)", ("Romance", "Drama"), 1.0),
        HistoryItem("Notting Hill (1999)", ("Romance", "Comedy"), 1.5),
    ]
    summary = summarise(items, local_llm, linker, block_size=5, method="hierarchical")
    assert summary.llm_calls == 1 and summary.draft.paragraph.strip()
    # Whatever the model wrote, the profile says what the ratings say.
    prefs = parse_profile(profile_text(summary.draft), linker).update.preferences
    genres = {(p.value, p.polarity) for p in prefs if p.kind == "genre"}
    assert genres == {("Horror", 1), ("Science Fiction", 1), ("Romance", -1)}


# ---- the agent ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog, embedder):  # noqa: ANN001, ANN201
    from crs.rank.store import ItemStore

    cfg = test_config(tmp_path_factory.mktemp("profile-agent"))
    store = ItemStore(cfg, embedder=embedder)
    store.index(small_catalog.items, progress=False)
    return store


def horror(final: FinalEvent) -> list[str]:
    return [i.label for i in final.items if i.has_genre("Horror")]


@pytest.mark.slow
def test_real_profile_edit_changes_the_next_recommendations(store, catalog: Catalog, local_llm, tmp_path: Path) -> None:  # noqa: ANN001
    profiles = ProfileStore(tmp_path / "crs.db")
    profiles.save("ann", "I love thrillers and science fiction. I can't stand horror.", "edit:test")
    agent = Agent(test_config(tmp_path), catalog, store, local_llm, profiles=profiles)
    session = Session(id="s1", user="ann")

    first = agent.respond(session, "what should I watch tonight?")
    assert first.act == "recommend" and len(first.items) >= 3
    assert not horror(first), horror(first)
    assert "Horror" in first.belief.disliked_genres

    events = list(agent.step(session, "forget that I can't stand horror"))
    tool = next(e for e in events if isinstance(e, ToolEvent))
    assert tool.call.name == "edit_profile" and isinstance(tool.result.output, ProfileEdit)
    final = agent.respond(session, "add that I love horror films")
    assert final.act == "edit_profile" and "likes Horror" in final.reply
    stored = profiles.get("ann")
    assert stored is not None and stored.version == 3 and stored.source == "edit:chat"

    after = agent.respond(session, "what should I watch tonight?")
    assert after.act == "recommend" and horror(after), [i.label for i in after.items]
    assert [t["act"] for t in profiles.export("ann")["turns"]] == [
        "recommend",
        "edit_profile",
        "edit_profile",
        "recommend",
    ]


def test_profile_reaches_the_reply_prompt_and_users_stay_apart(store, catalog: Catalog, tmp_path: Path) -> None:  # noqa: ANN001
    profiles = ProfileStore(tmp_path / "crs.db")
    profiles.save("ann", "Dislikes:\n- Horror\nLikes:\n- Thriller", "edit:test")
    profiles.save("bob", "Likes:\n- Comedy", "edit:test")
    llm = ScriptedChatModel(default="A good pick.")
    agent = Agent(test_config(tmp_path), catalog, store, llm, profiles=profiles)

    ann = agent.respond(Session(id="a", user="ann"), "what should I watch tonight?")
    assert "Their profile: likes Thriller; dislikes Horror." in llm.calls[-1][-1].content
    assert not horror(ann) and "Comedy" not in ann.belief.liked_genres
    bob = agent.respond(Session(id="b", user="bob"), "what should I watch tonight?")
    assert "Their profile: likes Comedy." in llm.calls[-1][-1].content
    assert "Horror" not in bob.belief.disliked_genres and "Thriller" not in bob.belief.liked_genres
    # No user: no profile is read; the turn is logged for research as the local user, who gets no profile.
    anon = agent.respond(Session(id="c", user=""), "a thriller please")
    assert "Their profile" not in llm.calls[-1][-1].content and anon.items
    assert profiles.users() == ["ann", "bob", "local"] and profiles.get("local") is None
    assert [t["session_id"] for t in profiles.turns("local")] == ["c"]

    shown = agent.respond(Session(id="a", user="ann"), "show me my profile")
    assert shown.act == "show_profile" and "- Horror" in shown.reply and not shown.items
    unread = agent.respond(Session(id="a", user="ann"), "remember that films should make me think")
    assert "could not turn it into a preference" in unread.reply
    assert "films should make me think" in profiles.get("ann").text  # type: ignore[union-attr]
    huge = agent.respond(Session(id="a", user="ann"), "remember that " + "films with long slow scenes " * 200)
    assert huge.act == "edit_profile" and "at most 4,000" in huge.reply

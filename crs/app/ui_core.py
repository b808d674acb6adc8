"""What the page's handlers do, without Gradio: logins, whose session a request may use, one
streamed chat turn, card buttons, and the profile tab's reads and writes. ``crs.app.ui`` wires
these to the page; tests call them directly."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crs.app import feedback
from crs.app.sessions import bound_turns
from crs.app.ui_render import compose_message, profile_history, profile_status, safe_markdown, when
from crs.config import ConfigError
from crs.rank.metadata import StoreError
from crs.state import BeliefState, FinalEvent, NoticeEvent, Session, StateEvent, TokenEvent, ToolEvent

if TYPE_CHECKING:
    from crs.agent import Agent

log = logging.getLogger(__name__)

HistoryT = list[dict[str, str]]
LOCAL_USER = "local"
MAX_PROFILE_CHARS = 20_000


def parse_auth(spec: str) -> list[tuple[str, str]]:
    """``"user:pass,user2:pass2"`` -> [(user, pass), ...]; "" -> [] (no login)."""
    pairs = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            # Never echo the entry: it may hold a password.
            raise ConfigError("[serve] auth must look like 'user:password,user2:password2'")
        pairs.append((user.strip(), password))
    users = [u for u, _ in pairs]
    if len(set(users)) != len(users):
        raise ConfigError("[serve] auth names a user twice")
    return pairs


def user_of(request: object) -> str:
    """The logged-in user of a request, or the local user when there is no login."""
    name = getattr(request, "username", None)
    return name if isinstance(name, str) and name else LOCAL_USER


def new_session(user: str = LOCAL_USER) -> Session:
    return Session(id=uuid.uuid4().hex, user=user)


def owned_session(sess: object, request: object) -> Session | None:
    """The session a request may use: its own (the user is the request's login), a new one for
    that login when there is none, or None (refused) when the session is another user's."""
    user = user_of(request)
    if not isinstance(sess, Session):
        return new_session(user)
    if sess.user != user:
        log.warning("refused a request by %r holding a session of another user", user)
        return None
    return sess


def expired_notice(minutes: float) -> str:
    return (
        f"This conversation had been idle for more than {minutes:g} minutes and was forgotten, "
        "so I started a new one (your saved profile is kept)."
    )


@dataclass
class TurnView:
    """One streamed step of a turn, for the page: None means "unchanged"."""

    history: HistoryT
    session: Session
    belief: BeliefState | None = None
    cards: tuple[str, ...] = ()  # the films recommended this turn (final step only)
    final: bool = False  # the turn is over; session.belief is the new belief


def respond(
    agent: Agent,
    text: str,
    history: HistoryT | None,
    session: Session | None,
    notes: Sequence[str] = (),
) -> Iterator[TurnView]:
    """One chat turn, streamed. ``notes`` are shown above the reply; the session keeps its last
    ``[serve] max_turns`` turns and the chat its last as many exchanges."""
    session = session or new_session()
    max_turns = max(1, agent.cfg.serve.max_turns)
    history = list(history or [])[-2 * max_turns + 2 :]
    history.append({"role": "user", "content": safe_markdown(text if isinstance(text, str) else "")})
    history.append({"role": "assistant", "content": ""})
    notes = list(notes)
    steps: list[str] = []
    reply = ""
    try:
        for event in agent.step(session, text):
            view = TurnView(history, session)
            if isinstance(event, TokenEvent):
                reply += event.text
            elif isinstance(event, NoticeEvent):
                notes.append(event.message)
            elif isinstance(event, ToolEvent):
                steps.append(f"{event.call.name}: {event.result.summary} ({event.result.seconds:.2f}s)")
            elif isinstance(event, StateEvent):
                view.belief = event.belief
            elif isinstance(event, FinalEvent):
                reply = event.reply or reply
                view.belief = event.belief
                view.cards = tuple(i.id for i in event.items)
                view.final = True
                bound_turns(session, max_turns)
            history[-1]["content"] = compose_message(reply, notes, steps)
            yield view
    except StoreError as exc:  # the item index failed mid-turn: say what to do about it
        log.error("turn failed: %s", exc)
        history[-1]["content"] = compose_message(reply, [*notes, f"The item index failed: {exc}"], steps)
        yield TurnView(history, session, final=True)
    except Exception:  # the server must outlive any bug in a turn
        log.exception("turn failed")
        history[-1]["content"] = (
            compose_message(reply, notes, steps) + "\n\n_Sorry, something went wrong on my side; please try again._"
        )
        yield TurnView(history, session, final=True)


def card_action(session: Session, cards: tuple[str, ...], slot: int, action: feedback.Action) -> tuple[str, str]:
    """Apply a card button to the session's belief; return (item id, what happened) or ("", "")
    when the slot is empty (a stale click)."""
    if not 0 <= slot < len(cards):
        return "", ""
    item_id = cards[slot]
    session.belief = feedback.rate_item(session.belief, item_id, action, turn=len(session.turns))
    return item_id, action


def profile_store(agent: Agent) -> Any:
    return getattr(agent, "profiles", None)


def load_profile(agent: Agent, user: str) -> tuple[str, str, str, list[tuple[str, int]]]:
    """(text, status, history table, version choices) for the profile tab."""
    store = profile_store(agent)
    if store is None:
        return "", "Profiles are not available: no profile store is configured.", "", []
    try:
        current = store.get(user)
        versions = list(store.history(user))
    except Exception as exc:
        log.exception("reading the profile of %s failed", user)
        return "", f"Could not read the profile: {safe_markdown(exc)}", "", []
    choices = [(f"v{p.version} · {when(p.created_at)} · {p.source}", p.version) for p in versions]
    status = profile_status(current, user, local=user == LOCAL_USER)
    return (current.text if current else ""), status, profile_history(versions), choices


def save_profile(agent: Agent, user: str, text: str) -> str:
    """Save an edited profile as a new version; return a status line (never raises)."""
    store = profile_store(agent)
    if store is None:
        return "Profiles are not available: no profile store is configured."
    text = (text or "").strip()
    if not text:
        return "The profile is empty; nothing was saved."
    if len(text) > MAX_PROFILE_CHARS:
        return f"The profile is {len(text):,} characters long; the limit is {MAX_PROFILE_CHARS:,}. Nothing was saved."
    try:
        profile = store.save(user, text, "edit:ui")
    except ValueError as exc:
        return f"Not saved: {safe_markdown(exc)}"
    except Exception as exc:
        log.exception("saving the profile of %s failed", user)
        return f"Not saved: the profile store failed ({type(exc).__name__})."
    return f"Saved as version {profile.version}."

"""Keeping conversations bounded in memory: a session's turn list, and idle or surplus sessions.

``bound_turns`` keeps a session's last turns whole and folds older ones into one summary turn
that holds only what later turns still need: the preference keys the user asked to forget, so
the saved profile does not bring them back (``crs.profiles.text.suppressed_keys`` reads them). The
belief already holds everything else the old turns said. Tool outputs (up to 50 candidate
items each) are dropped from all but the latest turns (a profile edit that lifts an earlier
"forget" says so in its turn's ``lifted`` keys, not in its output).

``SessionReaper`` drops whole page sessions (Gradio's per-tab state, including its copy of the
page's configuration, about 150 KB each) once they have been idle for the configured time;
Gradio's own ``state_session_capacity`` caps how many are held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from crs.profiles.text import suppressed_keys
from crs.state import BeliefUpdate, Session, Turn

log = logging.getLogger(__name__)

SUMMARY_ACT = "summary"
KEEP_TOOL_OUTPUTS = 2  # turns at the end whose tool outputs are kept whole


def bound_turns(session: Session, max_turns: int) -> None:
    """Keep ``session``'s last ``max_turns`` turns (at least 1); fold the rest into one summary turn."""
    max_turns = max(1, max_turns)
    turns = session.turns
    if len(turns) > max_turns + 1 or (len(turns) == max_turns + 1 and turns[0].act != SUMMARY_ACT):
        dropped, kept = turns[:-max_turns], turns[-max_turns:]
        forgotten = tuple(sorted(suppressed_keys(dropped, BeliefUpdate())))
        summary = Turn(
            index=dropped[-1].index,  # the last turn it stands for
            user=f"(turns up to {dropped[-1].index}, folded)",
            reply="",
            act=SUMMARY_ACT,
            item_ids=(),
            update=BeliefUpdate(retract=forgotten),
        )
        turns[:] = [summary, *kept]
    for turn in turns[:-KEEP_TOOL_OUTPUTS]:
        if any(e.result.output is not None for e in turn.tools):
            turn.tools = tuple(e.without_output() for e in turn.tools)


class SessionReaper:
    """Drops Gradio page sessions idle for longer than ``idle_seconds``.

    ``reap`` is cheap to call from any handler: it runs at most once per ``interval`` seconds.
    It reaches into Gradio's ``StateHolder`` (``session_data``, ``time_last_used``) and, for
    ``reap_blocks``, the queue's per-session maps (a message queue and a set of event ids per
    session that Gradio only clears when a client disconnects mid-event), which the tests pin
    for the installed Gradio."""

    def __init__(self, idle_seconds: float, interval: float | None = None) -> None:
        self.idle = timedelta(seconds=max(0.0, idle_seconds))
        self.interval = interval if interval is not None else min(60.0, max(1.0, idle_seconds / 4))
        self._last = float("-inf")
        self._lock = threading.Lock()
        self.dropped = 0

    def reap_blocks(self, blocks: Any, force: bool = False) -> int:
        """``reap`` a launched Gradio app: its state holder and its per-session queue maps."""
        queue = getattr(blocks, "_queue", None)
        maps = [
            getattr(queue, "pending_messages_per_session", None),
            getattr(queue, "pending_event_ids_session", None),
            getattr(blocks, "pending_streams", None),
            getattr(blocks, "pending_diff_streams", None),
        ]
        pending = getattr(queue, "pending_event_ids_session", None) or {}
        return self.reap(
            getattr(blocks, "state_holder", None),
            force,
            [m for m in maps if m is not None],
            busy=lambda sid: bool(pending.get(sid)),
        )

    def reap(
        self,
        state_holder: Any,
        force: bool = False,
        per_session: Sequence[MutableMapping] = (),
        busy: Callable[[str], bool] = lambda sid: False,
    ) -> int:
        """Delete the idle sessions of ``state_holder`` (and their entries in ``per_session``
        maps keyed by session id); return how many were dropped.

        Entries in ``per_session`` whose session ``state_holder`` no longer holds (Gradio evicts
        the least recently used session past ``state_session_capacity`` without telling anyone)
        go too, unless ``busy`` says an event of that session is still queued or unfinished."""
        if state_holder is None:
            return 0
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.interval:
                return 0
            self._last = now
        cutoff = datetime.now() - self.idle
        last_used: dict[str, datetime] = getattr(state_holder, "time_last_used", {})
        idle = [sid for sid, when in list(last_used.items()) if when < cutoff]
        for sid in idle:
            try:
                state_holder.delete_state(sid)  # runs the State components' delete callbacks
            except Exception:  # a callback failing must not keep the rest alive
                log.exception("deleting the state of an idle session failed")
            with state_holder.lock:
                state_holder.session_data.pop(sid, None)
                last_used.pop(sid, None)
            for mapping in per_session:
                mapping.pop(sid, None)
        held = state_holder.session_data
        for mapping in per_session:
            for sid in [sid for sid in list(mapping) if sid not in held and not busy(sid)]:
                mapping.pop(sid, None)
        if idle:
            self.dropped += len(idle)
            log.info("dropped %d idle session(s); %d held", len(idle), len(state_holder.session_data))
        return len(idle)

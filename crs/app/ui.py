"""The Gradio UI, a thin adapter over ``crs.agent.Agent``.

Each browser tab gets its own ``Session`` (held in ``gr.State``); the agent and its models are
shared. With logins configured (``[serve] auth``) the session and the profile belong to the
logged-in user; without, to the single local user "local". Every handler takes the user from
the authenticated request, never from the session: a session presented by another login (its
id leaked through a proxy log or a shared machine) is refused and left untouched. Handlers
never raise: an error becomes a message on the page.

Sessions are bounded (``[serve] session_idle_minutes``, ``max_sessions``, ``max_turns``; see
``crs.app.sessions``). Everything from the catalog, the model or the user is escaped on the server
before it reaches the page's HTML or Markdown (``crs.app.ui_render``).

This module lays the page out (``layout`` returns the components as a ``Page``); the handlers that
answer its events are wired by ``crs.app.ui_events``.

Gradio cannot attach a callback to a button inside an HTML string, so the recommendations are
a fixed number of card slots (``crs-card-<i>``), each a column with its own buttons
(``crs-card-<i>-up``, ``-down``, ``-seen``); the ids of the films in the slots live in a
``gr.State``. The belief panel is one multi-select per group whose tokens are the chips.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crs.app import feedback
from crs.app.sessions import SessionReaper
from crs.app.ui_core import (
    LOCAL_USER,
    MAX_PROFILE_CHARS,
    HistoryT,
    TurnView,
    card_action,
    load_profile,
    new_session,
    owned_session,
    parse_auth,
    profile_store,
    respond,
    save_profile,
    user_of,
)
from crs.app.ui_events import FOREIGN_SESSION, Page, wire
from crs.app.ui_render import ATTRIBUTION, CSS, EMPTY_CARDS

if TYPE_CHECKING:
    import gradio as gr

    from crs.agent import Agent

# What the page's handlers do lives in crs.app.ui_core and crs.app.ui_events; these names are part of
# crs.app.ui's interface too.
__all__ = [
    "LOCAL_USER",
    "MAX_PROFILE_CHARS",
    "FOREIGN_SESSION",
    "HistoryT",
    "TurnView",
    "build_app",
    "card_action",
    "launch",
    "load_profile",
    "new_session",
    "owned_session",
    "parse_auth",
    "respond",
    "save_profile",
    "user_of",
]

log = logging.getLogger(__name__)

GROUP_LABELS = {"likes": "You like", "dislikes": "Not for you", "seen": "Already seen", "limits": "Limits"}
ACTION_LABELS = {"up": "Like", "down": "Not for me", "seen": "Seen it"}  # words: emoji fonts are not everywhere
EXAMPLES = (
    "I loved Alien but no romance please",
    "A funny crime movie from the 90s",
    "Something like Jaws, nothing before 1975",
)
WELCOME = (
    "**Hi! Tell me a film you loved, or what you are in the mood for.**\n\n"
    "I remember what you like and what you rule out, and I only recommend films from my catalog. "
    "Try one of these:"
)


def layout(slots: int, session_seconds: float) -> Page:
    """Lay out the page inside an open ``gr.Blocks``: the chat tab (chat, belief chips, card slots)
    and the profile tab."""
    import gradio as gr

    gr.Markdown(
        "## crs: a conversational movie recommender\n"
        "Tell me films you loved and what you don't want: "
        '*"I loved Alien but no romance please"*, *"a comedy from the 90s, nothing with Jim Carrey"*. '
        "Rate the cards with *Like*, *Not for me* or *Seen it*; remove anything I got wrong (the × on a chip) "
        "under *What I know about you*."
    )
    session = gr.State(None, time_to_live=session_seconds)
    cards = gr.State(())
    with gr.Tab("Chat", id="chat", elem_id="crs-tab-chat"), gr.Row():
        with gr.Column(scale=3):
            chat = gr.Chatbot(
                label="Chat",
                height=480,
                elem_id="crs-chat",
                buttons=["copy"],
                placeholder=WELCOME,
                examples=[{"text": e} for e in EXAMPLES],
            )
            text = gr.Textbox(placeholder="What are you in the mood for?", show_label=False, elem_id="crs-input")
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="crs-send")
                reset = gr.Button("New conversation", elem_id="crs-new")
            gr.Markdown("### What I know about you")
            chip_boxes = {}
            with gr.Column(elem_id="crs-belief"):
                for pair in (feedback.GROUPS[:2], feedback.GROUPS[2:]):
                    with gr.Row():
                        for g in pair:
                            chip_boxes[g] = gr.Dropdown(
                                choices=[],
                                value=[],
                                multiselect=True,
                                label=GROUP_LABELS[g],
                                interactive=True,
                                elem_id=f"crs-{g}",
                                min_width=200,
                            )
        with gr.Column(scale=2):
            gr.Markdown("### Recommendations")
            empty = gr.HTML(EMPTY_CARDS, elem_id="crs-cards-empty")
            columns, bodies, buttons = [], [], []
            for i in range(slots):
                with gr.Column(visible=False, elem_id=f"crs-card-{i}", elem_classes=["crs-card"]) as col:
                    bodies.append(gr.HTML("", elem_id=f"crs-card-{i}-body"))
                    with gr.Row(elem_classes=["crs-card-buttons"]):
                        for action in feedback.ACTIONS:
                            btn = gr.Button(
                                ACTION_LABELS[action], size="sm", elem_id=f"crs-card-{i}-{action}", min_width=40
                            )
                            buttons.append((i, action, btn))
                columns.append(col)
            notice = gr.Markdown("", elem_id="crs-feedback")
    with gr.Tab("Your profile", id="profile", elem_id="crs-tab-profile"):
        gr.Markdown(
            "Your taste in your own words: films, genres and people you like or avoid. "
            "Every save is kept as a new version, listed below."
        )
        profile_info = gr.Markdown("", elem_id="crs-profile-status")
        profile_text = gr.Textbox(label="Profile", lines=8, max_lines=20, elem_id="crs-profile-text")
        with gr.Row():
            save = gr.Button("Save", variant="primary", elem_id="crs-profile-save")
            reload = gr.Button("Reload", elem_id="crs-profile-reload")
        profile_note = gr.Markdown("", elem_id="crs-profile-note")
        versions = gr.Dropdown(
            choices=[], label="Show an older version in the editor", interactive=True, elem_id="crs-profile-version"
        )
        history = gr.Markdown("", elem_id="crs-profile-history")
    gr.HTML(f'<div class="crs-attribution">{ATTRIBUTION}</div>')
    return Page(
        session, cards, chat, text, send, reset, chip_boxes, empty, columns, bodies, buttons, notice,
        profile_text, profile_info, history, versions, save, reload, profile_note, slots,
    )  # fmt: skip


def build_app(agent: Agent) -> gr.Blocks:
    """Build the Blocks app (not launched): the layout, then its event handlers."""
    import gradio as gr

    serve = agent.cfg.serve
    with gr.Blocks(title="crs: movie recommender") as demo:
        page = layout(max(1, agent.cfg.retrieval.show), serve.session_idle_minutes * 60)
        wire(agent, demo, page, SessionReaper(serve.session_idle_minutes * 60))
    demo.queue(max_size=serve.max_queue, default_concurrency_limit=serve.concurrency)
    return demo


@dataclass
class Served:
    """The running server: the page (``blocks``) mounted at ``/`` of the HTTP API's app (``app``)."""

    blocks: gr.Blocks
    app: Any  # fastapi.FastAPI
    server: Any  # uvicorn.Server
    thread: threading.Thread | None
    url: str

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.blocks.close()


def launch(agent: Agent, host: str, port: int, prevent_thread_lock: bool = False) -> Served:
    """Serve the page and the HTTP API (``crs.app.api``) on ``host:port``. Blocks until the server
    stops, unless ``prevent_thread_lock``: then it runs in a thread and the ``Served`` closes it."""
    import gradio as gr
    import uvicorn

    from crs.app.api import build_api

    auth = parse_auth(agent.cfg.serve.auth)
    if auth:
        log.info("login required; %d user(s) configured", len(auth))
    if profile_store(agent) is None:
        # An agent built without a profile store: the profile tab still works, from the config.
        from crs.profiles.db import ProfileStore
        from crs.profiles.text import ProfileError

        try:
            agent.profiles = ProfileStore.from_config(agent.cfg)  # type: ignore[attr-defined]
        except ProfileError as exc:
            log.warning("the profile tab is disabled: %s", exc)
    demo = build_app(agent)
    demo.state_session_capacity = max(1, agent.cfg.serve.max_sessions)
    app = gr.mount_gradio_app(
        build_api(agent, auth),
        demo,
        path="/",
        auth=auth or None,
        auth_message="Log in to keep your own profile." if auth else None,
        show_error=False,
        css=CSS,
        theme=gr.themes.Soft(),
        footer_links=["gradio"],
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    url = f"http://{host}:{port}/"
    if not prevent_thread_lock:
        server.run()
        return Served(demo, app, server, None, url)
    thread = threading.Thread(target=server.run, name="crs-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.05)
    return Served(demo, app, server, thread, url)

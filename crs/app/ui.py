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

Gradio cannot attach a callback to a button inside an HTML string, so the recommendations are
a fixed number of card slots (``crs-card-<i>``), each a column with its own buttons
(``crs-card-<i>-up``, ``-down``, ``-seen``); the ids of the films in the slots live in a
``gr.State``. The belief panel is one multi-select per group whose tokens are the chips.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crs.app import feedback
from crs.app.sessions import SessionReaper
from crs.app.ui_core import (
    LOCAL_USER,
    MAX_PROFILE_CHARS,
    HistoryT,
    TurnView,
    card_action,
    expired_notice,
    load_profile,
    new_session,
    owned_session,
    parse_auth,
    profile_store,
    respond,
    save_profile,
    user_of,
)
from crs.app.ui_render import ATTRIBUTION, CSS, EMPTY_CARDS, card_html, reason_line, safe_markdown
from crs.state import BeliefState, Session

if TYPE_CHECKING:
    import gradio as gr

    from crs.agent import Agent

# What the page's handlers do lives in crs.app.ui_core; these names are part of crs.app.ui's interface too.
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
FOREIGN_SESSION = (
    "This conversation belongs to another login, so nothing was read or changed. Reload the page to start your own."
)
WELCOME = (
    "**Hi! Tell me a film you loved, or what you are in the mood for.**\n\n"
    "I remember what you like and what you rule out, and I only recommend films from my catalog. "
    "Try one of these:"
)


def build_app(agent: Agent) -> gr.Blocks:
    """Build the Blocks app (not launched)."""
    import gradio as gr

    slots = max(1, agent.cfg.retrieval.show)
    serve = agent.cfg.serve
    reaper = SessionReaper(serve.session_idle_minutes * 60)

    def needs_request(fn: Callable) -> Callable:
        # Gradio passes the request to a parameter annotated gr.Request; under postponed
        # annotations the string "gr.Request" cannot be resolved, so set the class itself.
        fn.__annotations__ = {"request": gr.Request}
        return fn

    def ensure(sess: Session | None, request: object) -> Session | None:
        """The request's own session (see ``owned_session``); None: refused. Idle page sessions
        are dropped on the way (at most once a minute)."""
        reaper.reap_blocks(demo)
        return owned_session(sess, request)

    with gr.Blocks(title="crs: movie recommender") as demo:
        gr.Markdown(
            "## crs: a conversational movie recommender\n"
            "Tell me films you loved and what you don't want: "
            '*"I loved Alien but no romance please"*, *"a comedy from the 90s, nothing with Jim Carrey"*. '
            "Rate the cards with *Like*, *Not for me* or *Seen it*; remove anything I got wrong (the × on a chip) "
            "under *What I know about you*."
        )
        session = gr.State(None, time_to_live=serve.session_idle_minutes * 60)
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

        panel = [cards, empty, *columns, *bodies, *chip_boxes.values()]

        def panel_values(sess: Session, ids: tuple[str, ...]) -> list:
            belief = sess.belief
            items = [it for it in (agent.catalog.get(i) for i in ids[:slots]) if it is not None]
            shown = tuple(it.id for it in items)
            liked = set(belief.liked_items)
            out: list = [shown, gr.HTML(visible=not items)]
            out += [gr.Column(visible=n < len(items)) for n in range(slots)]
            out += [
                card_html(items[n], reason_line(items[n], belief, agent.catalog), items[n].id in liked)
                if n < len(items)
                else ""
                for n in range(slots)
            ]
            return out + chip_values(belief)

        def chip_values(belief: BeliefState) -> list:
            all_chips = feedback.chips(belief, agent.catalog)
            out = []
            for g in feedback.GROUPS:
                mine = [(c.label, c.key) for c in all_chips if c.group == g]
                out.append(gr.Dropdown(choices=mine, value=[k for _, k in mine]))
            return out

        def chips_only(belief: BeliefState) -> list:
            return [gr.skip()] * (2 + 2 * slots) + chip_values(belief)

        @needs_request
        def on_load(sess, request):  # noqa: ANN001, ANN202
            if ensure(sess, request) is None:
                return [gr.skip(), gr.skip(), FOREIGN_SESSION, gr.skip(), gr.skip()]
            fresh = new_session(user_of(request))
            body, status, table, choices = load_profile(agent, fresh.user)
            return [fresh, body, status, table, gr.Dropdown(choices=choices, value=None)]

        profile_outputs = [profile_text, profile_info, history, versions]
        demo.load(on_load, [session], [session, *profile_outputs], api_name="load")

        @needs_request
        def on_message(message, history_, sess, ids, request):  # noqa: ANN001, ANN202
            expired = not isinstance(sess, Session) and bool(history_)  # the page outlived its session
            sess = ensure(sess, request)
            skip_panel = [gr.skip()] * len(panel)
            if sess is None:
                yield [gr.skip(), gr.skip(), gr.skip(), FOREIGN_SESSION, *skip_panel]
                return
            notes = [expired_notice(serve.session_idle_minutes)] if expired else []
            shown = list(history_ or [])[-2 * max(1, serve.max_turns) + 2 :]
            yield [shown + [{"role": "user", "content": safe_markdown(message or "")}], sess, "", "", *skip_panel]
            for view in respond(agent, message, history_, sess, notes):
                if view.final:
                    # Cards the user rejected in words ("not Heat") leave even when nothing new is shown.
                    ids = view.cards if view.cards else feedback.visible_cards(tuple(ids or ()), view.session.belief)
                    rest = panel_values(view.session, ids)
                elif view.belief is not None:
                    rest = chips_only(view.belief)
                else:
                    rest = skip_panel
                yield [view.history, view.session, "", "", *rest]

        chat_outputs = [chat, session, text, notice, *panel]
        limit = agent.cfg.serve.concurrency
        # Every way of sending a message shares one queue of turns ("turn").
        turn: dict[str, Any] = {"concurrency_limit": limit, "concurrency_id": "turn", "show_progress": "hidden"}
        # API clients (gradio_client) send a turn to /chat; the session is the client's session_hash.
        send.click(on_message, [text, chat, session, cards], chat_outputs, api_name="chat", **turn)
        text.submit(on_message, [text, chat, session, cards], chat_outputs, api_visibility="undocumented", **turn)

        def on_example(evt):  # noqa: ANN001, ANN202
            value = evt.value if isinstance(evt.value, dict) else {}
            return str(value.get("text", ""))

        on_example.__annotations__ = {"evt": gr.SelectData}
        chat.example_select(on_example, None, text, concurrency_limit=None, api_visibility="undocumented").then(
            on_message, [text, chat, session, cards], chat_outputs, api_visibility="undocumented", **turn
        )

        def make_card_handler(slot: int, action: feedback.Action) -> Callable:
            @needs_request
            def handler(sess, ids, request):  # noqa: ANN001, ANN202
                sess = ensure(sess, request)
                if sess is None:
                    return [gr.skip(), FOREIGN_SESSION, *[gr.skip()] * len(panel)]
                item_id, done = card_action(sess, tuple(ids or ()), slot, action)
                item = agent.catalog.get(item_id) if item_id else None
                label = safe_markdown(item.label if item else item_id)
                message = {
                    "up": f"Noted: you like **{label}**; I'll look for more like it.",
                    "down": f"Noted: **{label}** is not for you; it won't be recommended again.",
                    "seen": f"Noted: you've seen **{label}**; it won't be recommended again.",
                }.get(done, "")
                return [sess, message, *panel_values(sess, feedback.visible_cards(tuple(ids or ()), sess.belief))]

            return handler

        for slot, action, btn in buttons:
            btn.click(
                make_card_handler(slot, action),
                [session, cards],
                [session, notice, *panel],
                concurrency_limit=None,
                api_name=f"card_{slot}_{action}",
            )

        def make_chip_handler(group: feedback.Group) -> Callable:
            @needs_request
            def handler(value, sess, ids, request):  # noqa: ANN001, ANN202
                sess = ensure(sess, request)
                if sess is None:
                    return [gr.skip(), FOREIGN_SESSION, *[gr.skip()] * len(panel)]
                before = [c.key for c in feedback.chips(sess.belief) if c.group == group]
                gone = feedback.removed_keys(before, value if isinstance(value, list) else [])
                for key in gone:
                    sess.belief = feedback.remove_chip(sess.belief, key)
                message = f"Forgotten: {len(gone)} item(s)." if gone else ""
                return [sess, message, *panel_values(sess, tuple(ids or ()))]

            return handler

        for group, box in chip_boxes.items():
            box.input(
                make_chip_handler(group),
                [box, session, cards],
                [session, notice, *panel],
                concurrency_limit=None,
                api_name=f"chips_{group}",
            )

        @needs_request
        def on_reset(sess, request):  # noqa: ANN001, ANN202
            if ensure(sess, request) is None:
                return [gr.skip(), gr.skip(), gr.skip(), FOREIGN_SESSION, *[gr.skip()] * len(panel)]
            fresh = new_session(user_of(request))
            return [[], fresh, "", "Started a new conversation.", *panel_values(fresh, ())]

        reset.click(on_reset, [session], chat_outputs, concurrency_limit=None, api_name="new_conversation")

        refused_profile = [gr.skip()] * len(profile_outputs) + [FOREIGN_SESSION]

        @needs_request
        def on_save(body, sess, request):  # noqa: ANN001, ANN202
            if ensure(sess, request) is None:
                return refused_profile
            user = user_of(request)  # the login, never the session's word for it
            note = save_profile(agent, user, body)
            text_, status, table, choices = load_profile(agent, user)
            if not note.startswith("Saved"):
                text_ = body  # keep what the user typed
            return [text_, status, table, gr.Dropdown(choices=choices, value=None), note]

        save.click(
            on_save,
            [profile_text, session],
            [*profile_outputs, profile_note],
            concurrency_limit=None,
            api_name="save_profile",
        )

        @needs_request
        def on_reload(sess, request):  # noqa: ANN001, ANN202
            if ensure(sess, request) is None:
                return refused_profile
            text_, status, table, choices = load_profile(agent, user_of(request))
            return [text_, status, table, gr.Dropdown(choices=choices, value=None), ""]

        reload.click(
            on_reload, [session], [*profile_outputs, profile_note], concurrency_limit=None, api_name="reload_profile"
        )

        @needs_request
        def on_version(version, sess, request):  # noqa: ANN001, ANN202
            store = profile_store(agent)
            if ensure(sess, request) is None:
                return [gr.skip(), FOREIGN_SESSION]
            user = user_of(request)
            if store is None or version is None:
                return [gr.skip(), ""]
            match = next((p for p in store.history(user) if p.version == version), None)
            if match is None:
                return [gr.skip(), f"Version {version} was not found."]
            return [match.text, f"Showing version {version}; press *Save* to make it the current profile again."]

        versions.input(
            on_version,
            [versions, session],
            [profile_text, profile_note],
            concurrency_limit=None,
            api_name="profile_version",
        )
    demo.queue(max_size=agent.cfg.serve.max_queue, default_concurrency_limit=agent.cfg.serve.concurrency)
    return demo


def launch(agent: Agent, host: str, port: int, prevent_thread_lock: bool = False) -> gr.Blocks:
    import gradio as gr

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
    demo.launch(
        server_name=host,
        server_port=port,
        state_session_capacity=max(1, agent.cfg.serve.max_sessions),
        share=False,
        show_error=False,
        prevent_thread_lock=prevent_thread_lock,
        auth=auth or None,
        auth_message="Log in to keep your own profile." if auth else None,
        css=CSS,
        theme=gr.themes.Soft(),
        footer_links=["gradio"],
        quiet=prevent_thread_lock,
    )
    return demo

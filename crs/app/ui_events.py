"""The page's event handlers: a chat turn, the card buttons, removing chips, a new conversation, and
the profile tab, wired to the components ``crs.app.ui.layout`` made.

Every handler first takes the request's own session (``owned_session``): a session presented by
another login is refused with ``FOREIGN_SESSION`` and left untouched. Handlers never raise; what the
page shows is computed by ``crs.app.ui_core`` (without Gradio) and rendered by ``crs.app.ui_render``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crs.app import feedback
from crs.app.ui_core import (
    card_action,
    expired_notice,
    load_profile,
    new_session,
    owned_session,
    profile_store,
    respond,
    save_profile,
    user_of,
)
from crs.app.ui_render import card_html, reason_line, safe_markdown
from crs.state import BeliefState, Session

if TYPE_CHECKING:
    import gradio as gr

    from crs.agent import Agent
    from crs.app.sessions import SessionReaper

FOREIGN_SESSION = (
    "This conversation belongs to another login, so nothing was read or changed. Reload the page to start your own."
)
CARD_NOTES = {
    "up": "Noted: you like **{label}**; I'll look for more like it.",
    "down": "Noted: **{label}** is not for you; it won't be recommended again.",
    "seen": "Noted: you've seen **{label}**; it won't be recommended again.",
}


@dataclass
class Page:
    """The page's components that the event handlers read or write."""

    session: gr.State  # the tab's Session
    cards: gr.State  # ids of the films in the card slots
    chat: gr.Chatbot
    text: gr.Textbox
    send: gr.Button
    reset: gr.Button
    chip_boxes: dict[feedback.Group, gr.Dropdown]  # one multi-select of chips per belief group
    empty: gr.HTML  # shown when there are no cards
    columns: list[gr.Column]  # the card slots
    bodies: list[gr.HTML]  # each slot's card
    buttons: list[tuple[int, feedback.Action, gr.Button]]  # (slot, action, button)
    notice: gr.Markdown
    profile_text: gr.Textbox
    profile_info: gr.Markdown
    history: gr.Markdown
    versions: gr.Dropdown
    save: gr.Button
    reload: gr.Button
    profile_note: gr.Markdown
    slots: int = field(default=1)

    @property
    def panel(self) -> list:
        """What a turn redraws besides the chat: the card ids, the cards and the chips."""
        return [self.cards, self.empty, *self.columns, *self.bodies, *self.chip_boxes.values()]

    @property
    def chat_outputs(self) -> list:
        return [self.chat, self.session, self.text, self.notice, *self.panel]

    @property
    def profile_outputs(self) -> list:
        return [self.profile_text, self.profile_info, self.history, self.versions]


def needs_request(fn: Callable) -> Callable:
    """Gradio passes the request to a parameter annotated ``gr.Request``; under postponed annotations
    the string "gr.Request" cannot be resolved, so the class itself is set."""
    import gradio as gr

    fn.__annotations__ = {"request": gr.Request}
    return fn


class Panel:
    """What a turn redraws besides the chat: the cards in their slots and the belief's chips."""

    def __init__(self, agent: Agent, page: Page) -> None:
        self.agent = agent
        self.page = page

    def values(self, sess: Session, ids: tuple[str, ...]) -> list:
        import gradio as gr

        slots, belief, catalog = self.page.slots, sess.belief, self.agent.catalog
        items = [it for it in (catalog.get(i) for i in ids[:slots]) if it is not None]
        liked = set(belief.liked_items)
        out: list = [tuple(it.id for it in items), gr.HTML(visible=not items)]
        out += [gr.Column(visible=n < len(items)) for n in range(slots)]
        out += [
            card_html(items[n], reason_line(items[n], belief, catalog), items[n].id in liked) if n < len(items) else ""
            for n in range(slots)
        ]
        return out + self.chips(belief)

    def chips(self, belief: BeliefState) -> list:
        import gradio as gr

        all_chips = feedback.chips(belief, self.agent.catalog)
        out = []
        for g in feedback.GROUPS:
            mine = [(c.label, c.key) for c in all_chips if c.group == g]
            out.append(gr.Dropdown(choices=mine, value=[k for _, k in mine]))
        return out

    def chips_only(self, belief: BeliefState) -> list:
        import gradio as gr

        return [gr.skip()] * (2 + 2 * self.page.slots) + self.chips(belief)

    def skipped(self) -> list:
        import gradio as gr

        return [gr.skip()] * len(self.page.panel)


def wire(agent: Agent, demo: gr.Blocks, page: Page, reaper: SessionReaper) -> None:
    """Attach every handler to the page's components."""

    def ensure(sess: Session | None, request: object) -> Session | None:
        """The request's own session (see ``owned_session``); None: refused. Idle page sessions
        are dropped on the way (at most once a minute)."""
        reaper.reap_blocks(demo)
        return owned_session(sess, request)

    panel = Panel(agent, page)
    wire_chat(agent, demo, page, panel, ensure)
    wire_cards(agent, page, panel, ensure)
    wire_profile(agent, demo, page, ensure)


Ensure = Callable[[Session | None, object], Session | None]


def wire_chat(agent: Agent, demo: gr.Blocks, page: Page, panel: Panel, ensure: Ensure) -> None:
    """A turn (Send, Enter, an example), and a new conversation. Every way of sending a message shares
    one queue of turns; API clients (gradio_client) send a turn to /chat, keyed by their session."""
    import gradio as gr

    serve = agent.cfg.serve

    @needs_request
    def on_message(message, history_, sess, ids, request):  # noqa: ANN001, ANN202
        expired = not isinstance(sess, Session) and bool(history_)  # the page outlived its session
        sess = ensure(sess, request)
        if sess is None:
            yield [gr.skip(), gr.skip(), gr.skip(), FOREIGN_SESSION, *panel.skipped()]
            return
        notes = [expired_notice(serve.session_idle_minutes)] if expired else []
        shown = list(history_ or [])[-2 * max(1, serve.max_turns) + 2 :]
        user_line = {"role": "user", "content": safe_markdown(message or "")}
        yield [shown + [user_line], sess, "", "", *panel.skipped()]
        for view in respond(agent, message, history_, sess, notes):
            if view.final:
                # Cards the user rejected in words ("not Heat") leave even when nothing new is shown.
                ids = view.cards if view.cards else feedback.visible_cards(tuple(ids or ()), view.session.belief)
                rest = panel.values(view.session, ids)
            elif view.belief is not None:
                rest = panel.chips_only(view.belief)
            else:
                rest = panel.skipped()
            yield [view.history, view.session, "", "", *rest]

    inputs = [page.text, page.chat, page.session, page.cards]
    turn: dict[str, Any] = {"concurrency_limit": serve.concurrency, "concurrency_id": "turn", "show_progress": "hidden"}
    page.send.click(on_message, inputs, page.chat_outputs, api_name="chat", **turn)
    page.text.submit(on_message, inputs, page.chat_outputs, api_visibility="undocumented", **turn)

    def on_example(evt):  # noqa: ANN001, ANN202
        value = evt.value if isinstance(evt.value, dict) else {}
        return str(value.get("text", ""))

    on_example.__annotations__ = {"evt": gr.SelectData}
    page.chat.example_select(on_example, None, page.text, concurrency_limit=None, api_visibility="undocumented").then(
        on_message, inputs, page.chat_outputs, api_visibility="undocumented", **turn
    )

    @needs_request
    def on_reset(sess, request):  # noqa: ANN001, ANN202
        if ensure(sess, request) is None:
            return [gr.skip(), gr.skip(), gr.skip(), FOREIGN_SESSION, *panel.skipped()]
        fresh = new_session(user_of(request))
        return [[], fresh, "", "Started a new conversation.", *panel.values(fresh, ())]

    page.reset.click(on_reset, [page.session], page.chat_outputs, concurrency_limit=None, api_name="new_conversation")


def wire_cards(agent: Agent, page: Page, panel: Panel, ensure: Ensure) -> None:
    """The Like / Not for me / Seen it buttons of each card slot, and removing chips from the belief."""
    import gradio as gr

    def card_handler(slot: int, action: feedback.Action) -> Callable:
        @needs_request
        def handler(sess, ids, request):  # noqa: ANN001, ANN202
            sess = ensure(sess, request)
            if sess is None:
                return [gr.skip(), FOREIGN_SESSION, *panel.skipped()]
            item_id, done = card_action(sess, tuple(ids or ()), slot, action)
            item = agent.catalog.get(item_id) if item_id else None
            note = CARD_NOTES.get(done, "").format(label=safe_markdown(item.label if item else item_id))
            return [sess, note, *panel.values(sess, feedback.visible_cards(tuple(ids or ()), sess.belief))]

        return handler

    for slot, action, btn in page.buttons:
        btn.click(
            card_handler(slot, action),
            [page.session, page.cards],
            [page.session, page.notice, *page.panel],
            concurrency_limit=None,
            api_name=f"card_{slot}_{action}",
        )

    def chip_handler(group: feedback.Group) -> Callable:
        @needs_request
        def handler(value, sess, ids, request):  # noqa: ANN001, ANN202
            sess = ensure(sess, request)
            if sess is None:
                return [gr.skip(), FOREIGN_SESSION, *panel.skipped()]
            before = [c.key for c in feedback.chips(sess.belief) if c.group == group]
            gone = feedback.removed_keys(before, value if isinstance(value, list) else [])
            for key in gone:
                sess.belief = feedback.remove_chip(sess.belief, key)
            message = f"Forgotten: {len(gone)} item(s)." if gone else ""
            return [sess, message, *panel.values(sess, tuple(ids or ()))]

        return handler

    for group, box in page.chip_boxes.items():
        box.input(
            chip_handler(group),
            [box, page.session, page.cards],
            [page.session, page.notice, *page.panel],
            concurrency_limit=None,
            api_name=f"chips_{group}",
        )


def wire_profile(agent: Agent, demo: gr.Blocks, page: Page, ensure: Ensure) -> None:
    """Loading the page (a fresh session and the user's profile), and the profile tab: save, reload,
    and showing an older version. The user is always the login, never the session's word for it."""
    import gradio as gr

    outputs = page.profile_outputs
    refused = [gr.skip()] * len(outputs) + [FOREIGN_SESSION]

    @needs_request
    def on_load(sess, request):  # noqa: ANN001, ANN202
        if ensure(sess, request) is None:
            return [gr.skip(), gr.skip(), FOREIGN_SESSION, gr.skip(), gr.skip()]
        fresh = new_session(user_of(request))
        body, status, table, choices = load_profile(agent, fresh.user)
        return [fresh, body, status, table, gr.Dropdown(choices=choices, value=None)]

    demo.load(on_load, [page.session], [page.session, *outputs], api_name="load")

    @needs_request
    def on_save(body, sess, request):  # noqa: ANN001, ANN202
        if ensure(sess, request) is None:
            return refused
        user = user_of(request)
        note = save_profile(agent, user, body)
        text_, status, table, choices = load_profile(agent, user)
        if not note.startswith("Saved"):
            text_ = body  # keep what the user typed
        return [text_, status, table, gr.Dropdown(choices=choices, value=None), note]

    page.save.click(
        on_save,
        [page.profile_text, page.session],
        [*outputs, page.profile_note],
        concurrency_limit=None,
        api_name="save_profile",
    )

    @needs_request
    def on_reload(sess, request):  # noqa: ANN001, ANN202
        if ensure(sess, request) is None:
            return refused
        text_, status, table, choices = load_profile(agent, user_of(request))
        return [text_, status, table, gr.Dropdown(choices=choices, value=None), ""]

    page.reload.click(
        on_reload, [page.session], [*outputs, page.profile_note], concurrency_limit=None, api_name="reload_profile"
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

    page.versions.input(
        on_version,
        [page.versions, page.session],
        [page.profile_text, page.profile_note],
        concurrency_limit=None,
        api_name="profile_version",
    )
